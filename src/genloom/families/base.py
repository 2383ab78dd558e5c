"""The Family contract: a training objective and a sampler, written once for every data kind.

A family sees only tensors and the codec's Layout; it never imports pandas or PIL, and never asks which kind
of data it has: what differs per kind comes from the layout's pieces and from genloom/defaults.py.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import GenloomError
from ..layout import Layout
from . import CATALOG, family_class

# One training step yields (optimiser group, loss, numbers to log) once per optimiser update; a GAN
# yields twice (discriminator, then generator), so the loop stays one loop for every family.
LossStep = tuple[str, torch.Tensor, dict[str, float]]


class FrozenReference:
    """A network a family reads but neither trains nor saves (a distillation's teacher): held outside the module
    tree, so no optimiser, state_dict, train() or weight-average copy reaches it."""

    def __init__(self, module: nn.Module):
        self.module = module.requires_grad_(False).eval()

    def __deepcopy__(self, memo: dict) -> FrozenReference:
        return self


class Family(nn.Module, ABC):
    """Base of every family; subclasses set `name` and implement `losses` and `sample`. The config is the
    family's option record (families/configs.py); every one has a `conditional` field."""

    name: ClassVar[str]
    takes_given_rows: ClassVar[bool] = False  # reads a table's condition_on columns beside each row (diffusion, VAE)
    validates: ClassVar[bool] = True      # False where no held-out loss measures quality (a GAN's)
    # with several optimisers: the network that reads the training data, the one DP-SGD trains (a GAN's critic; the
    # others learn only from it, which is post-processing); None: the whole family, trained by one optimiser
    private_part: ClassVar[str | None] = None
    tools: ClassVar[frozenset[str]] = frozenset()  # which of encode, decode, log_prob, anomaly_score, generate...
    anomaly_measure: ClassVar[str] = "negative log-likelihood in nats"  # what its anomaly_score is

    def __init__(self, layout: Layout, config: Any):
        super().__init__()
        self.layout, self.config = layout, config
        if layout.condition_width and not self.takes_given_rows:
            having = [name for name in CATALOG if family_class(name).takes_given_rows]
            raise GenloomError(f"family '{self.name}' cannot be given columns (condition_on); families that can: "
                               f"{', '.join(having)}")
        if layout.condition_width and config.conditional:
            raise GenloomError(f"a {self.name} given columns (condition_on) is conditioned on them, not on class "
                               "labels: drop --conditional")
        if config.conditional and layout.num_classes == 0:
            raise GenloomError(f"conditional {self.name} needs labelled data (one sub-folder per class, "
                               "or labels in the .npz); this data has none")

    @property
    def samples_side_by_side(self) -> bool:
        """sample() may run for several batches at once on threads of their own: it writes no state outside the
        call, and a batch's working memory is small (drawing.py runs batches side by side where one batch's small
        matrices leave a second core idle)."""
        return False

    @property
    def conditional(self) -> bool:
        return self.config.conditional

    @property
    def given_rows(self) -> bool:
        """Each example comes with the encoded values of columns it is generated for (a table's condition_on),
        which reach the family where class labels would."""
        return self.layout.condition_width > 0

    def check_given(self, labels: torch.Tensor | None) -> None:
        """Refuse to sample a model that is given rows without them."""
        if self.given_rows and labels is None:
            raise GenloomError("this model generates rows given the values of other columns (condition_on): pass "
                               "them, one row per sample (conditions=<a DataFrame of those columns>; CLI: "
                               "--conditions FILE.csv)")

    @property
    def window_grid(self) -> int | None:
        """Where its training windows of a token stream start: at multiples of this, each window given its offset
        where labels would be (knowledge distillation's teacher targets, read once on those windows); None:
        anywhere, no offsets."""
        return None

    def example_lengths(self, x: torch.Tensor) -> np.ndarray | None:
        """Each training example's length where examples end before the layout's length (molecules), so batches
        can gather examples of like lengths and train on less padding; None where every example fills it."""
        return None

    @property
    def context_length(self) -> int | None:
        """Window length when the data is one token stream (text); None when examples are whole."""
        return None

    @property
    def latent_shape(self) -> tuple[int, ...]:
        """Shape of one latent code, for families with encode or decode: a vector of latent_dim here (the VAE's,
        the GAN's); a diffusion model's is its noise, the shape of an example."""
        return (self.config.latent_dim,)

    def tool(self, method: str) -> Callable[..., Any]:
        """Its encode, decode, log_prob or generate, or a one-line error naming the families that have it."""
        if method not in self.tools:
            having = [name for name in CATALOG if method in family_class(name).tools]
            raise GenloomError(f"family '{self.name}' has no {method}; families with one: {', '.join(having)}")
        return getattr(self, method)

    def anomaly_score(self, x: torch.Tensor, labels: torch.Tensor | None = None,
                      generator: torch.Generator | None = None) -> torch.Tensor:
        """How unlike the training data each example is (higher: less typical): its negative log-likelihood,
        for the families with one; a family without a likelihood and with a measure of its own overrides this."""
        return -self.log_prob(x, labels, generator)

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """Trainable parameters per optimiser; one group called 'model' unless the family needs more."""
        return {"model": [p for p in self.parameters() if p.requires_grad]}

    def hidden_matrices(self) -> list[nn.Parameter]:
        """The weight matrices inside its networks that Muon may train (a transformer's blocks); none here."""
        return []

    def check_batch_size(self, batch_size: int) -> None:
        """Refuse, before any training, a batch size the family cannot learn from (a GAN's packs)."""

    def prepare(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor | None:
        """See the whole (encoded) training set once before training, to keep statistics of it as buffers;
        return per-example sampling weights for the batches, or None for plain shuffled epochs."""
        return None

    def adopt(self, load_run: Callable[[Path], Any]) -> None:
        """Before training, take weights from other runs its options name, read with `load_run` (a run folder ->
        its parts: record, config, codec, ema_net); none here. Families sit below runs, so the model passes the
        reader in."""

    def begin_step(self, progress: float) -> None:
        """Told before each training step what share of the budget is spent (a family that trains in stages,
        such as an autoencoder before its prior, switches here)."""

    @abstractmethod
    def losses(self, x: torch.Tensor, labels: torch.Tensor | None) -> Iterator[LossStep]:
        """Yield each loss of one training step; the loop back-propagates and steps its group."""

    def sample_bytes(self) -> int:
        """Bytes of one encoded sample (float32 in the layout's shape)."""
        return 4 * math.prod(self.layout.shape)

    def sampling_passes(self, options: Any = None) -> int:
        """Network passes one call of `sample` makes (a diffusion model's steps), for progress bars."""
        return 1

    @abstractmethod
    def sample(self, n: int, labels: torch.Tensor | None, generator: torch.Generator, options: Any = None,
               given: Sequence[int] = (), on_pass: Callable[[], None] = lambda: None) -> torch.Tensor:
        """n new examples in the codec's tensor layout; all randomness from `generator` (a CPU one,
        so a seed gives the same samples on every device); `options` the family's sampling options or None.
        `given`: positions of the encoded row asked to be 1 (a table's category conditions); a family that
        can steer towards them does, the others ignore them (the caller keeps the rows that match).
        `on_pass` is called after each network pass (sampling_passes of them)."""

    def evaluate(self, x: torch.Tensor, labels: torch.Tensor | None) -> dict[str, float]:
        """Cheap held-out numbers worth printing at the end of training (e.g. the ELBO)."""
        return {}
