"""Autoregressive family: next-token prediction with a decoder-only transformer, and sampling with a KV cache.

Text arrives as tokens; images and table rows become tokens here (families/tokens.py): an image as PixelCNN
and Image GPT treat it, each intensity quantised to K levels in raster order; a row as one token per column
(a category, or a number's quantile bin). A first token names the class, or just starts the sequence."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Iterator, Sequence

import torch
import torch.nn.functional as F

from ..errors import GenloomError
from ..layout import Layout
from ..nets import build_backbone
from .base import Family, LossStep, register_family
from .sampling import SamplingConfig, choose_next, next_token_scores
from .tokens import PixelTokens, RowTokens, tokens_for


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
    levels: int = 16             # images: intensity levels per pixel (K, a power of 2); the context is the image
    bins: int = 32               # tables: quantile bins per number; the context is the row
    conditional: bool = False    # images: the first token names the class

    def check(self) -> None:
        if not 2 <= self.levels <= 256 or 256 % self.levels:
            raise GenloomError(f"levels (K) must be a power of 2 from 2 to 256 (equal bins of 8-bit values); "
                               f"got {self.levels}")
        if min(self.n_layer, self.n_head, self.n_embd, self.block_size) < 1 or self.bins < 2:
            raise GenloomError("n_layer, n_head, n_embd and block_size must be at least 1, bins at least 2")
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
    SampleOptions = SamplingConfig
    # A GPT wants no weight average, some decay and a higher learning rate than a small conv net.
    train_defaults: ClassVar[dict] = {"lr": 3e-3, "batch_size": 16, "ema_decay": 0.0, "weight_decay": 0.1,
                                      "warmup_steps": 100, "min_lr_ratio": 0.1, "eval_every": 250}
    # Text: Muon for the blocks' matrices (train/optimizers.py) and larger batches, measured on benchmarks/text.py.
    train_defaults_by_kind: ClassVar[dict[str, dict]] = {
        **Family.train_defaults_by_kind,
        "text": {"optimizer": "muon", "muon_lr": 0.02, "batch_size": 32, "warmup_steps": 30, "min_lr_ratio": 0.0}}

    codec_defaults_by_kind: ClassVar[dict[str, dict]] = {"table": {"numbers": "quantile"}}  # one token per number

    def __init__(self, layout: Layout, config: AutoregressiveConfig):
        super().__init__(layout, config)
        self.tokens = tokens_for(layout, config.levels, config.bins)
        block_size, token_layout = config.block_size, layout
        if self.tokens is not None:  # its tokens first, then one per class, then the start token
            block_size = self.tokens.length
            token_layout = Layout("sequence", (), vocab_size=self.tokens.vocab_size + layout.num_classes + 1,
                                  start_token=self.tokens.vocab_size + layout.num_classes)
        self.net = build_backbone("causal", token_layout, n_layer=config.n_layer, n_head=config.n_head,
                                  n_embd=config.n_embd, block_size=block_size, dropout=config.dropout,
                                  bias=config.bias, rope=config.rope, gelu=config.gelu,
                                  layer_norm_eps=config.layer_norm_eps)
        self.start_token = token_layout.start_token

    @property
    def context_length(self) -> int | None:
        """Window length of a token stream; None for images and rows, whose examples are whole sequences."""
        return None if self.tokens is not None else self.config.block_size

    def prepare(self, x: torch.Tensor) -> None:
        """Tables: the quantile bins of the numbers."""
        if isinstance(self.tokens, RowTokens):
            self.tokens.fit(x)

    def _first_tokens(self, n: int, labels: torch.Tensor | None, device: torch.device) -> torch.Tensor:
        """(n, 1): each example's class token, or the start token."""
        if labels is not None:
            return (self.tokens.vocab_size + labels).view(n, 1)
        return torch.full((n, 1), self.start_token, dtype=torch.long, device=device)

    def _sequences(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Token sequences (B, T+1) whose first token is given: text windows as they are, others tokenised."""
        if self.tokens is None:
            return x
        return torch.cat([self._first_tokens(len(x), labels, x.device), self.tokens.encode(x)], dim=1)

    def losses(self, x: torch.Tensor, labels: torch.Tensor | None) -> Iterator[LossStep]:
        x = self._sequences(x, labels)
        logits, _ = self.net(x[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1).float(), x[:, 1:].flatten())
        yield "model", loss, {}

    def log_prob(self, x: torch.Tensor, labels: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Per-example log-likelihood in nats: of text windows (B, T+1) with the first token given, or of
        images quantised to K levels."""
        x = self._sequences(x, labels)
        logits, _ = self.net(x[:, :-1])
        return -F.cross_entropy(logits.transpose(1, 2).float(), x[:, 1:], reduction="none").sum(1)

    def evaluate(self, x: torch.Tensor, labels: torch.Tensor | None) -> dict[str, float]:
        if isinstance(self.tokens, PixelTokens):  # each level's mass spread over its 256/K 8-bit values
            bits = -self.log_prob(x, labels).mean().item() / (self.tokens.length * math.log(2))
            return {"bits_per_dim": bits + math.log2(256 / self.config.levels)}
        if self.tokens is not None:
            return {"nll_per_column": -self.log_prob(x, labels).mean().item() / self.tokens.length}
        loss = -self.log_prob(x).mean().item() / (x.shape[1] - 1)
        return {"val_loss": loss, "perplexity": math.exp(loss), "bits_per_token": loss / math.log(2)}

    def generate(self, prompt: torch.Tensor, max_new_tokens: int, sampling: SamplingConfig,
                 generator: torch.Generator, use_cache: bool = True,
                 allowed: torch.Tensor | None = None) -> Iterator[torch.Tensor]:
        """Yield the next token (B,) of each prompt (B, T), max_new_tokens times; with `allowed`
        (max_new_tokens, vocab) only the tokens it marks at each step (a pixel is never a class token).

        With the cache, each step feeds one token; when the context is full, the cache is rebuilt from
        the last half context, so long generations cost O(block_size) per token, not O(block_size^2).
        """
        tokens, cache, context = prompt, None, self.net.block_size
        for step in range(max_new_tokens):
            if not use_cache:
                logits, _ = self.net(tokens[:, -context:])
            elif cache is None or cache[0][0].shape[2] >= context:
                logits, cache = self.net(tokens[:, -max(1, context // 2):] if cache else tokens[:, -context:])
            else:
                logits, cache = self.net(tokens[:, -1:], cache)
            logits = logits[:, -1]
            if allowed is not None:
                logits = logits.masked_fill(~allowed[step], -math.inf)
            scores = next_token_scores(logits, tokens, sampling)
            token = choose_next(scores, sampling, generator)
            tokens = torch.cat([tokens, token[:, None]], dim=1)
            yield token

    def sample(self, n: int, labels: torch.Tensor | None, generator: torch.Generator,
               options: SamplingConfig | None = None, given: Sequence[int] = ()) -> torch.Tensor:
        device = self.net.wte.weight.device
        options = options or SamplingConfig()
        if self.tokens is None:
            prompt = torch.full((n, 1), self.layout.start_token, dtype=torch.long, device=device)
            return torch.stack(list(self.generate(prompt, self.config.block_size, options, generator)), dim=1)
        if self.conditional and labels is None:
            labels = torch.randint(self.layout.num_classes, (n,), generator=generator).to(device)
        prompt = self._first_tokens(n, labels, device)
        allowed = self.tokens.allowed(self.net.wte.weight.shape[0]).to(device)  # once, not per token
        tokens = self.generate(prompt, self.tokens.length, options, generator, allowed=allowed)
        return self.tokens.decode(torch.stack(list(tokens), dim=1), generator)
