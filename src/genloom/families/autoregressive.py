"""Autoregressive family: next-token prediction with a decoder-only transformer, and sampling with a KV cache.

Text arrives as tokens; other examples become tokens through the layout's tokenizer: an image as PixelCNN and
Image GPT treat it, each intensity quantised to K levels in raster order; a row as one token per column (a
category, or a number's quantile bin). A first token names the class, or just starts the sequence."""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import GenloomError
from ..layout import Layout
from ..nets import build_backbone
from ..nets.transformer import Transformer
from .base import Family, LossStep
from .drawing import SAMPLE_BATCH
from .configs import AutoregressiveConfig, TokenSampling
from .sampling import draw_next
from .token_batch import TokenBatch
from .token_rows import TokenRows
from .watermark import TextWatermark


def token_runs(allowed: torch.Tensor) -> list[slice] | None:
    """The tokens `allowed` (steps, vocab) at each step as a slice of the vocabulary, where every step allows one
    run of consecutive tokens (a table's column, an image's levels); None where some step does not."""
    runs = []
    for step in allowed:
        ids = step.nonzero()[:, 0]
        if len(ids) == 0 or int(ids[-1] - ids[0]) + 1 != len(ids):
            return None
        runs.append(slice(int(ids[0]), int(ids[-1]) + 1))
    return runs


SIDE_BY_SIDE_CACHE_BYTES = 256 * 2**20  # the most one batch's key/value cache may take for batches to go at once


