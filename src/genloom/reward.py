"""Reward-guided fine-tuning: a reward (a Python function of one sample, or for molecules the name of an RDKit
property) scores the model's own samples, the better of each two becomes a preference pair, and DPO tunes a LoRA
adapter on the pairs: the feedback loop of RLHF with DPO in place of PPO (as rejection-sampling and online DPO
variants do), so that no value head or reward model has to be trained."""
from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Sequence

from .data.molecules import parsed
from .data.preferences import PreferencePair
from .errors import GenloomError
from .metrics.molecules import molecule_property
from .model import Model, load
from .options import whole_number

Reward = Callable[[str], float]


def property_reward(name: str) -> Reward:
    """A molecule's RDKit property as a reward (logP, SA, QED, weight); a string that is not a molecule gets
    -1e9, so it is never chosen over one that is."""
    function = molecule_property(name)

    def reward(smiles: str) -> float:
        molecule = parsed(smiles)
        return function(molecule) if molecule is not None else -1e9

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


def finetune_reward(model: Model | str | Path, reward: Reward | str, *, out: str | Path,
                    prompts: Sequence[str] | None = None, pairs: int = 256, max_tokens: int = 128, seed: int = 0,
                    beta: float = 0.1, **finetune_options: Any) -> Model:
    """Tune `model` (a text or molecule run) toward a higher `reward` by DPO on `pairs` pairs of its own samples
    (unprompted, or continuations of each of `prompts`, `max_tokens` long); `reward`: a function of a sample
    (text, or SMILES) or a molecule property's name ("QED"). The adapter goes to `out`; finetune_options as for
    Model.finetune (rank, steps, lr, ...)."""
    if isinstance(model, (str, Path)):
        model = load(model)
    pairs = whole_number("pairs", pairs)
    if isinstance(reward, str):
        if model.codec.kind != "molecule":
            raise GenloomError(f"a reward by name is a molecule property; this model makes {model.codec.kind} data: "
                               "give a function of one sample")
        reward = property_reward(reward)
    elif not callable(reward):
        raise GenloomError(f"reward must be a function of one sample or a molecule property's name; got "
                           f"{type(reward).__name__}")
    preferences: list[PreferencePair] = []
    if prompts:
        per_prompt = max(1, -(-pairs // len(prompts)))
        for number, prompt in enumerate(prompts):
            texts = [model.generate(prompt, max_tokens=max_tokens, seed=seed + 1000 * number + index)
                     for index in range(2 * per_prompt)]
            preferences += reward_pairs(texts, scored(texts, reward), prompt)
    else:
        samples = model.sample(2 * pairs, seed=seed, progress=False)
        preferences = reward_pairs(samples, scored(samples, reward))
    if not preferences:
        raise GenloomError("every pair of samples scored alike: there is no preference to learn; use a reward "
                           "that tells the samples apart")
    return model.finetune([asdict(pair) for pair in preferences], out=out, objective="dpo", beta=beta,
                          **finetune_options)
