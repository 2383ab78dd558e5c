"""Reward-guided fine-tuning on this CPU: PPO and DPO (genloom finetune --objective ppo|dpo, gl.finetune_reward)
against best-of-n sampling from the base model, on text and on molecules. Why: tuning earns its place if it moves
the reward as far as drawing several samples and keeping the best does, at the cost of one sample, without leaving
the base model far behind (KL to it).

1. Text: the default model trained on tiny Shakespeare for --text-minutes. The reward, programmatic: "elaborate
   diction", the number of distinct words of seven letters or more per 100 characters of an unprompted sample
   (127 tokens: the model's context).
2. Molecules: the default model trained on `moses` for --molecule-minutes; the reward QED (RDKit's drug-likeness,
   0 to 1). Outputs are scored with 0 for an invalid string; tuning gives one -1 (reward.INVALID_REWARD).

Tuning, both LoRA rank 8:
- PPO: gl.finetune_reward(model, reward) with its defaults (rounds of 64 samples drawn from the model as it learns,
  4 PPO epochs on each, KL coefficient 0.05, lr 1e-3) for --ppo-rounds rounds.
- DPO: --pairs pairs of the base model's own samples, the one with the higher reward chosen (ties dropped), then
  DPO (beta 0.1, lr 5e-3) for --dpo-steps steps.

Rows: the base model's samples; best-of-n (n = 2, 4, 8: the best of n base samples, costing n samples each); each
tuned adapter's samples (one sample each, after a one-time cost: the samples it drew and its updates). Reported
for each: the mean reward of 500 outputs, and KL to the base model, estimated as the mean of
log p_tuned(x) - log p_base(x) over the tuned model's samples (best-of-n: its upper bound log n - (n-1)/n,
Beirami et al. 2024). Molecules: also validity and uniqueness of the outputs. The PPO runs' reward and KL per
round are drawn in results/reward-curves.png.

Usage (one core, nothing else running; about 30 minutes):
  .venv/bin/python benchmarks/reward.py --threads 1
  .venv/bin/python benchmarks/reward.py --quick --out /tmp/reward.md     (a smoke run)
"""
from __future__ import annotations

import argparse
import math
import platform
import re
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

import genloom as gl
from genloom.data.molecules import parsed
from genloom.metrics.molecules import Molecules, molecule_property
from shared_parts import log, results_arguments, write_section

RESULTS = Path(__file__).parent / "results" / "reward.md"
CURVES = RESULTS.with_name("reward-curves.png")
OUTPUTS = 500
TEXT_TOKENS = 127  # an unprompted text sample: the default model's context after its start token
BEST_OF = (2, 4, 8)


def diction(text: str) -> float:
    """Distinct words of seven letters or more per 100 characters."""
    return 100 * len({word.lower() for word in re.findall(r"[A-Za-z]{7,}", text)}) / max(len(text), 1)


def drug_likeness(smiles: str) -> float:
    """QED of a molecule; 0 for a string that is not one."""
    molecule = parsed(smiles)
    return molecule_property("QED")(molecule) if molecule is not None else 0.0


def best_of(model: gl.Model, n: int, reward: Callable[[str], float], seed: int) -> list[str]:
    """OUTPUTS outputs, each the best of n base samples."""
    samples = model.sample(OUTPUTS * n, seed=seed, progress=False)
    return [max(samples[i * n:(i + 1) * n], key=reward) for i in range(OUTPUTS)]


def kl_to_base(tuned: gl.Model, base: gl.Model, samples: Sequence[str]) -> float:
    """Mean log p_tuned - log p_base over the tuned model's samples (nats)."""
    return float(np.mean(tuned.log_prob(list(samples)) - base.log_prob(list(samples))))