class Autoregressive(Family):
    """p(x) = prod_t p(x_t | x_<t), trained with cross-entropy on windows of the token stream."""

    name = "autoregressive"
    tools = frozenset({"log_prob", "anomaly_score", "generate"})

    def __init__(self, layout: Layout, config: AutoregressiveConfig):
        super().__init__(layout, config)
        self.tokens = layout.tokens(config.levels, config.bins)
        block_size, token_layout = config.block_size, layout
        if self.tokens is not None:  # its tokens first, then one per class, then the start token
            block_size = self.tokens.length
            token_layout = replace(layout, vocab_size=self.tokens.vocab_size + layout.num_classes + 1,
                                   start_token=self.tokens.vocab_size + layout.num_classes)
        role, options = self._network(config)
        self.net = build_backbone(role, token_layout, block_size=block_size, **options)
        self.start_token = token_layout.start_token

    @staticmethod
    def _network(config: AutoregressiveConfig) -> tuple[str, dict]:
        """The role of the backbone `config.backbone` names, and its options."""
        if config.backbone == "wavenet":
            return "dilated causal", {"layers": config.wavenet_layers, "cycles": config.wavenet_cycles,
                                      "channels": config.n_embd}
        return "causal", {"n_layer": config.n_layer, "n_head": config.n_head, "n_embd": config.n_embd,
                          "dropout": config.dropout, "bias": config.bias, "rope": config.rope, "gelu": config.gelu,
                          "layer_norm_eps": config.layer_norm_eps}

    @property
    def context_length(self) -> int | None:
        """Window length of a token stream; None for images and rows, whose examples are whole sequences."""
        return None if self.tokens is not None else self.config.block_size

    def hidden_matrices(self) -> list[nn.Parameter]:
        return self.net.hidden_matrices()

    def prepare(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> None:
        """What the tokenizer learns from the data (a table's quantile bins)."""
        if self.tokens is not None:
            self.tokens.fit(x)

    def _first_tokens(self, n: int, labels: torch.Tensor | None, device: torch.device) -> torch.Tensor:
        """(n, 1): each example's class token, or the start token."""
        if labels is not None:
            return (self.tokens.vocab_size + labels).view(n, 1)
        return torch.full((n, 1), self.start_token, dtype=torch.long, device=device)

    def sequences(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Token sequences (B, T+1) whose first token is given: text windows as they are, others tokenised."""
        if self.tokens is None:
            return x
        return torch.cat([self._first_tokens(len(x), labels, x.device), self.tokens.encode(x)], dim=1)

    @property
    def end_token(self) -> int | None:
        """The token that ends an example and pads it to length (molecules); None where there is none."""
        return self.tokens.end_token if self.tokens is not None else None

    def example_lengths(self, x: torch.Tensor) -> np.ndarray | None:
        end = self.end_token
        return None if end is None else (self.tokens.encode(x) != end).sum(1).cpu().numpy()

    def example_mask(self, sequences: torch.Tensor) -> torch.Tensor:
        """(B, T+1) 1 at the positions of each sequence that belong to its example: every one, or where an end
        token closes examples and pads them to length (molecules), those up to the first end token. The padding
        after it is not modelled: a molecule's likelihood is that of its tokens and its end."""
        if self.end_token is None:
            return torch.ones_like(sequences, dtype=torch.float)
        ends = (sequences == self.end_token).long()
        return (ends.cumsum(1) - ends == 0).float()

    def losses(self, x: torch.Tensor, labels: torch.Tensor | None) -> Iterator[LossStep]:
        x = self.sequences(x, labels)
        counted = self.example_mask(x)
        positions = counted.numel() - len(x)  # per example a fixed count, as its own: DP's bound holds per example
        if self.end_token is not None:  # cut after the longest example's end: the padding past it costs time in
            # proportion (batches of like lengths leave little: on moses 38 positions of 58, a step 1.5-1.6x faster
            # at 1 thread, 2 threads and beside a busy core); one host sync a step, for examples that end only
            longest = int(counted.sum(1).max())
            x, counted = x[:, :longest], counted[:, :longest]
        counted = counted[:, 1:]
        logits = self.net(x[:, :-1])
        token_losses = F.cross_entropy(logits.flatten(0, 1).float(), x[:, 1:].flatten(), reduction="none")
        yield "model", (token_losses * counted.flatten()).sum() / positions, {}

    def log_prob(self, x: torch.Tensor, labels: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Per-example log-likelihood in nats: of text windows (B, T+1) with the first token given, of images
        quantised to K levels, or of molecules' tokens and their end."""
        x = self.sequences(x, labels)
        logits = self.net(x[:, :-1])
        token_losses = F.cross_entropy(logits.transpose(1, 2).float(), x[:, 1:], reduction="none")
        return -(token_losses * self.example_mask(x)[:, 1:]).sum(1)

    def _marked(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sequences as the codec encodes them, given their first token where the codec gives none, and `mask`
        widened to match (the given token is not marked), marking no padding after an example's end."""
        sequences = self.sequences(x, None)
        widened = torch.cat([mask.new_zeros(len(x), sequences.shape[1] - x.shape[1]), mask], dim=1)
        return sequences, widened * self.example_mask(sequences).to(mask.dtype)

    def token_log_probs(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Of sequences as the codec encodes them (text starting with its start token; other examples are given
        their first token here), for every token after the first: its log-probability (nats), the mask aligned
        with it, and the hidden state that predicted it (B, T, n_embd), which PPO's value head reads."""
        sequences, mask = self._marked(x, mask)
        mask = mask[:, 1:]
        hidden = self.net.features(sequences[:, :-1])
        logits = self.net.lm_head(hidden)
        log_probs = -F.cross_entropy(logits.transpose(1, 2).float(), sequences[:, 1:], reduction="none")
        return log_probs, mask, hidden

    def final_hidden(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, n_embd) the hidden state after the last token `mask` marks of each sequence (as token_log_probs
        takes them), which has read the whole response: what a reward head reads; of a molecule, the state at its
        end token (the padding after it is not marked)."""
        sequences, mask = self._marked(x, mask)
        sequences = sequences[:, :self.net.block_size]
        last = (mask * torch.arange(mask.shape[1], device=mask.device)).argmax(1).clamp(max=sequences.shape[1] - 1)
        return self.net.features(sequences)[torch.arange(len(x)), last]

    def sequence_log_prob(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B,) the log-likelihood (nats) of the tokens `mask` marks (token_log_probs' sequences)."""
        log_probs, mask, _ = self.token_log_probs(x, mask)
        return (log_probs * mask).sum(1)

    def evaluate(self, x: torch.Tensor, labels: torch.Tensor | None) -> dict[str, float]:
        if self.tokens is not None:
            return self.tokens.likelihood_scores(self.log_prob(x, labels))
        loss = -self.log_prob(x).mean().item() / (x.shape[1] - 1)
        return {"val_loss": loss, "perplexity": math.exp(loss), "bits_per_token": loss / math.log(2)}

    def generate(self, prompt: torch.Tensor, max_new_tokens: int, sampling: TokenSampling,
                 generator: torch.Generator, use_cache: bool = True, allowed: torch.Tensor | None = None,
                 on_pass: Callable[[], None] = lambda: None,
                 watermark: TextWatermark | None = None,
                 grammar: Callable[[torch.Tensor, int], torch.Tensor] | None = None,
                 padding: torch.Tensor | None = None) -> Iterator[torch.Tensor]:
        """Yield the next token (B,) of each prompt (B, T), max_new_tokens times; with `allowed`
        (max_new_tokens, vocab) only the tokens it marks at each step (a pixel is never a class token), with a
        `grammar` only those it allows after the tokens generated so far; with a `watermark`, each draw tilted
        toward the green list its previous token keys. Prompts of different lengths come right-aligned, with
        `padding` (B,) filler tokens before each (the row's first token, so a repetition penalty sees nothing
        new), which the cache hides from attention.

        With the cache, each step feeds one token (token_rows.py says how windows past the context restart).
        """
        rows = TokenRows(self.net, prompt, padding, use_cache, room=max_new_tokens)
        given = prompt.shape[1]
        # where each step allows one run of tokens (a table's column, an image's levels) and nothing else reads
        # the whole vocabulary, only that run's logits are made and drawn from: the draws of the masked
        # vocabulary to float rounding (a narrower product may round apart), with less work on every step
        alone = grammar is None and watermark is None and sampling.repetition_penalty == 1
        spans = token_runs(allowed.cpu()) if allowed is not None and alone else None  # one transfer, not one a step
        for step in range(max_new_tokens):
            span = spans[step] if spans is not None else slice(None)
            logits = rows.next_logits(span)
            if allowed is not None and spans is None:
                logits = logits.masked_fill(~allowed[step], -math.inf)
            if grammar is not None:
                logits = logits.masked_fill(~grammar(rows.history[:, given:], logits.shape[-1]), -math.inf)
            token = draw_next(logits, rows.history, sampling, generator, watermark)
            if span.start:
                token = token + span.start
            rows.append(token)
            on_pass()
            yield token

    def token_batch(self, sampling: TokenSampling, generator: torch.Generator,
                    watermark: TextWatermark | None = None) -> TokenBatch:
        """generate's form for rows that join and leave while it runs (a server's continuous batching)."""
        if not isinstance(self.net, Transformer):  # an exported decoder's cache cannot take rows in or out
            raise GenloomError("prompts join a running batch on the PyTorch transformer only; continue them "
                               "together with generate_many")
        return TokenBatch(self.net, sampling, generator, watermark)

    def sample_bytes(self) -> int:
        return super().sample_bytes() if self.tokens is not None else 8 * self.config.block_size  # int64 tokens

    @property
    def samples_side_by_side(self) -> bool:
        """Batches may be drawn at once, each generation holding its own cache and decoder: on the PyTorch
        transformer (an exported decoder's runtime has threads of its own) where one batch's cache is small (a
        table's rows: some 12 MB; a batch of 28x28 images would hold some 1.2 GB)."""
        cache_bytes = 2 * self.config.n_layer * SAMPLE_BATCH * self.sampling_passes() * self.config.n_embd * 4
        return isinstance(self.net, Transformer) and cache_bytes <= SIDE_BY_SIDE_CACHE_BYTES

    def sampling_passes(self, options: TokenSampling | None = None) -> int:
        return self.tokens.length if self.tokens is not None else self.config.block_size

    def sample(self, n: int, labels: torch.Tensor | None, generator: torch.Generator,
               options: TokenSampling | None = None, given: Sequence[int] = (),
               on_pass: Callable[[], None] = lambda: None) -> torch.Tensor:
        device = self.net.wte.weight.device
        options = options or TokenSampling()
        if self.tokens is None:
            prompt = torch.full((n, 1), self.layout.start_token, dtype=torch.long, device=device)
            tokens = self.generate(prompt, self.config.block_size, options, generator, on_pass=on_pass)
            return torch.stack(list(tokens), dim=1)
        if self.conditional and labels is None:
            labels = torch.randint(self.layout.num_classes, (n,), generator=generator).to(device)
        prompt = self._first_tokens(n, labels, device)
        allowed = self.tokens.allowed(self.net.wte.weight.shape[0]).to(device)  # once, not per token
        grammar = self.tokens.grammar if options.grammar else None
        tokens = self.generate(prompt, self.tokens.length, options, generator, allowed=allowed, on_pass=on_pass,
                               grammar=grammar)
        return self.tokens.decode(torch.stack(list(tokens), dim=1), generator)
