"""Backbones, looked up by (data kind, role) and built from the codec's layout."""
from __future__ import annotations

from torch import nn

from ..layout import Layout
from ..errors import GenloomError

BACKBONES: dict[tuple[str, str], type[nn.Module]] = {}


def register_backbone(kinds: tuple[str, ...], role: str):
    """Class decorator: the network that plays `role` (encoder, decoder, ...) for data of these kinds."""
    def add(cls: type[nn.Module]) -> type[nn.Module]:
        for kind in kinds:
            BACKBONES[(kind, role)] = cls
        return cls
    return add


def build_backbone(role: str, layout: Layout, *args, **kwargs) -> nn.Module:
    """The registered `role` network for the layout's data kind."""
    try:
        cls = BACKBONES[(layout.kind, role)]
    except KeyError:
        raise GenloomError(f"no {role} network for {layout.kind} data yet; "
                           f"available: {', '.join(f'{k} {r}' for k, r in sorted(BACKBONES))}") from None
    return cls(layout, *args, **kwargs)


# register the backbones
from . import (autoencoder, conv, mlp, quantum, sequence, style, transformer, translation, unet,  # noqa: E402,F401
               wavenet)
