"""Families: training objectives and samplers, looked up by name."""
from .base import FAMILIES, Family, family_class, family_config, register_family
from . import vae  # noqa: F401  (registers "vae")

__all__ = ["FAMILIES", "Family", "family_class", "family_config", "register_family"]
