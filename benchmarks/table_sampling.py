"""Sampling speed of tables: 100,000 Adult rows from the model `genloom train adult` makes (the autoregressive
transformer, auto's choice at the default budget, 64 wide on a table this large), against the same model drawing
one batch at a time on every thread (the path before batches went side by side), the 128-wide transformer drawn
that way (the default before; with this version's decoder), genloom's VAE and SDV's CTGAN; and 100,000 rows of
pendigits (16 of 17 columns numbers) from auto's choice there, diffusion sampled by DPM-Solver++ in 20 steps,
against the same model by the 100 DDPM steps a table's diffusion takes by default: in turn, several turns.

Issue 15's target: 100,000 rows in under 10 s on this machine. A sample's cost does not depend on how far the
model trained, so the models train a few steps only (CTGAN one epoch).

Usage: .venv/bin/python benchmarks/table_sampling.py [--rows 100000] [--turns 3]
       [--out benchmarks/results/table_sampling.md]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path
from typing import Callable

import genloom as gl
from genloom.choice import DIFFUSION_SAMPLING, choose_family
from genloom.data.tables import column_kinds
from genloom.families.drawing import draw
from genloom.metrics.tabular import sdmetrics_metadata
from shared_parts import THREAD_SETTINGS, log, thread_setting
from tabular_many import odds_table

SETTINGS = THREAD_SETTINGS  # 2 threads: the machine's default; on 1, side by side is one at a time
AUTO_DIFFUSION = "pendigits: genloom diffusion, auto's (DPM-Solver++, 20 steps)"
DDPM_DIFFUSION = "pendigits: the same model by 100 DDPM steps (diffusion's default on a table)"


def peer_ctgan(frame) -> Callable[[int], object]:
    from sdv.metadata import Metadata
    from sdv.single_table import CTGANSynthesizer

    metadata = Metadata.load_from_dict({"tables": {"table": sdmetrics_metadata(column_kinds(frame))}})
    synthesizer = CTGANSynthesizer(metadata, epochs=1)
    synthesizer.fit({"table": frame})
    return lambda n: synthesizer.sample(n)["table"]


def one_batch_at_a_time(model: gl.Model, rows: int) -> object:
    """What model.sample did before batches went side by side: one batch at a time, on all of torch's threads."""
    return model.codec.decode(draw(model.ema_net, rows, 0, workers=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "table_sampling.md")
    args = parser.parse_args()
    args.cores = len(os.sched_getaffinity(0))  # before thread_setting narrows it
    frame = gl.load_data("adult").values
    choice = choose_family("table", len(frame), frame.shape[1], {}, 2, probe=False)  # at the default budget
    assert choice.family == "autoregressive", choice
    with thread_setting("2 threads"):
        transformer = gl.Model("autoregressive").fit("adult", steps=20, progress=False)
        wide = gl.Model("autoregressive", n_embd=128).fit("adult", steps=20, progress=False)
        vae = gl.Model("vae").fit("adult", steps=20, progress=False)
        ctgan = peer_ctgan(frame)
        digits = odds_table("pendigits")
        diffusion = gl.Model().fit(digits, steps=20, progress=False)
    assert diffusion.family_name == "diffusion" and diffusion.config.sample_steps == DIFFUSION_SAMPLING["sample_steps"]
    same = transformer.sample(2_000, seed=0, progress=False).equals(one_batch_at_a_time(transformer, 2_000))
    candidates = {
        "genloom transformer (default: batches side by side)": lambda: transformer.sample(args.rows, seed=0,
                                                                                          progress=False),
        "genloom transformer, one batch at a time on every thread": lambda: one_batch_at_a_time(transformer,
                                                                                                args.rows),
        "genloom transformer 128 wide, one batch at a time on every thread (the previous default; this decoder)":
            lambda: one_batch_at_a_time(wide, args.rows),
        "genloom vae": lambda: vae.sample(args.rows, seed=0, progress=False),
        "SDV CTGAN": lambda: ctgan(args.rows),
        AUTO_DIFFUSION: lambda: diffusion.sample(args.rows, seed=0, progress=False),
        DDPM_DIFFUSION: lambda: diffusion.sample(args.rows, seed=0, progress=False, sampler="ddpm", steps=100),
    }
    seconds: dict[tuple[str, str], list[float]] = {}
    for setting in SETTINGS:
        with thread_setting(setting):
            for turn in range(args.turns):
                for name, sample in candidates.items():
                    started = time.perf_counter()
                    sample()
                    seconds.setdefault((name, setting), []).append(time.perf_counter() - started)
                    log(f"{setting}, turn {turn + 1}: {name} {seconds[name, setting][-1]:.2f} s")
    write(args, seconds, same)


def write(args: argparse.Namespace, seconds: dict[tuple[str, str], list[float]], same: bool) -> None:
    default, before = "genloom transformer (default: batches side by side)", \
        "genloom transformer, one batch at a time on every thread"
    wide = "genloom transformer 128 wide, one batch at a time on every thread (the previous default; this decoder)"
    lines = [f"# Sampling {args.rows:,} rows of Adult and of pendigits", "",
             f"`.venv/bin/python benchmarks/table_sampling.py --rows {args.rows} --turns {args.turns}`, "
             f"{time.strftime('%Y-%m-%d %H:%M')}, a machine of {args.cores} cores ("
             "settings as shared_parts.thread_setting makes them). The candidates take turns; each cell lists the "
             "turns' seconds, then their median.", "",
             f"The two transformer paths give the same rows for one seed: **{same}** (2,000 rows compared).", "",
             "| model | setting | seconds per turn | median |", "| --- | --- | --- | --- |"]
    for (name, setting), values in seconds.items():
        lines.append(f"| {name} | {setting} | {' / '.join(f'{v:.2f}' for v in values)} | "
                     f"{statistics.median(values):.2f} |")
    comparisons = ((default, before, "the default", "one batch at a time"),
                   (default, wide, "the default", "the 128-wide model one batch at a time"),
                   (AUTO_DIFFUSION, DDPM_DIFFUSION, "pendigits' diffusion by DPM-Solver++ in 20 steps",
                    "by 100 DDPM steps"))
    for setting in SETTINGS:
        lines.append("")
        for fast, slow, who, what in comparisons:
            ratios = [b / a for a, b in zip(seconds[fast, setting], seconds[slow, setting])]
            lines.append(f"- {setting}: {who} is {statistics.median(ratios):.2f}x as fast as {what} (median of "
                         f"per-turn ratios {', '.join(f'{r:.2f}' for r in ratios)})")
        for name, table in ((default, "Adult, the transformer"), (AUTO_DIFFUSION, "pendigits, diffusion")):
            per_100k = statistics.median(seconds[name, setting]) * 100_000 / args.rows
            lines.append(f"- {setting}: 100,000 rows of {table} in {per_100k:.1f} s, the median turn (target: "
                         "under 10 s)")
    args.out.write_text("\n".join(lines) + "\n")
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
