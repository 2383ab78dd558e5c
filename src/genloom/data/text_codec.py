"""TextCodec: a corpus <-> a stream of token ids, by characters or by a BPE vocabulary trained locally."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..errors import GenloomError
from .codec import Codec
from .dataset import Dataset
from .text_layout import TextLayout

if TYPE_CHECKING:
    from tokenizers import Tokenizer

TOKENIZERS = ("char", "bpe")


def train_bpe(text: str, vocab_size: int) -> Tokenizer:
    """A byte-level BPE vocabulary (as GPT-2's) trained on `text` with HF tokenizers; nothing downloaded."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    chunk = 1 << 16
    tokenizer.train_from_iterator((text[i:i + chunk] for i in range(0, len(text), chunk)), trainer)
    return tokenizer


class TextCodec(Codec):
    """Characters (exact, small vocabulary) or byte-level BPE (any text, shorter sequences)."""

    kind = "text"
    sample_formats = (".txt", ".jsonl")
    preview_count = 8  # whole texts: the report shows three

    def __init__(self, tokenizer: str = "char", vocab_size: int = 1024, chars: list[str] | None = None,
                 bpe: str | None = None):
        if tokenizer not in TOKENIZERS:
            raise GenloomError(f"unknown tokenizer '{tokenizer}'; use one of {', '.join(TOKENIZERS)}")
        if tokenizer == "bpe" and vocab_size < 257:
            raise GenloomError(f"a BPE vocabulary needs more than the 256 bytes; got vocab_size={vocab_size}")
        self.tokenizer, self.vocab_size = tokenizer, vocab_size
        self.chars = list(chars or [])
        self._bpe = None
        if bpe is not None:
            from tokenizers import Tokenizer
            try:
                self._bpe = Tokenizer.from_str(bpe)
            except Exception as error:  # noqa: BLE001  (tokenizers raises a bare Exception for a bad file)
                raise GenloomError(f"the BPE tokenizer is damaged ({str(error)[:120]}); it cannot be read") from None
        self._index = {c: i for i, c in enumerate(self.chars)}

    def fit(self, data: Dataset) -> "TextCodec":
        if self.tokenizer == "char":
            self.chars = sorted(set(data.values))
            self._index = {c: i for i, c in enumerate(self.chars)}
        else:
            self._bpe = train_bpe(data.values, self.vocab_size)
        return self

    @property
    def end_token(self) -> int | None:
        """The id of GPT-2's <|endoftext|> where the vocabulary has one: generation stops there."""
        return self._bpe.token_to_id("<|endoftext|>") if self._bpe is not None else None

    @property
    def layout(self) -> TextLayout:
        """Unprompted samples start after a newline (or after <|endoftext|>, as GPT-2's do)."""
        if self.tokenizer == "char":
            return TextLayout((), vocab_size=len(self.chars), start_token=self._index.get("\n", 0))
        newline = self._bpe.encode("\n").ids
        start = self.end_token if self.end_token is not None else (newline[0] if len(newline) == 1 else 0)
        return TextLayout((), vocab_size=self._bpe.get_vocab_size(), start_token=start)

    def encode(self, values: str) -> torch.Tensor:
        """Token ids (a 1-D int64 tensor) of one text."""
        if not isinstance(values, str):
            raise GenloomError(f"text must be a string; got {type(values).__name__}")
        if self.tokenizer == "bpe":
            return torch.tensor(self._bpe.encode(values).ids, dtype=torch.long)
        unknown = sorted(set(values) - self._index.keys())
        if unknown:
            shown = ", ".join(repr(c) for c in unknown[:10])
            raise GenloomError(f"characters not in the model's vocabulary: {shown}; remove them "
                               "(a character model knows only the characters of its training text)")
        return torch.tensor([self._index[c] for c in values], dtype=torch.long)

    def decode(self, tensor: torch.Tensor | list[int], first: int = 0) -> str | list[str]:
        """Text of a 1-D id sequence, or a list of texts for a 2-D batch."""
        if isinstance(tensor, list) and all(isinstance(i, int) for i in tensor):
            ids = tensor  # a streamed text's few ids, a token at a time: no tensor made for them
        else:
            values = torch.as_tensor(tensor).cpu()
            if values.dim() == 2:
                return [self.decode(row) for row in values]
            ids = values.tolist()
        if self.tokenizer == "bpe":
            return self._bpe.decode(ids)
        return "".join(self.chars[i] for i in ids)

    def describe(self) -> dict[str, Any]:
        return {"tokenizer": self.tokenizer, "vocab_size": self.layout.vocab_size}

    def label_ids(self, labels: Any) -> np.ndarray:
        raise GenloomError("text models take no labels; give a prompt instead")

    def check_preferences(self) -> None:
        """Its examples are token sequences: preference and reward tuning apply."""

    def preference_example(self, prompt: str, response: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The start token, the prompt's tokens and the response's (each encoded alone), the response masked in."""
        given, answer = self.encode(prompt), self.encode(response)
        if not len(answer):
            raise GenloomError(f"an empty response after the prompt {prompt[:40]!r}: a preference compares two texts")
        ids = torch.cat([torch.tensor([self.layout.start_token]), given, answer])
        mask = torch.cat([torch.zeros(1 + len(given), dtype=torch.long), torch.ones(len(answer), dtype=torch.long)])
        return ids, mask

    def files(self) -> dict[str, str]:
        """Extra files a run keeps: tokenizer.json for BPE, loadable by HF tokenizers."""
        return {"tokenizer.json": self._bpe.to_str()} if self._bpe is not None else {}

    def to_json(self) -> dict[str, Any]:
        state = {"kind": self.kind, "tokenizer": self.tokenizer, "vocab_size": self.vocab_size}
        if self.tokenizer == "char":
            state["chars"] = self.chars
        else:
            state["bpe"] = self._bpe.to_str()
        return state

    @classmethod
    def from_json(cls, state: dict[str, Any]) -> "TextCodec":
        return cls(state["tokenizer"], state["vocab_size"], state.get("chars"), state.get("bpe"))
