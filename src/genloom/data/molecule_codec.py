"""MoleculeCodec: SMILES strings <-> fixed-length token sequences, in SMILES' own tokens (atoms, bonds, branches,
ring closures) or in SELFIES (Krenn et al. 2020), whose every token sequence decodes to a valid molecule."""
from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from ..errors import GenloomError
from ..extras import require
from .codec import Codec
from .dataset import Dataset
from .molecule_layout import MoleculeLayout
from .molecules import molecule_property, parsed
from .sample_files import CsvWriter, SampleWriter
from .smiles_grammar import SmilesGrammar, smiles_grammar

if TYPE_CHECKING:
    from .content_credentials import ContentSigner

END = "<end>"  # id 0: closes a molecule and pads it to the codec's length

# one SMILES token: a bracket atom, a two-letter halogen, a two-digit ring closure, an organic-subset atom
# (aromatic in lower case), a bond, a branch or a one-digit ring closure
SMILES_TOKEN = re.compile(r"\[[^\]]+\]|Br|Cl|%\d{2}|[BCNOSPFIbcnosp]|[()=#\-+\\/:~@?>*$.]|\d")


def smiles_tokens(smiles: str) -> list[str]:
    """A SMILES string's tokens; characters no token covers are a one-line error."""
    tokens = SMILES_TOKEN.findall(smiles)
    if sum(map(len, tokens)) != len(smiles):
        stray = sorted(set(SMILES_TOKEN.sub("", smiles)))
        raise GenloomError(f"{smiles!r} holds characters that are not SMILES: {', '.join(map(repr, stray))}")
    return tokens


def selfies_tokens(smiles: str) -> list[str]:
    """The SELFIES tokens of a molecule given as SMILES."""
    selfies = require("selfies", "molecules", "SELFIES")
    try:
        return list(selfies.split_selfies(selfies.encoder(smiles)))
    except selfies.EncoderError as error:
        raise GenloomError(f"SELFIES cannot write {smiles!r} ({str(error).splitlines()[0][:120]}); use "
                           "--tokenizer smiles") from None


def selfies_to_smiles(tokens: list[str]) -> str:
    return require("selfies", "molecules", "SELFIES").decoder("".join(tokens))


# tokenizer: (a molecule's tokens, tokens back to a SMILES string, the syntax over a vocabulary if it has one)
TOKENIZERS: dict[str, tuple[Callable[[str], list[str]], Callable[[list[str]], str],
                            Callable[[Sequence[str], str], SmilesGrammar] | None]] = {
    "smiles": (smiles_tokens, "".join, smiles_grammar),
    "selfies": (selfies_tokens, selfies_to_smiles, None),  # every SELFIES string is a molecule
}


class MoleculeTableWriter(CsvWriter):
    """A .csv of molecules: a `smiles` column (of samples), or the table of designs as it is."""

    def append(self, chunk: Any) -> None:
        super().append(chunk if isinstance(chunk, pd.DataFrame) else pd.DataFrame({"smiles": list(chunk)}))


