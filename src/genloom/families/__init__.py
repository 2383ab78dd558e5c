"""Families: training objectives and samplers, looked up by name in one catalog.

The catalog and the options are light; a family's module (and torch) is imported when the family is built,
so that the command line starts without them."""
from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, Any

from ..errors import GenloomError
from ..options import Options
from .configs import (AutoregressiveConfig, CycleGANConfig, DiffusionConfig, DiffusionSampling, GANConfig,
                      LatentDiffusionConfig, StyleGANConfig, StyleSampling, TokenSampling, VAEConfig, VQVAEConfig,
                      WGANGPConfig)

if TYPE_CHECKING:
    from ..layout import Layout
    from .base import Family


@dataclass(frozen=True)
class FamilyEntry:
    """Where a family lives and what it takes."""

    module: str                           # imported when the family is built
    class_name: str
    options: type[Options]                # the family's options (its config)
    sampling: type[Options] | None        # its sampler's options, or None when it takes none


CATALOG: dict[str, FamilyEntry] = {
    "vae": FamilyEntry("genloom.families.vae", "VAE", VAEConfig, None),
    "gan": FamilyEntry("genloom.families.gan", "GAN", GANConfig, None),
    "wgan-gp": FamilyEntry("genloom.families.gan", "WGANGP", WGANGPConfig, None),
    "stylegan": FamilyEntry("genloom.families.gan", "StyleGAN", StyleGANConfig, StyleSampling),
    "cyclegan": FamilyEntry("genloom.families.cyclegan", "CycleGAN", CycleGANConfig, None),
    "diffusion": FamilyEntry("genloom.families.diffusion", "Diffusion", DiffusionConfig, DiffusionSampling),
    "autoregressive": FamilyEntry("genloom.families.autoregressive", "Autoregressive", AutoregressiveConfig,
                                  TokenSampling),
    "latent-diffusion": FamilyEntry("genloom.families.latent", "LatentDiffusion", LatentDiffusionConfig,
                                    DiffusionSampling),
    "vq-vae": FamilyEntry("genloom.families.latent", "VQVAE", VQVAEConfig, TokenSampling),
}


def family_entry(name: str) -> FamilyEntry:
    """The catalog's entry for `name`, or a one-line error listing the known families."""
    if name not in CATALOG:
        raise GenloomError(f"unknown family {name!r}; known families: {', '.join(sorted(CATALOG))}")
    return CATALOG[name]


def family_class(name: str) -> type[Family]:
    """The Family subclass called `name`."""
    entry = family_entry(name)
    return getattr(import_module(entry.module), entry.class_name)


def build_family(name: str, layout: Layout, config: Options) -> Family:
    """The family's networks for data of this layout; a network too large for this machine is a one-line error."""
    try:
        return family_class(name)(layout, config)
    except (RuntimeError, MemoryError) as error:  # torch's allocator says it cannot allocate
        raise GenloomError(f"the {name} network of these options does not fit in memory ({str(error)[:120]}); "
                           "choose smaller options (width, latent_dim, n_embd, n_layer)") from None


def sample_options(name: str, options: dict[str, Any]) -> Options | None:
    """The family's sampling settings filled from keyword options; None when none are given."""
    entry = family_entry(name)
    if entry.sampling is None:
        if options:
            raise GenloomError(f"family {name!r} takes no sampling options; got {', '.join(map(repr, options))}")
        return None
    return entry.sampling.from_options(options, "sampling option", f"family {name!r}")
