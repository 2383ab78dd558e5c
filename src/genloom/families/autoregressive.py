"""Autoregressive family: next-token prediction with a decoder-only transformer, and sampling with a KV cache."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Iterator

import torch
import torch.nn.functional as F

from ..errors import GenloomError
from ..layout import Layout
from ..nets import build_backbone
from .base import Family, LossStep, register_family
from .sampling import SamplingConfig, choose_next, next_token_scores


@dataclass
class AutoregressiveConfig:
    n_layer: int = 3             # defaults chosen on the CPU benchmark (benchmarks/text.py): a shallow model
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 128        # context length in tokens
    dropout: float = 0.0
    bias: bool = False           # biases in linear and LayerNorm layers (GPT-2 has them)
    rope: bool = True            # rotary position embeddings instead of learned ones
    gelu: str = "tanh"           # "tanh" (GPT-2's approximation) or "none" (exact)
    layer_norm_eps: float = 1e-5

    def check(self) -> None:
        if min(self.n_layer, self.n_head, self.n_embd, self.block_size) < 1:
            raise GenloomError("n_layer, n_head, n_embd and block_size must be at least 1")
        if self.n_embd % self.n_head or (self.rope and (self.n_embd // self.n_head) % 2):
            raise GenloomError(f"n_embd ({self.n_embd}) must split into n_head ({self.n_head}) heads "
                               "of equal, even size")
        if not 0 <= self.dropout < 1:
            raise GenloomError(f"dropout must lie in [0, 1); got {self.dropout}")
        if self.gelu not in ("tanh", "none"):
            raise GenloomError(f"gelu must be 'tanh' or 'none'; got {self.gelu!r}")


@register_family
class Autoregressive(Family):
    """p(x) = prod_t p(x_t | x_<t), trained with cross-entropy on windows of the token stream."""

    name = "autoregressive"
    Config = AutoregressiveConfig
    # A GPT wants no weight average, some decay and a higher learning rate than a small conv net.
    train_defaults: ClassVar[dict] = {"lr": 3e-3, "batch_size": 16, "ema_decay": 0.0, "weight_decay": 0.1,
                                      "warmup_steps": 100, "min_lr_ratio": 0.1, "eval_every": 250}

    def __init__(self, layout: Layout, config: AutoregressiveConfig):
        super().__init__(layout, config)
        self.net = build_backbone("causal", layout, n_layer=config.n_layer, n_head=config.n_head,
                                  n_embd=config.n_embd, block_size=config.block_size, dropout=config.dropout,
                                  bias=config.bias, rope=config.rope, gelu=config.gelu,
                                  layer_norm_eps=config.layer_norm_eps)

    @property
    def context_length(self) -> int:
        return self.config.block_size

    def losses(self, x: torch.Tensor, labels: torch.Tensor | None) -> Iterator[LossStep]:
        logits, _ = self.net(x[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1).float(), x[:, 1:].flatten())
        yield "model", loss, {}

    def log_prob(self, x: torch.Tensor, labels: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Per-sequence log-likelihood in nats of windows x (B, T+1), the first token given."""
        logits, _ = self.net(x[:, :-1])
        return -F.cross_entropy(logits.transpose(1, 2).float(), x[:, 1:], reduction="none").sum(1)

    def evaluate(self, x: torch.Tensor, labels: torch.Tensor | None) -> dict[str, float]:
        loss = -self.log_prob(x).mean().item() / (x.shape[1] - 1)
        return {"val_loss": loss, "perplexity": math.exp(loss), "bits_per_token": loss / math.log(2)}

    def generate(self, prompt: torch.Tensor, max_new_tokens: int, sampling: SamplingConfig,
                 generator: torch.Generator, use_cache: bool = True) -> Iterator[torch.Tensor]:
        """Yield the next token (B,) of each prompt (B, T), max_new_tokens times.

        With the cache, each step feeds one token; when the context is full, the cache is rebuilt from
        the last half context, so long generations cost O(block_size) per token, not O(block_size^2).
        """
        tokens, cache = prompt, None
        for _ in range(max_new_tokens):
            if not use_cache:
                logits, _ = self.net(tokens[:, -self.context_length:])
            elif cache is None or cache[0][0].shape[2] >= self.context_length:
                logits, cache = self.net(tokens[:, -max(1, self.context_length // 2):] if cache else
                                         tokens[:, -self.context_length:])
            else:
                logits, cache = self.net(tokens[:, -1:], cache)
            scores = next_token_scores(logits[:, -1], tokens, sampling)
            token = choose_next(scores, sampling, generator)
            tokens = torch.cat([tokens, token[:, None]], dim=1)
            yield token

    def sample(self, n: int, labels: torch.Tensor | None, generator: torch.Generator) -> torch.Tensor:
        device = self.net.wte.weight.device
        prompt = torch.full((n, 1), self.layout.start_token, dtype=torch.long, device=device)
        return torch.stack(list(self.generate(prompt, self.context_length, SamplingConfig(), generator)), dim=1)
