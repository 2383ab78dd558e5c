"""Latent families: an autoencoder compresses images to a grid of latents, a prior family learns the grid, and
sampling decodes what the prior draws. Latent diffusion (Rombach et al. 2022) puts diffusion on the grid of a
KL-regularised autoencoder; the VQ-VAE (van den Oord et al. 2017), as VQGAN's second stage (Esser et al. 2021),
puts the autoregressive transformer on the codes of a vector-quantised one.

One run trains both stages from one budget: the autoencoder for its first `autoencoder_share`, then, frozen, the
prior on its latents; or, given another run's autoencoder, the prior for all of it. The prior is an ordinary
family built on the latents' layout, so its samplers, guidance and options are the ones it has on pixels."""
from __future__ import annotations

import math
from abc import abstractmethod
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator, Sequence

import torch
from torch import nn

from ..data.token_ids import TokenIds
from ..errors import GenloomError
from ..layout import Layout
from ..nets import build_backbone
from ..nets.autoencoder import latent_grid
from . import family_class
from .base import Family, LossStep
from .configs import LatentDiffusionConfig, VQVAEConfig

AUTOENCODER_PARTS = ("encoder", "decoder", "quantizer")  # the modules of the first stage, where a family has them


class LatentFamily(Family):
    """The two stages and the switch between them; a subclass says what its latents are and how they are learnt."""

    prior_family: ClassVar[str]  # the family that models the latent grid
    first_stage_options: ClassVar[tuple[str, ...]] = ()  # options of the autoencoder besides the shared ones
    first_stage_buffers: ClassVar[tuple[str, ...]] = ()  # buffers that belong to the autoencoder

    def __init__(self, layout: Layout, config: Any):
        super().__init__(layout, config)
        self.encoder = build_backbone("latent encoder", layout, self.encoder_channels(config),
                                      width=config.autoencoder_width, compression=config.compression)
        self.grid = latent_grid(layout, config.compression)
        self.decoder = build_backbone("latent decoder", layout, self.decoder_channels(config),
                                      width=config.autoencoder_width, compression=config.compression)
        self.prior = family_class(self.prior_family)(self.prior_layout(), config)
        self.register_buffer("prior_stage", torch.tensor(False))  # saved: a resumed run stays in its stage

    @staticmethod
    @abstractmethod
    def encoder_channels(config: Any) -> int:
        """Channels the encoder outputs per grid position."""

    @staticmethod
    @abstractmethod
    def decoder_channels(config: Any) -> int:
        """Channels of the latent grid the decoder reads."""

    @abstractmethod
    def prior_layout(self) -> Layout:
        """The layout of the latents, on which the prior family is built."""

    @abstractmethod
    def autoencoder_loss(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """The first stage's loss on a batch of images, and numbers to log."""

    @abstractmethod
    def latents(self, x: torch.Tensor) -> torch.Tensor:
        """What the prior learns for each image, in its layout."""

    @abstractmethod
    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Images (unclamped) from latents of the prior's layout."""

    # -- the two stages ------------------------------------------------------------------------
    def autoencoder_parameters(self) -> list[nn.Parameter]:
        return [p for name in AUTOENCODER_PARTS if hasattr(self, name) for p in getattr(self, name).parameters()]

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"autoencoder": self.autoencoder_parameters(), **self.prior.param_groups()}

    def hidden_matrices(self) -> list[nn.Parameter]:
        return self.prior.hidden_matrices()

    def adopt(self, load_run: Callable[[Path], Any]) -> None:
        """Take the autoencoder of the run named by the `autoencoder` option, if one is, and start in the prior's
        stage. (Nor is the prior's `prepare` called: the priors here learn nothing from a first look at the data,
        and the latents are not known before the autoencoder is trained.)"""
        if self.config.autoencoder is not None:
            self.load_state_dict(_autoencoder_weights(Path(self.config.autoencoder), self, load_run), strict=False)
            self.prior_stage.fill_(True)

    def begin_step(self, progress: float) -> None:
        """Move to the prior once the autoencoder's share of the budget is spent. Only the stage's own weights
        train: the autoencoder is frozen after its stage, the prior waits for its own (so the weight average
        copies the weights that do not train, and starts averaging the prior's when they begin to)."""
        if progress >= self.config.autoencoder_share:
            self.prior_stage.fill_(True)
        in_prior_stage = bool(self.prior_stage)
        for parameter in self.autoencoder_parameters():
            parameter.requires_grad_(not in_prior_stage)
        self.prior.requires_grad_(in_prior_stage)

    def losses(self, x: torch.Tensor, labels: torch.Tensor | None) -> Iterator[LossStep]:
        """The autoencoder's loss in the first stage; the prior's on the latents in the second, and always in
        validation, so that the best validation loss is the prior's."""
        if self.training and not self.prior_stage:
            loss, numbers = self.autoencoder_loss(x)
            yield "autoencoder", loss, numbers
            return
        with torch.no_grad():
            latents = self.latents(x)
        yield from self.prior.losses(latents, labels)

    # -- sampling and scores -------------------------------------------------------------------
    def sampling_passes(self, options: Any = None) -> int:
        return self.prior.sampling_passes(options)

    def sample(self, n: int, labels: torch.Tensor | None, generator: torch.Generator, options: Any = None,
               given: Sequence[int] = (), on_pass: Callable[[], None] = lambda: None) -> torch.Tensor:
        latents = self.prior.sample(n, labels, generator, options, given, on_pass)
        return self.decode_latents(latents).clamp(-1, 1)

    def evaluate(self, x: torch.Tensor, labels: torch.Tensor | None) -> dict[str, float]:
        """The autoencoder's reconstruction error (mean squared, and as PSNR over the [-1, 1] range) beside the
        prior's own numbers on the latents (prefixed prior_)."""
        latents = self.latents(x)
        error = (self.decode_latents(latents).clamp(-1, 1) - x).pow(2).mean().item()
        scores = {"reconstruction_mse": error, "reconstruction_psnr": 10 * math.log10(4 / max(error, 1e-12))}
        prior = self.prior.evaluate(latents, labels)
        return {**scores, **self.latent_scores(latents), **{f"prior_{key}": value for key, value in prior.items()}}

    def latent_scores(self, latents: torch.Tensor) -> dict[str, float]:
        """Numbers of the latents themselves, for the logs and final metrics (a codebook's usage); none here."""
        return {}


