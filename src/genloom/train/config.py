"""Training settings: one dataclass, stored in the run's config.json."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import GenloomError


@dataclass
class TrainConfig:
    steps: int | None = None          # budgets: training stops at whichever is reached first;
    minutes: float | None = None      # with none given, `default_steps` steps are run
    epochs: float | None = None
    batch_size: int = 64
    grad_accum: int = 1               # micro-batches per update: an effective batch of batch_size * grad_accum
    optimizer: str = "adamw"          # or "muon": Muon for hidden matrices at muon_lr, AdamW (lr) for the rest
    lr: float = 2e-3
    muon_lr: float = 0.02
    weight_decay: float = 0.0
    adam_beta1: float = 0.9           # GANs want less momentum (0.5, as DCGAN)
    adam_beta2: float = 0.99
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1         # the cosine ends at lr * min_lr_ratio
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    log_every: int = 25
    val_fraction: float = 0.1         # held out: the tail of a text, a seeded random tenth of examples
    eval_every: int = 500             # steps between validation losses (and best-checkpoint updates)
    eval_batches: int = 10
    sample_every: int = 500
    checkpoint_every: int = 500       # steps; and at least every `checkpoint_minutes`
    checkpoint_minutes: float = 5.0
    seed: int = 0
    device: str = "auto"
    compile: bool = False             # torch.compile the networks (worth it for long GPU runs)
    progress: bool = True

    default_steps = 2000

    def check(self) -> None:
        """Reject impossible settings with a one-line error."""
        if self.minutes is not None and not self.minutes > 0:
            raise GenloomError(f"minutes must be greater than 0; got {self.minutes}")
        if self.steps is not None and self.steps < 1:
            raise GenloomError(f"steps must be at least 1; got {self.steps}")
        if self.epochs is not None and not self.epochs > 0:
            raise GenloomError(f"epochs must be greater than 0; got {self.epochs}")
        for name in ("batch_size", "grad_accum", "log_every", "eval_every", "eval_batches", "sample_every",
                     "checkpoint_every"):
            if getattr(self, name) < 1:
                raise GenloomError(f"{name} must be at least 1; got {getattr(self, name)}")
        for name in ("lr", "muon_lr"):
            if not getattr(self, name) > 0:
                raise GenloomError(f"{name} must be greater than 0; got {getattr(self, name)}")
        if self.optimizer not in ("adamw", "muon"):
            raise GenloomError(f"optimizer must be 'adamw' or 'muon'; got {self.optimizer!r}")
        if not 0 <= self.val_fraction < 1:
            raise GenloomError(f"val_fraction must lie in [0, 1); got {self.val_fraction}")
        if not self.grad_clip > 0:
            raise GenloomError(f"grad_clip must be greater than 0; got {self.grad_clip}")
        for name in ("warmup_steps", "weight_decay"):
            if getattr(self, name) < 0:
                raise GenloomError(f"{name} must be at least 0; got {getattr(self, name)}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise GenloomError(f"min_lr_ratio must lie in [0, 1]; got {self.min_lr_ratio}")
        for name in ("adam_beta1", "adam_beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise GenloomError(f"{name} must lie in [0, 1); got {getattr(self, name)}")
        if not 0 <= self.ema_decay < 1:
            raise GenloomError(f"ema_decay must lie in [0, 1); got {self.ema_decay}")
        if self.steps is None and self.minutes is None and self.epochs is None:
            self.steps = self.default_steps