class MoleculeCodec(Codec):
    """Molecules (SMILES) as `length` token ids over the training molecules' vocabulary; generated sequences
    decode to SMILES strings, valid or not (the metrics count them; nothing fails). With a `property` (an RDKit
    property a VAE's head learns to predict: QED, logP, SA, weight), each molecule's value follows its tokens,
    scaled to [-1, 1] over the training molecules' range."""

    kind = "molecule"
    sample_formats = (".smi", ".png", ".csv")  # SMILES, one a line; a drawing of them; a table (designs)
    design_values = "RDKit's value"
    preview_count = 48  # drawn: six rows of eight

    @property
    def sample_suffix(self) -> str:
        """Samples written during training are drawn: the report and TensorBoard show the molecules."""
        return ".png"

    def __init__(self, tokenizer: str = "smiles", vocabulary: list[str] | None = None, length: int = 0,
                 property: str | None = None, property_range: tuple[float, float] = (0.0, 1.0)):
        if tokenizer not in TOKENIZERS:
            raise GenloomError(f"unknown molecule tokenizer '{tokenizer}'; use one of {', '.join(TOKENIZERS)}")
        self.tokenizer, self.vocabulary, self.length = tokenizer, list(vocabulary or []), length
        self._split, self._join, self._grammar = TOKENIZERS[tokenizer]
        self._index = {token: i for i, token in enumerate(self.vocabulary)}
        if property is not None:
            molecule_property(property)  # a name RDKit does not provide is a one-line error, before any work
        self.property, self.property_range = property, tuple(property_range)
        self._property_seen: dict[str, float] = {}

    def property_values(self, smiles: Sequence[str]) -> np.ndarray:
        """RDKit's value of the codec's property for each molecule; NaN for a string that is not one. Kept for the
        strings seen, as the training molecules are scored once to fit and once to encode (QED: 1.5 ms each)."""
        function = molecule_property(self.property)
        for text in smiles:
            if text not in self._property_seen:
                self._property_seen[text] = function(molecule) if (molecule := parsed(text)) is not None else np.nan
        return np.array([self._property_seen[text] for text in smiles], dtype=np.float64)

    def fit(self, data: Dataset) -> MoleculeCodec:
        """The vocabulary of the training molecules' tokens, and a length that holds the longest and its end."""
        tokenized = [self._split(smiles) for smiles in data.values]
        self.vocabulary = [END, *sorted({token for tokens in tokenized for token in tokens})]
        self._index = {token: i for i, token in enumerate(self.vocabulary)}
        self.length = max(map(len, tokenized)) + 1
        if self.property is not None:
            values = self.property_values(data.values)
            if np.isnan(values).all():
                raise GenloomError(f"RDKit gives no {self.property} for any of these molecules; train without "
                                   "the property, or on molecules RDKit reads")
            self.property_range = (float(np.nanmin(values)), float(np.nanmax(values)))
        return self

    @property
    def layout(self) -> MoleculeLayout:
        grammar = self._grammar(self.vocabulary, END) if self._grammar is not None else None
        if self.property is None:
            return MoleculeLayout((self.length,), vocab_size=len(self.vocabulary), grammar=grammar)
        return MoleculeLayout((self.length + 1,), vocab_size=len(self.vocabulary), property_position=self.length,
                              grammar=grammar)

    def encode(self, values: Any) -> torch.Tensor:
        """(N, length) token ids of SMILES strings (one string: N = 1); with a property, (N, length + 1) floats:
        the ids, then the scaled property (0 for a string that is not a molecule)."""
        smiles = [values] if isinstance(values, str) else list(values)
        ids = np.zeros((len(smiles), self.length), dtype=np.int64)  # END after each molecule
        for row, text in enumerate(smiles):
            if not isinstance(text, str):
                raise GenloomError(f"molecules are SMILES strings; got {type(text).__name__} at #{row}")
            tokens = self._split(text)
            unknown = sorted(set(tokens) - self._index.keys())
            if unknown:
                raise GenloomError(f"{text!r} holds tokens the model never saw: {', '.join(unknown[:10])}; it knows "
                                   f"only its training molecules' {len(self.vocabulary) - 1} tokens")
            if len(tokens) > self.length:  # a sample that never drew the end token fills the length
                raise GenloomError(f"{text!r} has {len(tokens)} tokens; this model's molecules have at most "
                                   f"{self.length}")
            ids[row, :len(tokens)] = [self._index[token] for token in tokens]
        if self.property is None:
            return torch.from_numpy(ids)
        low, high = self.property_range
        scaled = np.nan_to_num(2 * (self.property_values(smiles) - low) / max(high - low, 1e-12) - 1)
        return torch.from_numpy(np.concatenate([ids, scaled[:, None]], axis=1)).float()

    def decode(self, tensor: torch.Tensor, first: int = 0) -> list[str]:
        """SMILES strings of token sequences, each up to its first end token (a SELFIES sequence decodes to a
        valid molecule; a SMILES one may not)."""
        molecules = []
        for row in torch.as_tensor(tensor)[:, :self.length].long().cpu().tolist():
            length = row.index(0) if 0 in row else len(row)
            molecules.append(self._join([self.vocabulary[i] for i in row[:length]]))
        return molecules

    def sample_writer(self, path: str | Path, total: int, provenance: Mapping[str, Any] | None = None,
                      signer: ContentSigner | None = None) -> SampleWriter:
        """.smi files as any codec's; a .png is a drawing of the molecules (data/molecule_drawing.py)."""
        if Path(path).suffix.lower() == ".png":
            from .molecule_drawing import DrawingWriter

            return DrawingWriter(Path(path), total, provenance, signer)
        if Path(path).suffix.lower() == ".csv":
            return MoleculeTableWriter(Path(path), total, provenance, signer)
        return super().sample_writer(path, total, provenance, signer)

    def label_ids(self, labels: Any) -> np.ndarray:
        raise GenloomError("molecule models take no labels")

    def check_preferences(self) -> None:
        """Its examples are token sequences: preference and reward tuning apply."""

    def preference_example(self, prompt: str, response: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The molecule's token ids, every one of them weighed (the end tokens too: they end it)."""
        if prompt:
            raise GenloomError(f"molecules are generated without a prompt; leave \"prompt\" out (got {prompt[:40]!r})")
        ids = self.encode([response])[0]
        return ids, torch.ones_like(ids)

    def designed(self, rows: torch.Tensor) -> pd.DataFrame:
        """Designed molecules: their SMILES, RDKit's value of the property (NaN for a string that is not a
        molecule) and the model's estimate of it (the scaled value after the tokens)."""
        smiles = self.decode(rows)
        low, high = self.property_range
        estimate = (torch.as_tensor(rows)[:, self.length].double().cpu().numpy() + 1) / 2 * (high - low) + low
        return pd.DataFrame({"smiles": smiles, self.property: self.property_values(smiles),
                             f"{self.property} (the model's estimate)": estimate})

    def describe(self) -> dict[str, Any]:
        return {"tokenizer": self.tokenizer, "length": self.length, "vocab_size": len(self.vocabulary),
                **({"property": self.property} if self.property is not None else {})}

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "tokenizer": self.tokenizer, "vocabulary": self.vocabulary, "length": self.length,
                "property": self.property, "property_range": list(self.property_range)}

    @classmethod
    def from_json(cls, state: dict[str, Any]) -> MoleculeCodec:
        return cls(state["tokenizer"], state["vocabulary"], state["length"], state.get("property"),
                   tuple(state.get("property_range", (0.0, 1.0))))
