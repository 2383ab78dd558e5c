"""Training settings: one typed record, checked when built and stored in the run's config.json."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..options import Options, option

OPTIMIZERS = ("adamw", "muon")


@dataclass
class TrainConfig(Options):
    steps: int | None = option(None, "training stops after this many updates (or at another budget first)", min=1)
    minutes: float | None = option(None, "... or after this many minutes of training", above=0)
    epochs: float | None = option(None, "... or after this many passes over the training data", above=0)
    batch_size: int = option(64, "examples (or windows of text) per micro-batch", min=1)
    grad_accum: int = option(1, "micro-batches per update: an effective batch of batch_size x grad_accum", min=1)
    optimizer: str = option("adamw", "adamw, or muon: Muon for the hidden matrices at muon_lr, AdamW (lr) for the "
                            "rest", choices=OPTIMIZERS)
    lr: float = option(2e-3, "peak learning rate (AdamW)", above=0)
    muon_lr: float = option(0.02, "peak learning rate of Muon's matrices (default: 0.02; text: 0.04)", above=0)
    weight_decay: float = option(0.0, "AdamW's decoupled weight decay, on matrices only", min=0)
    adam_beta1: float = option(0.9, "Adam's momentum (GANs want less: 0.5, as DCGAN)", min=0, below=1)
    adam_beta2: float = option(0.99, "Adam's second-moment decay", min=0, below=1)
    warmup_steps: int = option(100, "steps of linear learning-rate warm-up", min=0)
    min_lr_ratio: float = option(0.1, "the cosine schedule ends at lr x min_lr_ratio", min=0, max=1)
    grad_clip: float = option(1.0, "clip the gradient norm to this", above=0)
    ema_decay: float = option(0.999, "decay of the weight average used for sampling (0: none)", min=0, below=1)
    log_every: int = option(25, "steps between lines of metrics.jsonl", min=1)
    val_fraction: float = option(0.1, "share held out for validation: the tail of a text, a seeded random share "
                                 "of examples", min=0, below=1)
    eval_every: int = option(500, "steps between validation losses (and best-checkpoint updates)", min=1)
    eval_batches: int = option(10, "held-out batches per validation", min=1)
    patience: int = option(0, "stop early after this many validations without a better loss (0: never; small "
                           "tables: 10; off under differential privacy)", min=0)
    keep_best: bool = option(False, "sample from the weights of the best validation loss, not the last ones "
                                    "(tables: on; off under differential privacy)")
    sample_every: int = option(500, "steps between sample grids written to samples/", min=1)
    checkpoint_every: int = option(500, "steps between checkpoints (and at least every checkpoint_minutes)", min=1)
    checkpoint_minutes: float = option(5.0, "minutes between checkpoints at most", above=0)
    seed: int = option(0, "seed of the weights and of the data order", min=0)
    device: str = option("auto", "auto, cpu or cuda")
    threads: int | None = option(None, "CPU threads for torch and OpenMP (default: the cores this process may run "
                                 "on, from its affinity mask)", min=1)
    compile: bool = option(False, "torch.compile the networks (worth it for long GPU runs)")
    dp_epsilon: float | None = option(None, "train with differential privacy (DP-SGD with Opacus), spending at most "
                                      "this epsilon over the budget's steps (1 to 10 is usual)", above=0)
    dp_delta: float | None = option(None, "differential privacy's delta (default: 1 / (10 x training examples))",
                                    above=0, below=1)
    dp_max_grad_norm: float = option(1.0, "differential privacy: each example's gradient is clipped to this norm",
                                     above=0)
    progress: bool = option(True, "show a progress bar")

    default_steps: ClassVar[int] = 2000  # the budget when none is given

    def check(self) -> None:
        if self.steps is None and self.minutes is None and self.epochs is None:
            self.steps = self.default_steps
