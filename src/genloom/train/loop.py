"""The one training loop for every family: schedule, accumulation, clipping, EMA, AMP, validation, logging,
checkpoints, resume, and a guard that rolls a diverging run back to its last good checkpoint."""
from __future__ import annotations

import json
import math
import statistics
from collections import deque
from dataclasses import dataclass, replace
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import torch
from tqdm.auto import tqdm

from ..errors import GenloomError, warn
from ..families.base import Family, LossStep
from ..files import write_text
from .batches import make_batches
from .checkpoint import load_state, load_weights, save_state, save_weights
from .config import TrainConfig
from .device import autocast, autocast_dtype, thread_count, using_threads
from .distributed import Processes
from .ema import EMA
from .optimizers import build_optimizer, set_base_rates
from .privacy import PoissonBatches, PrivacyBudget, PrivateTraining, default_delta

STATE_FILE = "trainer.pt"
METRICS_FILE = "metrics.jsonl"
BEST_FILE = "best.safetensors"
MAX_ROLLBACKS = 3  # consecutive roll-backs (each halving the learning rate) before giving up
VALIDATION_SEED = 1234
EVAL_EXAMPLES = 512  # held-out examples scored by Family.evaluate after training ...
EVAL_TOKENS = 16_384  # ... or windows of a token stream holding about this many tokens
VALIDATION_PART = "the held-out tail of the text (val_fraction)"
SAVE_SECONDS = 0.3      # writing a run (weights, samples, report, loss curve: ~0.15 s for a table), kept free
MIN_TRAIN_SECONDS = 0.5  # training time a budget must leave after what comes before it


@dataclass(frozen=True)
class CallBudget:
    """A budget in minutes that bounds a whole call (fit, distill), from `started` (a time.perf_counter() reading):
    training ends by `deadline`, which leaves the run its writing."""

    minutes: float
    started: float

    @property
    def deadline(self) -> float:
        return self.started + 60 * self.minutes - SAVE_SECONDS

    def check_time_left(self, before: str, trainings: int = 1) -> None:
        """Some training (for each of `trainings` in turn) must fit after `before` (what the call did first); else
        say the least budget that would."""
        spent = time.perf_counter() - self.started
        if self.deadline - time.perf_counter() < trainings * MIN_TRAIN_SECONDS:
            least = (spent + SAVE_SECONDS + 10 * trainings * MIN_TRAIN_SECONDS) / 60
            raise GenloomError(f"minutes={self.minutes:g} is too short: {before} took {spent:.1f} s and writing the "
                               f"run needs about {SAVE_SECONDS:g} s; give at least minutes={least:.2g} "
                               "(CLI: --minutes)")


def lr_multiplier(config: TrainConfig, step: int, progress: float) -> float:
    """Linear warm-up over `warmup_steps`, then cosine decay to `min_lr_ratio` over the budget."""
    warmup = min(1.0, (step + 1) / config.warmup_steps) if config.warmup_steps > 0 else 1.0
    cosine = 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return warmup * (config.min_lr_ratio + (1 - config.min_lr_ratio) * cosine)