def _autoencoder_weights(path: Path, family: LatentFamily, load_run: Callable[[Path], Any]) -> dict[str, torch.Tensor]:
    """The first-stage weights of the run at `path`, checked to fit `family`; a one-line error says what differs."""
    if not (path / "config.json").exists():
        raise GenloomError(f"--autoencoder {path}: no genloom run there; give the folder of a trained "
                           f"{family.name} run")
    run = load_run(path)
    if run.record["family"] != family.name:
        raise GenloomError(f"--autoencoder {path} is a {run.record['family']} run; a {family.name} reuses the "
                           f"autoencoder of a {family.name} run")
    theirs, ours = tuple(run.codec.layout.shape), tuple(family.layout.shape)
    if theirs != ours:
        raise GenloomError(f"--autoencoder {path} was trained on {_describe(theirs)}; this data is "
                           f"{_describe(ours)}: resize it (--image-size) or train a new autoencoder")
    differing = [name for name in ("compression", "autoencoder_width", *family.first_stage_options)
                 if getattr(run.config, name) != getattr(family.config, name)]
    if differing:
        asked = ", ".join(f"{name} {getattr(run.config, name)} (asked: {getattr(family.config, name)})"
                          for name in differing)
        raise GenloomError(f"--autoencoder {path} has {asked}: drop those options to take the run's own")
    state = run.ema_net.state_dict()
    return {key: value for key, value in state.items()
            if key.split(".")[0] in (*AUTOENCODER_PARTS, *family.first_stage_buffers)}


def _describe(shape: tuple[int, ...]) -> str:
    channels, height, width = shape
    return f"{height}x{width} images with {channels} channel{'s' if channels > 1 else ''}"


