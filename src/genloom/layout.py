"""Layout: what a family and a backbone know of the encoded data (no pandas, no PIL, no torch here).

A codec describes one encoded example with a Layout of its data kind. The per-kind pieces a family needs
(the likelihood of a reconstruction, a tokenizer, a table's category conditions) come from the layout's
methods, which each kind's layout overrides beside its codec: a family asks for a piece, never for the kind.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Protocol, Sequence

from .errors import GenloomError

if TYPE_CHECKING:  # annotations only: the pieces themselves live beside each codec, which imports torch
    import torch

# the one vocabulary of data kinds: Dataset.kind, Layout.kind, codec names
KINDS = ("image", "table", "text", "molecule", "signal")
LEGACY_KINDS = {"images": "image", "sequence": "text"}  # as genloom 0.1.0 wrote them into run folders
SPAN_KINDS = ("continuous", "category", "mode", "missing")


def data_kind(name: str) -> str:
    """A kind name as this genloom spells it (run folders of 0.1.0 wrote "images")."""
    return LEGACY_KINDS.get(name, name)


@dataclass(frozen=True)
class Span:
    """One block of an encoded table row: a continuous value (width 1), or a one-hot over `width` slots that
    holds a column's category, the mode of a number (CTGAN's normalisation) or a missing-value flag."""

    kind: str
    width: int

    def __post_init__(self) -> None:
        if self.kind not in SPAN_KINDS or self.width < 1 or (self.kind == "continuous" and self.width != 1):
            raise GenloomError(f"impossible table span {self.kind!r} of width {self.width}")

    @property
    def one_hot(self) -> bool:
        return self.kind != "continuous"

    @property
    def conditionable(self) -> bool:
        """A user may ask for rows with one of these slots (a column's category)."""
        return self.kind == "category"


@dataclass(frozen=True)
class Layout:
    """The codec's description of one encoded example; backbones are built from it."""

    kind: str                  # a data kind (KINDS); picks the backbone
    shape: tuple[int, ...]     # shape of one encoded example, e.g. (C, H, W); () for a token stream
    num_classes: int = 0       # classes available for conditioning; 0 = none
    vocab_size: int = 0        # token streams: number of distinct tokens
    start_token: int = 0       # token streams: the token an unprompted sample starts from
    spans: tuple[Span, ...] = ()  # tables: the blocks of a row, in order
    property_position: int | None = None  # tables: where the number a property head predicts sits in a row
    bounded: bool = True       # values lie in [-1, 1], where a sampler may clip; an autoencoder's latents do not
    condition_width: int = 0   # tables: the width of the encoded columns each row is conditioned on (condition_on)

    def reconstruction(self) -> Reconstruction:
        """How a decoder's raw output becomes data of this kind (a VAE's likelihood, a GAN's activation)."""
        raise GenloomError(f"no reconstruction likelihood for {self.kind} data; the VAE and GAN work on images "
                           "and tables")

    def tokens(self, levels: int, bins: int) -> Tokens | None:
        """Examples as token sequences for the autoregressive family (`levels` per pixel, `bins` per number);
        None when the data already is a token stream."""
        raise GenloomError(f"no tokenizer for {self.kind} data")

    def category_conditions(self) -> CategoryConditions | None:
        """CTGAN's conditional vector over the categories a user may ask for; None where there are none."""
        return None



class Reconstruction(Protocol):
    """A decoder's likelihood of the data and the activation that makes a generator's output data."""

    discrete: bool                   # a probability (bits per dimension mean something), not a density
    adversarial: bool                # `activate` makes a generator's output data, which a critic can judge
    scale_shape: tuple[int, ...]     # shape of the learnt log-scale

    def log_prob(self, x: torch.Tensor, output: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor: ...
    def mean(self, output: torch.Tensor) -> torch.Tensor: ...
    def sample(self, output: torch.Tensor, generator: torch.Generator) -> torch.Tensor: ...
    def activate(self, output: torch.Tensor, generator: torch.Generator | None = None,
                 noise: bool = True) -> torch.Tensor: ...


class Tokens(Protocol):
    """Examples <-> fixed-length token sequences, and which tokens may stand at each position."""

    length: int
    vocab_size: int
    # which tokens may follow the ones drawn so far (B, t), as a (B, vocab) mask; None: any the static mask allows
    grammar: Callable[[torch.Tensor, int], torch.Tensor] | None
    end_token: int | None  # the id that ends an example and pads it to length (molecules), if examples have one

    def fit(self, x: torch.Tensor) -> None: ...
    def encode(self, x: torch.Tensor) -> torch.Tensor: ...
    def decode(self, tokens: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor: ...
    def allowed(self, vocab_size: int) -> torch.Tensor: ...
    def likelihood_scores(self, log_prob: torch.Tensor) -> dict[str, float]: ...


class CategoryConditions(Protocol):
    """Conditions over a table's categories (CTGAN's conditional vector and training-by-sampling)."""

    width: int

    def fit(self, x: torch.Tensor) -> torch.Tensor: ...
    def for_rows(self, x: torch.Tensor) -> torch.Tensor: ...
    def draw(self, n: int, generator: torch.Generator) -> torch.Tensor: ...
    def mean(self) -> torch.Tensor: ...
    def asking(self, given: Sequence[int], n: int) -> torch.Tensor | None: ...
    def cross_entropy(self, output: torch.Tensor, conditions: torch.Tensor) -> torch.Tensor: ...
