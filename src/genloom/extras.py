"""Optional dependencies: a feature that needs one imports it here, so that a missing extra is one line that
names the `pip install` to run."""
from __future__ import annotations

from importlib import import_module
from types import ModuleType

from .errors import GenloomError


def require(module: str, extra: str, feature: str) -> ModuleType:
    """`module`, imported; if it (or a package it needs) is missing, an error naming the extra that brings it."""
    try:
        return import_module(module)
    except ImportError as missing:
        raise GenloomError(f"{feature} needs the {extra} extra ({missing.name or module} is missing): "
                           f"pip install 'genloom[{extra}]'") from None