class LatentDiffusion(LatentFamily):
    """Diffusion on the scaled posterior means of a KL-regularised autoencoder. As Stable Diffusion, the latents
    are divided by their spread, measured on the first batch the prior sees, so that the noise schedule meets
    data of unit scale; they are not clipped to [-1, 1] as pixels are."""

    name = "latent-diffusion"
    prior_family = "diffusion"
    first_stage_options = ("latent_channels",)
    first_stage_buffers = ("latent_scale",)

    def __init__(self, layout: Layout, config: LatentDiffusionConfig):
        super().__init__(layout, config)
        self.register_buffer("latent_scale", torch.tensor(0.0))  # 0: not measured yet

    @staticmethod
    def encoder_channels(config: LatentDiffusionConfig) -> int:
        return 2 * config.latent_channels  # a mean and a log-variance per channel

    @staticmethod
    def decoder_channels(config: LatentDiffusionConfig) -> int:
        return config.latent_channels

    def prior_layout(self) -> Layout:
        return replace(self.layout, shape=(self.config.latent_channels, *self.grid), bounded=False)

    def _posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_var = self.encoder(x).chunk(2, dim=1)
        return mean, log_var.clamp(-30, 20)

    def autoencoder_loss(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        mean, log_var = self._posterior(x)
        z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
        error = (self.decoder(z).float() - x.float()).pow(2).mean()
        kl = 0.5 * (mean.pow(2) + log_var.exp() - 1 - log_var).float().mean()
        return error + self.config.kl_weight * kl, {"reconstruction_mse": error.item(), "kl": kl.item()}

    def latents(self, x: torch.Tensor) -> torch.Tensor:
        mean = self._posterior(x)[0]
        if self.latent_scale == 0:  # the first batch of the prior's stage sets it; a validation before only uses it
            scale = 1 / mean.float().std().clamp_min(1e-6)
            if not (self.training and self.prior_stage):
                return mean * scale
            self.latent_scale.fill_(scale)
        return mean * self.latent_scale

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        scale = self.latent_scale if self.latent_scale > 0 else torch.ones_like(self.latent_scale)
        return self.decoder(latents / scale)


class CodeTokens(TokenIds):
    """A VQ-VAE's code grid as the autoregressive family's tokens: the code ids themselves, in raster order."""

    def likelihood_scores(self, log_prob: torch.Tensor) -> dict[str, float]:
        """Bits per code of the grid (not per pixel: the decoder's likelihood is not modelled)."""
        return {"bits_per_code": -log_prob.mean().item() / (self.length * math.log(2))}


@dataclass(frozen=True)
class CodeGridLayout(Layout):
    """The code ids of a VQ autoencoder's grid, flattened: (h * w,) per image, `codes` possible ids."""

    kind: str = field(default="image", init=False)  # codes of images: their backbones are the image kind's
    codes: int = 2

    def tokens(self, levels: int, bins: int) -> CodeTokens:
        return CodeTokens(self.shape[0], self.codes)


class VQVAE(LatentFamily):
    """A vector-quantised autoencoder and the autoregressive transformer over its codes. The codebook learns by
    moving averages with dead codes restarted from the batch (vector-quantize-pytorch's VectorQuantize, which
    does both as the field does); its usage and perplexity are reported with the reconstruction error."""

    name = "vq-vae"
    prior_family = "autoregressive"
    first_stage_options = ("codebook_size", "code_dim")

    def __init__(self, layout: Layout, config: VQVAEConfig):
        from vector_quantize_pytorch import VectorQuantize  # a second of imports: only when a VQ-VAE is built

        super().__init__(layout, config)
        # a code unused for some batches (its average count below 2) is replaced by an encoder output of the batch
        self.quantizer = VectorQuantize(dim=config.code_dim, codebook_size=config.codebook_size,
                                        decay=config.codebook_decay, commitment_weight=config.commitment,
                                        threshold_ema_dead_code=2, accept_image_fmap=True)

    @staticmethod
    def encoder_channels(config: VQVAEConfig) -> int:
        return config.code_dim

    @staticmethod
    def decoder_channels(config: VQVAEConfig) -> int:
        return config.code_dim

    def prior_layout(self) -> Layout:
        return CodeGridLayout(shape=(math.prod(self.grid),), num_classes=self.layout.num_classes,
                              codes=self.config.codebook_size)

    def autoencoder_loss(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        quantized, codes, commitment = self.quantizer(self.encoder(x))
        error = (self.decoder(quantized).float() - x.float()).pow(2).mean()
        return error + commitment, {"reconstruction_mse": error.item(), "commitment": commitment.item(),
                                    **self.latent_scores(codes)}

    def latents(self, x: torch.Tensor) -> torch.Tensor:
        """(N, h * w) code ids; the codebook stays as it is (no moving-average update, no restarts)."""
        return self.quantizer(self.encoder(x), freeze_codebook=True)[1].flatten(1)

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        grid = latents.long().view(len(latents), *self.grid)
        return self.decoder(self.quantizer.get_output_from_indices(grid))

    def latent_scores(self, codes: torch.Tensor) -> dict[str, float]:
        """The share of the codebook a batch uses, and the perplexity of its codes (how many it uses evenly)."""
        counts = torch.bincount(codes.flatten(), minlength=self.config.codebook_size).float()
        shares = counts / counts.sum()
        entropy = -(shares[shares > 0] * shares[shares > 0].log()).sum().item()
        return {"codebook_usage": (counts > 0).float().mean().item(), "codebook_perplexity": math.exp(entropy)}