class Trainer:
    """Trains `family` on encoded data `x` (examples, or one token stream), keeping its state in `run_dir`."""

    def __init__(self, family: Family, x: torch.Tensor, labels: torch.Tensor | None, config: TrainConfig,
                 run_dir: Path, device: torch.device, validation: tuple | None = None,
                 on_sample: Callable[[int, Family], None] | None = None, prepare: bool = True,
                 clock: Callable[[], float] = time.perf_counter, on_log: Callable[[dict], None] = lambda line: None,
                 processes: Processes = Processes()):
        # what is used is what the run records; processes on one machine share its cores
        config = replace(config, threads=thread_count(config.threads, processes.local_size))
        self.processes = processes
        self.family, self.config, self.clock = family.to(device), config, clock
        self.validation = validation if family.validates else None
        self.run_dir, self.device, self.on_sample, self.on_log = Path(run_dir), device, on_sample, on_log
        self.context_length = family.context_length
        # before the EMA copy, so statistics the family keeps go into both; a fine-tuned model keeps its own; on the
        # run's threads (a distillation reads its teacher here)
        with using_threads(config.threads):
            weights = family.prepare(x, labels) if prepare else None
        self.batches = make_batches(x, labels, config.batch_size, config.seed, self.context_length, weights=weights,
                                    grid=family.window_grid, lengths=family.example_lengths(x))
        if self.batches.batch_size < config.batch_size:  # more than the data holds: say so, and record what is used
            warn(f"batch_size {config.batch_size:,} is more than the {len(x):,} training examples; training with "
                 f"batches of {self.batches.batch_size:,}")
            self.config = config = replace(config, batch_size=self.batches.batch_size)
        family.check_batch_size(self.batches.batch_size // processes.size)
        processes.check_batch(self.batches.batch_size)
        if self.validation is not None:  # fail now, not at the first validation, if the held-out part is too small
            make_batches(*self.validation, config.batch_size, VALIDATION_SEED, self.context_length, VALIDATION_PART)
        total = config.steps
        if config.epochs is not None:
            by_epochs = math.ceil(config.epochs * self.batches.per_epoch / config.grad_accum)
            total = by_epochs if total is None else min(total, by_epochs)
        self.total_steps = total
        # differential privacy: Poisson batches, and the parameters Opacus cannot reach frozen before the optimisers
        self.privacy = self._private(x, labels, weights) if config.dp_epsilon is not None else None
        groups = family.param_groups()
        if config.grad_accum > 1 and len(groups) > 1:
            raise GenloomError(f"grad_accum works with one optimiser; family '{family.name}' has {len(groups)}")
        self.optimizers = {group: build_optimizer(family, params, config)
                           for group, params in groups.items()}
        if self.privacy is not None:
            self.optimizers = {group: self.privacy.optimizer(optimizer, self.batches.batch_size)
                               if self.privacy.protects(group) else optimizer
                               for group, optimizer in self.optimizers.items()}
        if config.compile:
            for module in family.children():
                module.compile()
        self.ema = EMA(family, config.ema_decay)
        if self.privacy is not None:
            self.privacy.attach(family)  # per-example gradient hooks on the trained layers, not on the EMA's copy
        # Loss scaling only for fp16; bf16 and fp32 have the range to do without it.
        self.scaler = torch.amp.GradScaler(device.type, enabled=autocast_dtype(device) == torch.float16)
        self.step, self.elapsed, self.lr_scale, self.rollbacks = 0, 0.0, 1.0, 0
        if processes.rank:  # the same weights everywhere (seeded before), but each process its own noise
            torch.manual_seed(self._process_seed())
        self.deadline: float | None = None  # a clock time by which the whole training must have ended
        self.fit_started = 0.0
        self.costs = {"validation": 0.0, "checkpoint": 0.0}  # the last of each, in seconds
        self.step_times: deque[float] = deque(maxlen=9)      # the last steps', whose median a step is taken to cost
        self.best_val_loss, self.stale_validations = math.inf, 0
        self.last_val_loss, self.last_val_step = math.inf, -1
        self.best_weights: tuple[int, dict[str, torch.Tensor]] | None = None  # keep_best's (step, copy), everywhere
        self.kept_best: str | None = None  # which weights keep_best gave the run, when it changed them
        self.running: dict[str, list[float]] = {}  # numbers since the last log line, averaged into it

    def _private(self, x: torch.Tensor, labels: torch.Tensor | None, weights: torch.Tensor | None) -> PrivateTraining:
        """DP-SGD for this run, after refusing what it cannot protect; its batches replace the shuffled ones."""
        config, family = self.config, self.family
        refusals = [
            (x.dim() == 1, "differential privacy protects examples, and a text corpus is one stream of tokens; train "
                           "private models on tables or images"),
            (self.total_steps is None, "differential privacy sets its noise for a known number of steps: give a budget "
                                       "in steps or epochs (CLI: --steps, --epochs), not in minutes alone"),
            (len(family.param_groups()) > 1 and family.private_part is None,
             f"family '{family.name}' trains {len(family.param_groups())} networks with their own optimisers, none "
             "alone reading the data; differential privacy trains vae, diffusion, autoregressive and gan (its critic)"),
            (config.grad_accum > 1, "differential privacy takes one batch per step; leave grad_accum at 1"),
            (self.processes.distributed, "differential privacy trains in one process; drop --nproc"),
        ]
        for refused, message in refusals:
            if refused:
                raise GenloomError(message)
        budget = PrivacyBudget(config.dp_epsilon, config.dp_delta or default_delta(len(x)), config.dp_max_grad_norm)
        privacy = PrivateTraining(family, budget, len(x), self.batches.batch_size, self.total_steps)  # its refusals
        if weights is not None:
            raise GenloomError("differential privacy draws batches uniformly; this family rebalances them")
        self.batches = PoissonBatches(x, labels, privacy.sample_rate, config.seed)
        if config.patience or config.keep_best:  # held-out rows, outside the guarantee, would choose the weights
            self.config = replace(config, patience=0, keep_best=False)
        return privacy

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "step": self.step, "elapsed": self.elapsed, "lr_scale": self.lr_scale,
            "best_val_loss": self.best_val_loss, "stale_validations": self.stale_validations,
            "last_val_loss": self.last_val_loss, "last_val_step": self.last_val_step,
            "model": self.family.state_dict(), "ema": self.ema.module.state_dict(), "ema_updates": self.ema.updates,
            "optimizers": {g: opt.state_dict() for g, opt in self.optimizers.items()},
            "scaler": self.scaler.state_dict(), "batches": self.batches.state_dict(),
            "running": {key: torch.tensor(values, dtype=torch.float64) for key, values in self.running.items()},
            "rng": torch.get_rng_state(),
            "privacy": self.privacy.state_dict() if self.privacy is not None else {},
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def load_state_dict(self, state: dict, restore_clock: bool = True) -> None:
        self.step, self.lr_scale = int(state["step"]), float(state["lr_scale"])
        self.best_val_loss = float(state["best_val_loss"])
        self.stale_validations = int(state.get("stale_validations", 0))  # checkpoints from before early stopping
        # checkpoints from before keep_best: the last weights are validated again at the end
        self.last_val_loss = float(state.get("last_val_loss", math.inf))
        self.last_val_step = int(state.get("last_val_step", -1))
        self.best_weights = None  # from a later step than this state's (a roll-back): the file says which
        if restore_clock:
            self.elapsed = float(state["elapsed"])
        try:
            self.family.load_state_dict(state["model"])
            self.ema.module.load_state_dict(state["ema"])
            # checkpoints from before per-weight counts: every weight trained at every step
            self.ema.updates = state.get("ema_updates", torch.full_like(self.ema.updates, self.step)).clone()
            for group, opt in self.optimizers.items():
                opt.load_state_dict(state["optimizers"][group])
                set_base_rates(opt, self.config)
        except (RuntimeError, KeyError, ValueError) as error:
            reason = " ".join(str(error).split())[:300]
            raise GenloomError(f"the checkpoint in {self.run_dir} does not fit this model ({reason}); "
                               "was config.json changed by hand?") from None
        self.running = {key: values.tolist() for key, values in state["running"].items()}
        if state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        self.batches.load_state_dict(state["batches"])
        torch.set_rng_state(state["rng"])
        if state["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        if self.processes.rank:  # the checkpoint holds the first process's generator only
            torch.manual_seed(self._process_seed())
        if self.privacy is not None and restore_clock:  # a roll-back keeps what the rolled-back steps spent
            self.privacy.load_state_dict(state.get("privacy") or {})
        self._truncate_metrics(self.step)

    def _process_seed(self) -> int:
        """The noise seed of a process after the first, from the run's seed, its rank and the step."""
        return hash((self.config.seed, self.processes.rank, self.step)) % 2**63

    def checkpoint(self) -> None:
        """Save the trainer state (the first process's: the others hold the same weights and data position)."""
        started = self.clock()
        if self.processes.writes:
            save_state(self.state_dict(), self.run_dir / STATE_FILE)
        self.rollbacks = 0
        self.costs["checkpoint"] = self.clock() - started

    def resume(self) -> None:
        """Continue from the run's last checkpoint: weights, EMA, optimiser, schedule, RNG, data order."""
        path = self.run_dir / STATE_FILE
        if not path.exists():
            raise GenloomError(f"{self.run_dir} has no checkpoint ({STATE_FILE}) to resume from; "
                               "train without --resume to start it")
        self.load_state_dict(load_state(path))

    # -- the loop ------------------------------------------------------------------------------
    def progress(self) -> float:
        """Fraction of the budget spent: the largest of steps, training time and the time to the deadline."""
        parts = [0.0]
        if self.total_steps:
            parts.append(self.step / self.total_steps)
        if self.config.minutes:
            parts.append(self.elapsed / (60 * self.config.minutes))
        if self.deadline is not None:
            now = self.clock()
            parts.append((now - self.fit_started) / max(1e-9, self.deadline - self.closing_seconds() - self.fit_started))
        return max(parts)

    def closing_seconds(self) -> float:
        """What is left to do after the last step, as the costs measured so far predict: one more step's worth of
        margin, the closing validation, the held-out scores (about one more) and the last checkpoint. Before the
        first validation, one is taken to cost eval_batches forward passes, a third of a step each."""
        step = statistics.median(self.step_times) if self.step_times else 0.0
        validation = self.costs["validation"] or self.config.eval_batches * step / 3
        return step + 2 * validation + self.costs["checkpoint"]

    @property
    def stopped_early(self) -> bool:
        """Whether the validation loss stopped improving for `patience` validations."""
        return 0 < self.config.patience <= self.stale_validations

    def done(self) -> bool:
        """The budget is spent, or the validation loss stopped improving (early stopping)."""
        return self.progress() >= 1.0 or self.stopped_early

    def fit(self, deadline: float | None = None) -> dict[str, float]:
        """Train until the budget is spent, on config.threads threads; return the last logged numbers. Given a
        `deadline` (a time of `clock`), training stops early enough that its closing validation, held-out
        scores and checkpoint are done by then."""
        self.deadline, self.fit_started = deadline, self.clock()
        with using_threads(self.config.threads):
            return self._fit()

    def _fit(self) -> dict[str, float]:
        if not (self.run_dir / STATE_FILE).exists():
            self.checkpoint()  # step 0: the guard always has a good state to roll back to
        bar = tqdm(total=self.total_steps, initial=self.step, unit="step", dynamic_ncols=True,
                   disable=not (self.config.progress and self.processes.writes),
                   mininterval=0.5 if sys.stderr.isatty() else 15)
        session_start, last_checkpoint = self.clock() - self.elapsed, self.clock()
        last_logged: dict[str, float] = {}
        while not self.processes.any(self.done(), self.device):
            step_started = self.clock()
            logs = self._train_step()
            self.step_times.append(self.clock() - step_started)
            self.elapsed = self.clock() - session_start
            if logs is None:  # rolled back: the clock keeps running, the step counter went back
                bar.n = self.step
                continue
            for key, value in logs.items():
                self.running.setdefault(key, []).append(value)
            bar.update(1)
            if "loss" in logs:  # a private step whose Poisson batch came out empty has none
                bar.set_postfix(loss=f"{logs['loss']:.4g}", refresh=False)
            if self.config.minutes and self.total_steps is None and self.elapsed > 0:
                bar.total = round(self.step / min(1.0, self.progress()))
            if self.step % self.config.log_every == 0 or self.done():
                last_logged = {k: sum(v) / len(v) for k, v in self.running.items()}
                self._log({"step": self.step, **last_logged, "lr": self._current_lr(),
                           "elapsed": round(self.elapsed, 3)})
                self.running.clear()
            paused = self.clock()  # validation and samples do not count against the training budget
            if self.validation is not None and (self.step % self.config.eval_every == 0 or self.done()):
                self._validate()
            if self.on_sample and self.processes.writes and self.step % self.config.sample_every == 0:
                started = self.clock()
                self.on_sample(self.step, self.ema.module)
                self._log({"step": self.step, "sample_seconds": round(self.clock() - started, 3)})
            session_start += self.clock() - paused
            if (self.step % self.config.checkpoint_every == 0
                    or self.clock() - last_checkpoint > 60 * self.config.checkpoint_minutes):
                self.checkpoint()
                last_checkpoint = self.clock()
        bar.close()
        if self.stopped_early:
            self._log({"step": self.step, "event": "early_stop", "message": f"no better validation loss in "
                       f"{self.stale_validations} validations; the best was {self.best_val_loss:.4g}"})
        self.checkpoint()
        self._keep_best()
        return last_logged

    def _keep_best(self) -> None:
        """With keep_best, the weights sampled from (the weight average) become the best validation's, where the
        last weights' validation is worse (a long budget overfits a table of a few thousand rows: defaults.py).
        After the last checkpoint, which keeps the trailing average a resumed run goes on from."""
        if not (self.config.keep_best and self.family.validates and self.validation is not None):
            return
        if self.last_val_step != self.step:  # a deadline ended the loop between its checks, or an old checkpoint
            self._validate()
        if self.last_val_loss <= self.best_val_loss:
            return
        if self.best_weights is not None:
            (step, weights), loss = self.best_weights, self.best_val_loss
            self.ema.module.load_state_dict(weights)
        else:  # a best from before a resume or roll-back: the file's, whichever path it came from
            path = self.run_dir / BEST_FILE
            if not path.exists():
                return
            saved = load_weights(self.ema.module, path)
            step, loss = int(saved["step"]), float(saved["val_loss"])
        self.kept_best = (f"the weights of step {step:,}, the best validation loss ({loss:.4g}; the last "
                          f"{self.last_val_loss:.4g})")
        self._log({"step": self.step, "event": "best_weights", "message": self.kept_best})

    def held_out_scores(self, held_out: tuple) -> dict[str, float]:
        """The family's own numbers (of the weight average) on up to EVAL_EXAMPLES held-out examples (or windows
        of EVAL_TOKENS tokens in all), rounded; with the best validation loss when the run validated."""
        windows = None if self.context_length is None else max(1, EVAL_TOKENS // (self.context_length + 1))
        x, labels = make_batches(*held_out, windows or EVAL_EXAMPLES, 0, self.context_length).next()
        net = self.ema.module.eval()
        with torch.no_grad():
            scores = net.evaluate(x.to(self.device), labels.to(self.device) if labels is not None else None)
        if self.validation is not None:
            scores["best_val_loss"] = self.best_val_loss
        return {k: round(v, 4) for k, v in scores.items()}

    def _current_lr(self) -> float:
        return next(iter(self.optimizers.values())).param_groups[0]["lr"]

    def _losses(self, x: torch.Tensor, labels: torch.Tensor | None, family: Family) -> Iterator[LossStep]:
        """The family's losses with each forward pass under autocast (the backward passes stay outside)."""
        x = x.to(self.device, non_blocking=True)
        labels = labels.to(self.device) if labels is not None else None
        losses = family.losses(x, labels)
        while True:
            with autocast(self.device):
                item = next(losses, None)
            if item is None:
                return
            yield item

    def _train_step(self) -> dict[str, float] | None:
        """One update (or one per loss the family yields); None if the guard rolled the run back."""
        self.family.train()
        progress = self.progress()
        self.family.begin_step(progress)
        multiplier = self.lr_scale * lr_multiplier(self.config, self.step, progress)
        for optimizer in self.optimizers.values():
            for param_group in optimizer.param_groups:
                param_group["lr"] = multiplier * param_group["initial_lr"]
        accum = self.config.grad_accum
        values: dict[str, list[float]] = {}  # a GAN's critic may step several times: its numbers are averaged
        for _ in range(accum):
            x, labels = self.processes.share(*self.batches.next())
            if self.privacy is not None and len(x) == 0:  # Poisson sampling drew no example: spent, nothing learnt
                self.step += 1
                self.privacy.step()
                return {}
            for group, loss, extra in self._losses(x, labels, self.family):
                global_loss = self.processes.mean(loss)  # every process decides on the same number
                if not torch.isfinite(global_loss):
                    if self.privacy is not None:
                        self.privacy.abandon(loss)
                    return self._roll_back(f"non-finite loss ({global_loss.item()}) in '{group}'")
                self.scaler.scale(loss / accum).backward()
                if accum == 1 and not self._update(group):  # step as we go: a GAN's G loss needs the new D
                    return self._roll_back(f"non-finite gradient in '{group}'")
                logged = {"loss" if group == "model" else f"loss_{group}": global_loss.item(), **extra}
                for key, value in logged.items():
                    values.setdefault(key, []).append(value)
        if accum > 1 and not self._update("model"):
            return self._roll_back("non-finite gradient")
        logs = {key: sum(v) / len(v) for key, v in values.items()}
        if "loss" not in logs:  # several optimisers: the progress bar shows the last one's loss (a GAN's G)
            logs["loss"] = logs[f"loss_{group}"]
        self.step += 1
        self.ema.update(self.family)
        return logs

    def _update(self, group: str) -> bool:
        """Clip and apply the accumulated gradients of one optimiser; False if they are not finite."""
        optimizer = self.optimizers[group]
        params = [p for g in optimizer.param_groups for p in g["params"]]
        self.processes.average_gradients(params)  # before unscaling, so that all find the same overflow
        self.scaler.unscale_(optimizer)
        norm = torch.nn.utils.clip_grad_norm_(params, self.config.grad_clip)
        if not torch.isfinite(norm) and not self.scaler.is_enabled():  # fp16's scaler skips such steps itself
            return False
        self.scaler.step(optimizer)
        self.scaler.update()
        if self.privacy is not None and self.privacy.protects(group):  # counted as it is taken: a later roll-back
            self.privacy.step()                                          # in the same step cannot hide it
        for each in self.optimizers.values():  # also what a GAN's G loss left in D's gradients
            each.zero_grad(set_to_none=True)
        return True

    def _validate(self) -> None:
        """Mean loss of the EMA weights on fixed held-out batches; the best weights are kept on disk."""
        started = self.clock()
        net = self.ema.module
        x, labels = self.validation
        batches = make_batches(x, labels, self.config.batch_size, VALIDATION_SEED, self.context_length,
                               VALIDATION_PART)
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.no_grad():  # leave the training RNG untouched
            torch.manual_seed(VALIDATION_SEED)  # the same noise (a VAE's codes, diffusion's) at every validation
            losses = [loss.item() for _ in range(self.config.eval_batches)
                      for _, loss, _ in self._losses(*batches.next(), net)]
        val_loss = self.last_val_loss = sum(losses) / len(losses)
        self.last_val_step = self.step
        self.stale_validations += 1
        if val_loss < self.best_val_loss:
            self.best_val_loss, self.stale_validations = val_loss, 0
            if self.config.keep_best:
                self.best_weights = self.step, {name: value.clone() for name, value in net.state_dict().items()}
            if self.processes.writes:
                save_weights(net, self.run_dir / BEST_FILE, {"step": str(self.step),
                                                             "val_loss": f"{val_loss:.6f}"})
        self.costs["validation"] = self.clock() - started
        self._log({"step": self.step, "val_loss": val_loss, "best_val_loss": self.best_val_loss,
                   "elapsed": round(self.elapsed, 3), "val_seconds": round(self.costs["validation"], 3)})

    def _roll_back(self, reason: str) -> None:
        """Reload the last checkpoint and halve the learning rate; give up after MAX_ROLLBACKS in a row."""
        failed_step = self.step + 1
        self.rollbacks += 1
        if self.rollbacks > MAX_ROLLBACKS:
            raise GenloomError(f"training diverged: {reason} at step {failed_step} after {MAX_ROLLBACKS} "
                               "roll-backs with smaller learning rates; lower --lr or --grad-clip")
        rollbacks = self.rollbacks
        for optimizer in self.optimizers.values():
            optimizer.zero_grad(set_to_none=True)
        self.load_state_dict(load_state(self.run_dir / STATE_FILE), restore_clock=False)
        self.rollbacks = rollbacks
        self.lr_scale *= 0.5 ** rollbacks
        message = (f"{reason} at step {failed_step}: rolled back to the checkpoint at step {self.step} "
                   f"and scaled the learning rate by {self.lr_scale:g}")
        if self.privacy is not None:
            message += ("; the privacy of the steps undone stays spent, so the run spends more than its budget "
                        "planned (config.json's privacy says how much)")
        if self.processes.writes:
            tqdm.write(f"genloom: warning: {message}", file=sys.stderr)
        self._log({"step": self.step, "event": "rollback", "message": message})

    # -- metrics.jsonl -------------------------------------------------------------------------
    def _log(self, record: dict) -> None:
        if not self.processes.writes:
            return
        with open(self.run_dir / METRICS_FILE, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        self.on_log(record)

    def _truncate_metrics(self, step: int) -> None:
        """Drop lines logged after `step`: a resumed or rolled-back run logs them again."""
        path = self.run_dir / METRICS_FILE
        if not self.processes.writes:
            return
        records = read_metrics(path)
        kept = [record for record in records if record["step"] <= step]
        if path.exists() and len(kept) != len(path.read_text(encoding="utf-8").splitlines()):
            write_text(path, "".join(json.dumps(record) + "\n" for record in kept))


def read_metrics(path: Path) -> list[dict]:
    """The records of a metrics.jsonl, skipping a last line cut short by a crash."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records
