"""A reward model learnt from preference pairs (Ouyang et al. 2022; the Bradley-Terry model): the trained
autoregressive model's transformer, LoRA-adapted, read after a response's last token by a scalar head, trained so
that the chosen response of each pair outscores the rejected one: loss = -log sigmoid(r(chosen) - r(rejected)).
PPO then tunes the model toward it (finetune/ppo.py)."""
from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .base import Family, LossStep
from .preference import CHOSEN, IDS, MASK, REJECTED


class RewardModel(Family):
    """r(sequence): a head on the trunk's hidden state after the sequence's last marked token."""

    name = "reward-model"

    def __init__(self, trunk: Family):
        super().__init__(trunk.layout, trunk.config)
        self.trunk = trunk
        self.head = nn.Linear(trunk.config.n_embd, 1)
        nn.init.zeros_(self.head.weight), nn.init.zeros_(self.head.bias)

    def score(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B,) the reward of sequences as the codec encodes them, `mask` marking the response."""
        return self.head(self.trunk.final_hidden(ids, mask)).squeeze(1)

    def _margins(self, x: torch.Tensor) -> torch.Tensor:
        chosen, rejected = x[:, CHOSEN], x[:, REJECTED]
        return self.score(chosen[:, IDS], chosen[:, MASK]) - self.score(rejected[:, IDS], rejected[:, MASK])

    def losses(self, x: torch.Tensor, labels: torch.Tensor | None) -> Iterator[LossStep]:
        margins = self._margins(x)
        yield "model", -F.logsigmoid(margins).mean(), {"preference_accuracy": (margins > 0).float().mean().item()}

    def hidden_matrices(self) -> list[nn.Parameter]:
        """The trunk's (frozen under LoRA: the adapters and head train with AdamW)."""
        return self.trunk.hidden_matrices()

    def sample(self, n: int, labels: torch.Tensor | None, generator: torch.Generator, options: Any = None,
               given: Sequence[int] = (), on_pass: Callable[[], None] = lambda: None) -> torch.Tensor:
        """The trunk's samples (the training loop's previews)."""
        return self.trunk.sample(n, labels, generator, options, given, on_pass)

    def evaluate(self, x: torch.Tensor, labels: torch.Tensor | None) -> dict[str, float]:
        margins = self._margins(x)
        return {"reward_model_loss": -F.logsigmoid(margins).mean().item(),
                "preference_accuracy": (margins > 0).float().mean().item()}