def compare(name: str, base: gl.Model, reward: Callable[[str], float], tuned_toward: Callable[[str], float] | str,
            args: argparse.Namespace, folder: Path, extra: Callable[[Sequence[str]], dict[str, float]],
            ) -> tuple[list[str], list[dict[str, float]]]:
    """The table rows of one part, and the PPO run's history: `reward` scores the outputs; the tuning is toward
    `tuned_toward` (the same reward, or a molecule property's name)."""
    rows = []

    def row(label: str, outputs: Sequence[str], kl: str) -> None:
        numbers = {"reward": float(np.mean([reward(output) for output in outputs])), **extra(outputs)}
        rows.append(f"| {label} | {kl} | " + " | ".join(f"{value:.3f}" for value in numbers.values()) + " |")
        log(f"{name} {label}: " + ", ".join(f"{key} {value:.3f}" for key, value in numbers.items()))

    def tuned_row(method: str, tuned: gl.Model, seconds: float, how: str) -> None:
        outputs = tuned.sample(OUTPUTS, seed=2, progress=False)
        row(f"{method} ({how}, {seconds:.0f} s with the sampling)", outputs, f"{kl_to_base(tuned, base, outputs):.3f}")

    row("base model", base.sample(OUTPUTS, seed=2, progress=False), "0")
    for n in BEST_OF:
        row(f"best of {n}", best_of(base, n, reward, seed=3), f"<= {math.log(n) - (n - 1) / n:.3f}")
    log(f"{name}: PPO for {args.ppo_rounds} rounds")
    started = time.perf_counter()
    ppo = gl.finetune_reward(gl.load(base.run_dir), tuned_toward, out=folder / f"{name}-ppo", seed=1, rank=8,
                             max_tokens=TEXT_TOKENS, ppo={"rounds": args.ppo_rounds}, progress=False)
    rollouts = ppo.record["adapter"]["ppo"]["rollouts"]
    tuned_row("PPO", ppo, time.perf_counter() - started,
              f"{args.ppo_rounds} rounds of {rollouts} samples: {args.ppo_rounds * rollouts} drawn")
    log(f"{name}: {2 * args.pairs} base samples scored into preference pairs, then DPO for {args.dpo_steps} steps")
    started = time.perf_counter()
    dpo = gl.finetune_reward(gl.load(base.run_dir), tuned_toward, out=folder / f"{name}-dpo", objective="dpo",
                             pairs=args.pairs, seed=1, beta=0.1, rank=8, steps=args.dpo_steps, lr=5e-3, progress=False)
    tuned_row("DPO", dpo, time.perf_counter() - started,
              f"{dpo.record['adapter']['preferences']['pairs']} pairs of {2 * args.pairs} drawn, "
              f"{args.dpo_steps} steps")
    return rows, ppo.record["adapter"]["history"]


def draw_curves(histories: dict[str, list[dict[str, float]]], path: Path) -> None:
    """Mean reward (of the round's samples, as tuned: molecules' invalid strings at -1) and KL per PPO round."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, len(histories), figsize=(4.2 * len(histories), 5.2), sharex="col",
                                squeeze=False)
    for column, (name, history) in enumerate(histories.items()):
        rounds = [entry["round"] for entry in history]
        axes[0, column].plot(rounds, [entry["reward"] for entry in history], color="tab:blue")
        axes[0, column].set_title(name)
        axes[0, column].set_ylabel("mean reward of the round's samples")
        axes[1, column].plot(rounds, [entry["kl"] for entry in history], color="tab:red")
        axes[1, column].set_ylabel("KL to the base (nats)")
        axes[1, column].set_xlabel("PPO round")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def molecule_numbers(outputs: Sequence[str]) -> dict[str, float]:
    made = Molecules.of(list(outputs))
    return {"validity": made.validity, "unique": len(set(made.smiles)) / max(len(made.smiles), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    results_arguments(parser, RESULTS, "1-minute base models, 5 PPO rounds, 100 pairs, 20 DPO steps")
    parser.add_argument("--text-minutes", type=float, default=3.0)
    parser.add_argument("--molecule-minutes", type=float, default=10.0)
    parser.add_argument("--ppo-rounds", type=int, default=60)
    parser.add_argument("--pairs", type=int, default=400)
    parser.add_argument("--dpo-steps", type=int, default=150)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if args.quick:
        args.text_minutes, args.molecule_minutes, args.ppo_rounds, args.pairs, args.dpo_steps = 1.0, 1.0, 5, 100, 20
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        log(f"text: the default model on shakespeare for {args.text_minutes:g} minutes")
        text = gl.Model("autoregressive").fit("shakespeare", minutes=args.text_minutes, out=folder / "text",
                                              progress=False)
        text_rows, text_history = compare("text", text, diction, diction, args, folder, lambda outputs: {})
        log(f"molecules: the default model on moses for {args.molecule_minutes:g} minutes")
        molecules = gl.Model("autoregressive").fit("moses", minutes=args.molecule_minutes, out=folder / "moses",
                                                   progress=False)
        molecule_rows, molecule_history = compare("molecules", molecules, drug_likeness, "QED", args, folder,
                                                  molecule_numbers)
    curves = args.out.with_name(CURVES.name)
    draw_curves({"text: diction": text_history, "molecules: QED": molecule_history}, curves)
    body = [f"Run {time.strftime('%Y-%m-%d %H:%M')} on {platform.processor() or platform.machine()}, "
            f"{args.threads} threads: `{shlex.join([Path(sys.executable).name, *sys.argv])}`.", "",
            f"Text: the default model, {args.text_minutes:g} minutes on shakespeare; reward: distinct words of seven "
            f"letters or more per 100 characters of an unprompted {OUTPUTS}-sample draw.", "",
            "| outputs | KL to the base (nats) | mean reward |", "|---|---|---|", *text_rows, "",
            f"Molecules: the default model, {args.molecule_minutes:g} minutes on moses; reward: QED (0 for an "
            f"invalid string), over {OUTPUTS} outputs.", "",
            "| outputs | KL to the base (nats) | mean QED | validity | unique |", "|---|---|---|---|---|",
            *molecule_rows, "", f"PPO's reward and KL per round: `{curves.name}`."]
    write_section(args.out, args.section, "Reward-guided fine-tuning: PPO and DPO against best-of-n", body)
    log(f"wrote {args.out} and {curves}")


if __name__ == "__main__":
    main()
