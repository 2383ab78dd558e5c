"""Differentially private training (DP-SGD, Abadi et al. 2016) with Opacus: each example's gradient clipped to
max_grad_norm and Gaussian noise added by Opacus' DPOptimizer, the noise set by Opacus' RDP accountant so that
the run's steps spend the (epsilon, delta) asked for, and batches drawn by Poisson sampling (each example
in with probability batch_size / examples), which the accountant's guarantee assumes."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import GenloomError, warn
from ..extras import require
from ..families.base import Family

ACCOUNTANT = "rdp"


@dataclass(frozen=True)
class PrivacyBudget:
    """What a private run may spend: epsilon, delta, and the clipping norm of one example's gradient."""

    epsilon: float
    delta: float
    max_grad_norm: float


class PoissonBatches:
    """Batches in which every example is drawn independently with probability `sample_rate` (their size varies
    around batch_size), a pure function of (seed, step) as the other batches are, so a resumed run replays them."""

    def __init__(self, x: torch.Tensor, labels: torch.Tensor | None, sample_rate: float, seed: int):
        self.x, self.labels, self.sample_rate, self.seed = x, labels, sample_rate, seed
        self.batch_size = max(1, round(sample_rate * len(x)))  # the expected size
        self.count = 0

    @property
    def per_epoch(self) -> float:
        return 1 / self.sample_rate

    def next(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        rng = np.random.default_rng([self.seed, self.count])
        self.count += 1
        indices = torch.from_numpy(np.flatnonzero(rng.random(len(self.x)) < self.sample_rate))
        return self.x[indices], self.labels[indices] if self.labels is not None else None

    def state_dict(self) -> dict[str, int]:
        return {"count": self.count}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.count = int(state["count"])


def check_budget(budget: PrivacyBudget, examples: int) -> None:
    """A delta that means something for `examples` training examples (the options check epsilon and the norm)."""
    if not 0 < budget.delta < 1 / examples:
        raise GenloomError(f"dp_delta must lie between 0 and 1/n = {1 / examples:.3g} for {examples:,} training "
                           f"examples (a larger delta could leak a whole example); got {budget.delta:g} (CLI: "
                           "--dp-delta)")


class PrivateTraining:
    """Opacus around the network that reads the data (the family, or its `private_part`) and its optimiser:
    per-example gradients (GradSampleModule's hooks on every layer it calls), clipping and noise (DPOptimizer) and
    the accountant, which the trainer steps."""

    def __init__(self, family: Family, budget: PrivacyBudget, examples: int, batch_size: int, steps: int):
        self.opacus = require("opacus", "privacy", "differentially private training (--dp-epsilon)")
        check_budget(budget, examples)
        self.budget, self.steps = budget, steps
        self.sample_rate = min(1.0, batch_size / examples)
        self.noise_multiplier = self.opacus.accountants.utils.get_noise_multiplier(
            target_epsilon=budget.epsilon, target_delta=budget.delta, sample_rate=self.sample_rate, steps=steps,
            accountant=ACCOUNTANT)
        self.accountant = self.opacus.accountants.RDPAccountant()
        self.group = family.private_part
        self.module = family.get_submodule(self.group) if self.group else family
        self._check_layers(family)
        self._freeze_outside_layers(self.module)

    def abandon(self, loss: torch.Tensor) -> None:
        """Let go of a loss that will not be used (a roll-back follows): Opacus' hooks hold its forward's activations
        until a backward pass, and would pair them with the next batch's. The roll-back clears the gradients."""
        loss.backward()

    def protects(self, group: str) -> bool:
        """Whether the optimiser of a parameter group steps privately: the private part's, or the family's one."""
        return self.group is None or group == self.group

    def attach(self, family: nn.Module) -> None:
        """Opacus' hooks on every layer of the private network: each example's gradient, in the backward pass
        (a GAN's generator step passes through the critic too: what it leaves is cleared with the gradients)."""
        self.opacus.grad_sample.register_grad_sampler(nn.LayerNorm)(layer_norm_grad_sample)
        for module in self.module.modules():  # layers applied by their weights alone are called, for the hooks
            if hasattr(module, "calls_its_layers"):
                module.calls_its_layers = True
        self.opacus.GradSampleModule(self.module, batch_first=True, loss_reduction="mean")  # its hooks keep it alive
        # torch notes that the hooks fire on the first layer, whose input needs no gradient: expected, and harmless
        warnings.filterwarnings("ignore", message="Full backward hook is firing when gradients are computed")

    def _check_layers(self, family: Family) -> None:
        """A family or network that names its own refusal (privacy_refusal) is refused with its fix; any other
        layer of the private network that Opacus cannot give per-example gradients is refused with Opacus' reason."""
        refusals = [module.privacy_refusal for module in family.modules() if getattr(module, "privacy_refusal", None)]
        if refusals:
            raise GenloomError(f"differential privacy cannot train this {family.name}: {refusals[0]}")
        errors = self.opacus.validators.ModuleValidator.validate(self.module, strict=False)
        if errors:
            raise GenloomError(f"differential privacy cannot train this {family.name}: {errors[0]}; Opacus gives "
                               "per-example gradients of linear, convolution, normalisation and embedding layers")

    @staticmethod
    def _freeze_outside_layers(family: nn.Module) -> None:
        """Parameters that belong to no layer (a VAE's likelihood scale is the family's own) get no per-example
        gradient from Opacus' layer hooks: they keep their initial value, with a warning naming them."""
        frozen = []
        for module_name, module in family.named_modules():
            if next(module.children(), None) is None:
                continue  # a layer: Opacus computes its per-example gradients
            for own, parameter in module.named_parameters(recurse=False):
                if parameter.requires_grad:
                    parameter.requires_grad_(False)
                    frozen.append(f"{module_name}.{own}".lstrip("."))
        if frozen:
            warn(f"differential privacy trains layers only; {', '.join(frozen)} keep their initial values")

    def optimizer(self, optimizer: torch.optim.Optimizer, batch_size: int) -> torch.optim.Optimizer:
        """The optimiser, clipping each example's gradient and adding the noise before every step."""
        return self.opacus.optimizers.DPOptimizer(optimizer, noise_multiplier=self.noise_multiplier,
                                                  max_grad_norm=self.budget.max_grad_norm,
                                                  expected_batch_size=batch_size, loss_reduction="mean")

    def steps_done(self) -> int:
        return sum(int(steps) for _, _, steps in self.accountant.history)

    def step(self) -> None:
        self.accountant.step(noise_multiplier=self.noise_multiplier, sample_rate=self.sample_rate)

    def spent(self) -> dict[str, Any]:
        """The privacy spent so far, for the run's record."""
        epsilon = self.accountant.get_epsilon(self.budget.delta) if self.accountant.history else 0.0
        return {"epsilon": round(float(epsilon), 4), "delta": self.budget.delta,
                "epsilon_asked": self.budget.epsilon, "noise_multiplier": round(float(self.noise_multiplier), 4),
                "max_grad_norm": self.budget.max_grad_norm, "sample_rate": self.sample_rate,
                "steps": self.steps_done(), "private_part": self.group,
                "accountant": f"Opacus {ACCOUNTANT.upper()}", "sampling": "Poisson"}

    def state_dict(self) -> dict[str, Any]:
        return {"noise_multiplier": float(self.noise_multiplier),
                "history": [list(map(float, entry)) for entry in self.accountant.history]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Go on with the noise the run started with (set for its first plan of steps), refusing a new budget
        that would spend more than the epsilon asked."""
        if not state:
            raise GenloomError("this run has trained without differential privacy so far, and a guarantee must hold "
                               "from the first step; train a new run with --dp-epsilon")
        self.accountant.history = [(sigma, rate, int(steps)) for sigma, rate, steps in state["history"]]
        self.noise_multiplier = state["noise_multiplier"]
        planned = self.opacus.accountants.RDPAccountant()
        planned.history = [*self.accountant.history]
        for _ in range(self.steps - self.steps_done()):
            planned.step(noise_multiplier=self.noise_multiplier, sample_rate=self.sample_rate)
        projected = planned.get_epsilon(self.budget.delta)
        if projected > self.budget.epsilon * 1.001:
            raise GenloomError(f"this private run's noise was set for fewer steps: training it to {self.steps} steps "
                               f"would spend epsilon {projected:.2f} of the {self.budget.epsilon:g} asked; resume it "
                               "with its own budget, or train a new run")


def layer_norm_grad_sample(layer: nn.LayerNorm, activations: list[torch.Tensor],
                           backprops: torch.Tensor) -> dict[nn.Parameter, torch.Tensor]:
    """Each example's gradient of a LayerNorm's weight and bias, as Opacus computes them, for a LayerNorm without a
    bias (or weight) too: Opacus 1.6's own reads `layer.bias` unconditionally, and the transformer's LayerNorms
    have none by default. Registered in Opacus' place when a private network is hooked (a superset of it)."""
    from opacus.utils.tensor_utils import sum_over_all_but_batch_and_last_n

    grads = {}
    if layer.weight is not None and layer.weight.requires_grad:
        normalized = F.layer_norm(activations[0], layer.normalized_shape, eps=layer.eps)
        grads[layer.weight] = sum_over_all_but_batch_and_last_n(normalized * backprops, layer.weight.dim())
    if layer.bias is not None and layer.bias.requires_grad:
        grads[layer.bias] = sum_over_all_but_batch_and_last_n(backprops, layer.bias.dim())
    return grads


def default_delta(examples: int) -> float:
    """1 / (10 n): a tenth of the largest delta that means anything for n examples."""
    return 1 / (10 * examples)
