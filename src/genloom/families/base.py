"""The Family contract: a training objective and a sampler, written once for every data kind.

A family sees only tensors and the codec's Layout; it never imports pandas or PIL.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Iterator, Sequence

import torch
from torch import nn

from ..layout import Layout
from ..errors import GenloomError

# One training step yields (optimiser group, loss, numbers to log) once per optimiser update; a GAN
# yields twice (discriminator, then generator), so the loop stays one loop for every family.
LossStep = tuple[str, torch.Tensor, dict[str, float]]


class Family(nn.Module, ABC):
    """Base of every family; subclasses set `name` and `Config` and implement `losses` and `sample`."""

    name: ClassVar[str]
    Config: ClassVar[type]
    train_defaults: ClassVar[dict] = {}   # TrainConfig values that suit this family better than the general ones
    # ... and those that suit a kind of data (Dataset.kind: "images", "table", "text"): rows of a table are
    # cheap, so batches are large (as CTGAN's and TVAE's)
    train_defaults_by_kind: ClassVar[dict[str, dict]] = {"table": {"batch_size": 500}}
    codec_defaults_by_kind: ClassVar[dict[str, dict]] = {}  # codec options that suit this family, per Dataset.kind
    SampleOptions: ClassVar[type | None] = None  # dataclass of sampling settings (a sampler, a temperature)
    validates: ClassVar[bool] = True      # False where no held-out loss measures quality (a GAN's)

    @classmethod
    def defaults_for(cls, kind: str) -> dict[str, Any]:
        """The TrainConfig defaults of this family on data of this kind (Dataset.kind)."""
        return {**cls.train_defaults, **cls.train_defaults_by_kind.get(kind, {})}

    def __init__(self, layout: Layout, config: Any):
        super().__init__()
        self.layout, self.config = layout, config
        if getattr(config, "conditional", False) and layout.num_classes == 0:
            raise GenloomError(f"conditional {self.name} needs labelled data (one sub-folder per class, "
                               "or labels in the .npz); this data has none")

    @property
    def conditional(self) -> bool:
        return bool(getattr(self.config, "conditional", False))

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """Trainable parameters per optimiser; one group called 'model' unless the family needs more."""
        return {"model": [p for p in self.parameters() if p.requires_grad]}

    def check_batch_size(self, batch_size: int) -> None:
        """Refuse, before any training, a batch size the family cannot learn from (a GAN's packs)."""

    def prepare(self, x: torch.Tensor) -> torch.Tensor | None:
        """See the whole (encoded) training set once before training, to keep statistics of it as buffers;
        return per-example sampling weights for the batches, or None for plain shuffled epochs."""
        return None

    @abstractmethod
    def losses(self, x: torch.Tensor, labels: torch.Tensor | None) -> Iterator[LossStep]:
        """Yield each loss of one training step; the loop back-propagates and steps its group."""

    @abstractmethod
    def sample(self, n: int, labels: torch.Tensor | None, generator: torch.Generator,
               options: Any = None, given: Sequence[int] = ()) -> torch.Tensor:
        """n new examples in the codec's tensor layout; all randomness from `generator` (a CPU one,
        so a seed gives the same samples on every device); `options` a SampleOptions or None (defaults).
        `given`: positions of the encoded row asked to be 1 (a table's category conditions); a family that
        can steer towards them does, the others ignore them (the caller keeps the rows that match)."""

    def evaluate(self, x: torch.Tensor, labels: torch.Tensor | None) -> dict[str, float]:
        """Cheap held-out numbers worth printing at the end of training (e.g. the ELBO)."""
        return {}


FAMILIES: dict[str, type[Family]] = {}


def register_family(cls: type[Family]) -> type[Family]:
    """Class decorator: make the family reachable by its `name`."""
    FAMILIES[cls.name] = cls
    return cls


def family_class(name: str) -> type[Family]:
    """The registered family called `name`, or a one-line error listing the known ones."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise GenloomError(f"unknown family '{name}'; known families: {', '.join(sorted(FAMILIES))}") from None


def _filled(config_cls: type, options: dict[str, Any], what: str, family: str) -> Any:
    """A config dataclass filled from keyword options, rejecting unknown ones by name, then checked."""
    known = set(config_cls.__dataclass_fields__)
    unknown = sorted(set(options) - known)
    if unknown:
        raise GenloomError(f"unknown {what} {', '.join(map(repr, unknown))} for family '{family}'; "
                           f"options: {', '.join(sorted(known))}")
    config = config_cls(**options)
    if hasattr(config, "check"):
        config.check()
    return config


def family_config(name: str, options: dict[str, Any]) -> Any:
    """The family's config dataclass filled from keyword options."""
    return _filled(family_class(name).Config, options, "option", name)


def sample_options(name: str, options: dict[str, Any]) -> Any:
    """The family's sampling settings filled from keyword options; None when none are given."""
    options_cls = family_class(name).SampleOptions
    if options_cls is None:
        if options:
            raise GenloomError(f"family '{name}' takes no sampling options; got {', '.join(map(repr, options))}")
        return None
    return _filled(options_cls, options, "sampling option", name)
