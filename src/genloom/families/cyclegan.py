"""CycleGAN (Zhu et al. 2017): unpaired translation between two image sets, domain A (label 0) and domain B
(label 1), learnt from batches that mix both. Each direction has a translator and a PatchGAN critic with the
least-squares loss; the cycle-consistency loss asks a round trip to return the image, the identity loss asks a
translator to leave an image of its own output domain alone."""
from __future__ import annotations

from typing import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import GenloomError
from ..layout import Layout
from ..nets import build_backbone
from .base import Family, LossStep
from .configs import CycleGANConfig

BANK = 64  # images of each domain kept with the weights, which `sample` translates (a run needs no data for it)
SOURCE, TARGET = 0, 1


class CycleGAN(Family):
    """G_AB and G_BA against D_A and D_B; the loop steps both critics, then both translators, on each batch."""

    name = "cyclegan"
    tools = frozenset({"translate"})
    validates = False  # as a GAN's, its losses do not say how good the translations are

    def __init__(self, layout: Layout, config: CycleGANConfig):
        if config.target_data is None:
            raise GenloomError("cyclegan translates between two image sets: name the second with target_data "
                               "(CLI: --target-data DATA)")
        super().__init__(layout, config)
        self.translators = nn.ModuleList([build_backbone("translator", layout, width=config.width,
                                                         blocks=config.blocks) for _ in range(2)])  # into A, into B
        self.critics = nn.ModuleList([build_backbone("patch critic", layout, width=config.width) for _ in range(2)])
        self.register_buffer("bank", torch.zeros(2, BANK, *layout.shape))
        self.register_buffer("bank_sizes", torch.zeros(2, dtype=torch.long))

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"discriminator": list(self.critics.parameters()), "generator": list(self.translators.parameters())}

    def prepare(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> None:
        """Keep up to BANK training images of each domain, for the samples the run shows."""
        for domain in (SOURCE, TARGET):
            images = x[labels == domain][:BANK]
            self.bank[domain, :len(images)] = images
            self.bank_sizes[domain] = len(images)

    def translate(self, x: torch.Tensor, to_domain: int) -> torch.Tensor:
        """Images translated into domain `to_domain` (0: A, 1: B)."""
        return self.translators[to_domain](x)

    def losses(self, x: torch.Tensor, labels: torch.Tensor) -> Iterator[LossStep]:
        """Each term on the images of the domains the batch holds (a batch of one domain trains one direction)."""
        real = [x[labels == domain] for domain in (SOURCE, TARGET)]
        present = [domain for domain in (SOURCE, TARGET) if len(real[domain])]
        with torch.no_grad():
            fakes = {domain: self.translate(real[1 - domain], domain) for domain in (SOURCE, TARGET)
                     if len(real[1 - domain])}
        critic_loss = x.new_zeros(())
        for domain in present:  # real images of a domain score 1 with its critic, translations into it 0
            score = self.critics[domain](real[domain])
            critic_loss = critic_loss + 0.5 * F.mse_loss(score, torch.ones_like(score))
        for domain, fake in fakes.items():
            score = self.critics[domain](fake)
            critic_loss = critic_loss + 0.5 * F.mse_loss(score, torch.zeros_like(score))
        yield "discriminator", critic_loss, {}

        adversarial = cycle = identity = 0
        for domain in present:  # images of `domain`, sent to the other one and back, and kept by their own
            other = 1 - domain
            moved = self.translate(real[domain], other)
            score = self.critics[other](moved)
            adversarial = adversarial + F.mse_loss(score, torch.ones_like(score))
            cycle = cycle + F.l1_loss(self.translate(moved, domain), real[domain])
            identity = identity + F.l1_loss(self.translate(real[domain], domain), real[domain])
        loss = adversarial + self.config.cycle_weight * cycle + self.config.identity_weight * identity
        yield "generator", loss, {name: float(term.detach()) if torch.is_tensor(term) else float(term) for name, term
                                  in (("adversarial", adversarial), ("cycle", cycle), ("identity", identity))}

    def sample(self, n: int, labels: torch.Tensor | None, generator: torch.Generator, options: None = None,
               given: Sequence[int] = (), on_pass: Callable[[], None] = lambda: None) -> torch.Tensor:
        """Translations into domain `labels` (default: B) of kept training images of the other domain, drawn at
        random; there is no distribution of its own to sample."""
        device = self.bank.device
        if labels is None:
            labels = torch.full((n,), TARGET, dtype=torch.long, device=device)
        sources = 1 - labels
        picks = (torch.rand(n, generator=generator).to(device) * self.bank_sizes[sources].clamp_min(1)).long()
        images = self.bank[sources, picks]
        out = torch.empty_like(images)
        for domain in (SOURCE, TARGET):
            chosen = labels == domain
            if chosen.any():
                out[chosen] = self.translate(images[chosen], domain)
        on_pass()
        return out
