"""Reward-guided fine-tuning: a reward (a Python function of one sample, or for molecules the name of an RDKit
property) tunes a LoRA adapter, by PPO on the model's samples as it learns (the loop of RLHF, with the reward in
place of a learnt reward model: finetune/ppo.py), or by DPO on pairs of the base model's samples, the better of
each two chosen (as rejection-sampling and offline DPO variants do)."""
from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch

from .data.molecules import molecule_property, parsed
from .data.preferences import PreferencePair
from .errors import GenloomError
from .finetune import check_resumable
from .finetune.ppo import Drawn
from .model import Model, load
from .options import whole_number

Reward = Callable[[str], float]


# What a string that is not a molecule earns when tuning toward a higher property: less than a molecule's value
# (QED lies in [0, 1]; MOSES' molecules have logP in about [-6, 9], SA in [1, 10], weights of 150 to 500), and near
# enough that PPO's advantages still tell the molecules apart.
INVALID_REWARD = {"QED": -1.0, "logP": -10.0, "SA": 0.0, "weight": 0.0}


def property_reward(name: str) -> Reward:
    """A molecule's RDKit property as a reward (logP, SA, QED, weight); a string that is not a molecule earns
    INVALID_REWARD, below every molecule."""
    function = molecule_property(name)

    def reward(smiles: str) -> float:
        molecule = parsed(smiles)
        return function(molecule) if molecule is not None else INVALID_REWARD[name]

    return reward


def scored(samples: Sequence[str], reward: Reward) -> list[float]:
    """The reward of each sample; a reward that raises or is not a finite number is a one-line error naming the
    sample, before anything is trained."""
    values = []
    for index, sample in enumerate(samples):
        try:
            value = float(reward(sample))
        except Exception as error:  # noqa: BLE001  (the user's function: any failure is reported, not raised on)
            raise GenloomError(f"the reward raised {type(error).__name__} on sample {index} ({sample[:40]!r}): "
                               f"{str(error)[:80]}; make it return a number for every sample") from None
        if not math.isfinite(value):
            raise GenloomError(f"the reward gave {value} for sample {index} ({sample[:40]!r}); make it return a "
                               "finite number for every sample")
        values.append(value)
    return values


def reward_pairs(samples: Sequence[str], rewards: Sequence[float], prompt: str = "") -> list[PreferencePair]:
    """Consecutive samples paired, the one with the higher reward chosen; ties dropped."""
    return [PreferencePair(prompt, *((first, second) if a > b else (second, first)))
            for first, second, a, b in zip(samples[0::2], samples[1::2], rewards[0::2], rewards[1::2]) if a != b]


def _resolved(model: Model, reward: Reward | str) -> Reward:
    """A reward function of one sample: `reward` itself, or the molecule property it names."""
    if isinstance(reward, str):
        if model.codec.kind != "molecule":
            raise GenloomError(f"a reward by name is a molecule property; this model makes {model.codec.kind} data: "
                               "give a function of one sample")
        return property_reward(reward)
    if not callable(reward):
        raise GenloomError(f"reward must be a function of one sample or a molecule property's name; got "
                           f"{type(reward).__name__}")
    return reward


def _own_pairs(model: Model, reward: Reward, prompts: Sequence[str] | None, pairs: int, max_tokens: int,
               seed: int) -> list[PreferencePair]:
    """`pairs` pairs of the model's samples (continuations of each prompt in turn), the better of each two chosen."""
    if not prompts:
        samples = model.sample(2 * pairs, seed=seed, progress=False)
        return reward_pairs(samples, scored(samples, reward))
    preferences: list[PreferencePair] = []
    per_prompt = max(1, -(-pairs // len(prompts)))
    for number, prompt in enumerate(prompts):
        texts = [model.generate(prompt, max_tokens=max_tokens, seed=seed + 1000 * number + index)
                 for index in range(2 * per_prompt)]
        preferences += reward_pairs(texts, scored(texts, reward), prompt)
    return preferences


def finetune_reward(model: Model | str | Path, reward: Reward | str, *, out: str | Path, objective: str = "ppo",
                    prompts: Sequence[str] | None = None, pairs: int = 256, max_tokens: int = 64, seed: int = 0,
                    beta: float = 0.1, ppo: Mapping[str, Any] | None = None, **finetune_options: Any) -> Model:
    """Tune `model` (a text or molecule run) toward a higher `reward`: a function of a sample (text, or SMILES)
    or a molecule property's name ("QED"). The adapter goes to `out`.

    objective="ppo" (default): PPO on the model's own samples as it learns, unprompted or continuations of each
    of `prompts`, `max_tokens` long; `ppo`: PPO's settings (rounds, rollouts, kl_coef, ...: PPOSettings).
    objective="dpo": DPO (`beta`) on `pairs` pairs of the base model's samples, the better of each two chosen.
    finetune_options as for Model.finetune (rank, alpha, and for DPO steps, lr, ...)."""
    check_resumable(objective, finetune_options.get("resume", False))  # before any pairs are drawn
    if isinstance(model, (str, Path)):
        model = load(model)
    source = {"property": reward} if isinstance(reward, str) else {"function": getattr(reward, "__name__", "?")}
    reward = _resolved(model, reward)
    if objective == "ppo":
        def batch_reward(drawn: Drawn) -> torch.Tensor:
            return torch.tensor(scored(drawn.texts, reward), dtype=torch.float32)

        return model.finetune_ppo(batch_reward, out=out, prompts=prompts or (), reward_source=source,
                                  ppo={"response_tokens": max_tokens, **(ppo or {})}, seed=seed, **finetune_options)
    if objective != "dpo":
        raise GenloomError(f"unknown reward-tuning objective {objective!r}; use ppo or dpo")
    preferences = _own_pairs(model, reward, prompts, whole_number("pairs", pairs), max_tokens, seed)
    if not preferences:
        raise GenloomError("every pair of samples scored alike: there is no preference to learn; use a reward "
                           "that tells the samples apart")
    return model.finetune([asdict(pair) for pair in preferences], out=out, objective="dpo", beta=beta,
                          **finetune_options)
