"""Direct preference optimisation (DPO, Rafailov et al. 2023): an autoregressive model learns to prefer the chosen
response of each pair to the rejected one, measured against a frozen copy of itself (the reference), without a
reward model or sampling. Only the policy's LoRA adapters train.

Written here rather than taken from TRL: TRL's DPOTrainer needs a transformers model and its tokenizer; this is
one loss over genloom's own transformer, trained by genloom's loop (checkpoints, roll-backs, resumable runs)."""
from __future__ import annotations

import copy
from typing import Any, Callable, Iterator, Sequence

import torch
import torch.nn.functional as F

from .base import Family, LossStep

# encoded pairs: (N, 2, 2, T) token ids; [:, 0] the chosen response, [:, 1] the rejected one; [:, :, 0] the ids,
# [:, :, 1] the mask of the response's ids
CHOSEN, REJECTED = 0, 1
IDS, MASK = 0, 1


class PreferenceTuning(Family):
    """loss = -log sigmoid(beta * ((log pi(chosen) - log ref(chosen)) - (log pi(rejected) - log ref(rejected))))."""

    name = "dpo"

    def __init__(self, policy: Family, beta: float):
        super().__init__(policy.layout, policy.config)
        self.reference = copy.deepcopy(policy).requires_grad_(False).eval()  # before the adapters train
        self.policy, self.beta = policy, beta

    @staticmethod
    def encode_pairs(examples: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """(N, 2, 2, T) from (chosen ids, chosen mask, rejected ids, rejected mask) of each pair, padded with
        zeros (masked out) to the longest."""
        length = max(len(part) for example in examples for part in example)
        padded = [F.pad(part, (0, length - len(part))) for example in examples for part in example]
        return torch.stack(padded).view(len(examples), 2, 2, length)

    def margins(self, x: torch.Tensor) -> torch.Tensor:
        """(N,) the implicit reward margin of each pair, in nats: how much more the policy than the reference
        raised the chosen response's log-likelihood over the rejected one's."""
        chosen, rejected = x[:, CHOSEN], x[:, REJECTED]
        policy = [self.policy.sequence_log_prob(part[:, IDS], part[:, MASK]) for part in (chosen, rejected)]
        with torch.no_grad():
            reference = [self.reference.sequence_log_prob(part[:, IDS], part[:, MASK]) for part in (chosen, rejected)]
        return (policy[0] - reference[0]) - (policy[1] - reference[1])

    def losses(self, x: torch.Tensor, labels: torch.Tensor | None) -> Iterator[LossStep]:
        margins = self.margins(x)
        loss = -F.logsigmoid(self.beta * margins).mean()
        yield "model", loss, {"preference_accuracy": (margins > 0).float().mean().item(),
                              "reward_margin": self.beta * margins.mean().item()}

    def hidden_matrices(self) -> list[torch.nn.Parameter]:
        """The policy's (frozen under LoRA: the adapters train with AdamW whichever optimizer is asked for)."""
        return self.policy.hidden_matrices()

    def sample(self, n: int, labels: torch.Tensor | None, generator: torch.Generator, options: Any = None,
               given: Sequence[int] = (), on_pass: Callable[[], None] = lambda: None) -> torch.Tensor:
        """The policy's samples."""
        return self.policy.sample(n, labels, generator, options, given, on_pass)

    def evaluate(self, x: torch.Tensor, labels: torch.Tensor | None) -> dict[str, float]:
        margins = self.margins(x)
        return {"dpo_loss": -F.logsigmoid(self.beta * margins).mean().item(),
                "preference_accuracy": (margins > 0).float().mean().item(),
                "reward_margin": self.beta * margins.mean().item()}
