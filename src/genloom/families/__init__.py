"""Families: training objectives and samplers, looked up by name."""
from .base import FAMILIES, Family, family_class, family_config, register_family, sample_options
from . import autoregressive, diffusion, gan, vae  # noqa: F401  (register the families)

__all__ = ["FAMILIES", "Family", "family_class", "family_config", "register_family", "sample_options"]
