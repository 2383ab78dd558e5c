"""Typed option records: dataclass fields that carry their help text and limits, checked when the record is
built, so that a wrong value from Python, the command line or a hand-edited config.json fails in one line
that names the field. Light on purpose (no torch): the command line builds its flags from these records."""
from __future__ import annotations

import dataclasses
import math
import numbers
import types
import typing
from typing import Any

from .errors import GenloomError


def option(default: Any, help: str, *, choices: tuple[str, ...] | None = None, min: float | None = None,
           max: float | None = None, above: float | None = None, below: float | None = None) -> Any:
    """A dataclass field with its help text and limits: `min`/`max` inclusive, `above`/`below` exclusive."""
    limits = {"choices": choices, "min": min, "max": max, "above": above, "below": below}
    return dataclasses.field(default=default, metadata={"help": help, **limits})


class Options:
    """Base of the option dataclasses: every field is checked against its type and limits on construction,
    then `check` sees the rules between fields."""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for field in dataclasses.fields(self):
            value = checked_value(field.name, getattr(self, field.name), hints[field.name], field.metadata)
            object.__setattr__(self, field.name, value)
        self.check()

    def check(self) -> None:
        """Rules that tie fields together; the single-field limits are already checked."""

    def codec_options(self) -> dict[str, Any]:
        """What these options ask of the codec (a VAE's property column), beside the codec's own options."""
        return {}

    def second_data(self) -> str | None:
        """A second data set these options ask to learn beside the first (CycleGAN's target domain), or None."""
        return None

    @classmethod
    def from_options(cls, options: dict[str, Any], what: str = "option", owner: str = "") -> "Options":
        """The record filled from keyword options, refusing unknown names with the list of known ones."""
        known = [field.name for field in dataclasses.fields(cls)]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise GenloomError(f"unknown {what} {', '.join(map(repr, unknown))}{' for ' + owner if owner else ''}; "
                               f"{what}s: {', '.join(sorted(known))}")
        return cls(**options)


def whole_number(name: str, value: Any, minimum: int = 1) -> int:
    """`value` as an int of at least `minimum`, or a one-line error naming `name` (for plain arguments)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise GenloomError(f"{name} must be a whole number of at least {minimum}; got {value!r}")
    return int(value)


def field_type(hint: Any) -> tuple[type, bool]:
    """The plain type of a field's hint, and whether None is allowed: (int, True) for `int | None`."""
    arguments = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else ()
    if arguments:
        plain = [argument for argument in arguments if argument is not type(None)]
        return plain[0], len(plain) < len(arguments)
    return hint, False


def checked_value(name: str, value: Any, hint: Any, limits: typing.Mapping[str, Any]) -> Any:
    """`value` as the field's type (an int for 3.0, a float for 3), or a GenloomError naming the field."""
    kind, optional = field_type(hint)
    if value is None and optional:
        return None
    value = _as_type(name, value, kind)
    choices = limits.get("choices")
    if choices and value not in choices:
        raise GenloomError(f"{name} must be one of {', '.join(map(str, choices))}; got {value!r}")
    low, high, above, below = (limits.get(key) for key in ("min", "max", "above", "below"))
    if (low is not None and value < low) or (high is not None and value > high) or \
            (above is not None and not value > above) or (below is not None and not value < below):
        raise GenloomError(f"{name} must {_bounds(low, high, above, below)}; got {value!r}")
    return value


def _as_type(name: str, value: Any, kind: type) -> Any:
    if kind is bool:
        if isinstance(value, bool) or getattr(getattr(value, "dtype", None), "kind", "") == "b":  # numpy's too
            return bool(value)
        raise GenloomError(f"{name} must be true or false; got {value!r}")
    if kind is int:
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return int(value)
        if isinstance(value, numbers.Real) and not isinstance(value, bool) and float(value).is_integer():
            return int(value)
        raise GenloomError(f"{name} must be a whole number; got {value!r}")
    if kind is float:
        if isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value)):
            return float(value)
        raise GenloomError(f"{name} must be a finite number; got {value!r}")
    if kind is str:
        if isinstance(value, str):
            return value
        raise GenloomError(f"{name} must be text; got {value!r}")
    if typing.get_origin(kind) is list and typing.get_args(kind) == (str,):
        if isinstance(value, (list, tuple)) and value and all(isinstance(item, str) for item in value):
            return list(value)
        raise GenloomError(f"{name} must be a list of names; got {value!r}")
    raise TypeError(f"option {name}: unsupported field type {kind}")


def _bounds(low: float | None, high: float | None, above: float | None, below: float | None) -> str:
    """"be at least 1", "lie in [0, 1)", "be greater than 0"."""
    if (low is not None or above is not None) and (high is not None or below is not None):
        left = f"[{low:g}" if low is not None else f"({above:g}"
        right = f"{high:g}]" if high is not None else f"{below:g})"
        return f"lie in {left}, {right}"
    if low is not None:
        return f"be at least {low:g}"
    if above is not None:
        return f"be greater than {above:g}"
    return f"be at most {high:g}" if high is not None else f"be less than {below:g}"
