"""Distillation: a trained run taught to a faster student, which is then a run of its own (it loads, samples,
evaluates and serves like any other, and its record says whom it learnt from). The method is the teacher
family's, from one table: a diffusion model is distilled progressively to fewer sampling steps
(families/progressive.py), an autoregressive one into a smaller transformer on its soft targets
(families/knowledge.py)."""
from __future__ import annotations

import math
import shutil
import sys
import tempfile
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, ClassVar

import torch
from tqdm.auto import tqdm

from .errors import GenloomError
from .families import build_family, family_entry
from .families.base import Family
from .families.configs import DistillSettings
from .options import Options
from .train.config import TrainConfig
from .train.device import resolve_device
from .train.loop import CallBudget, Trainer

DEFAULT_STEPS = 4             # a diffusion student's sampling steps
# of the soft targets, measured on Shakespeare (benchmarks/distill.py): at DistilBERT's T = 2 a half-size student
# ended 0.06-0.08 nats behind the same student trained alone for the same wall time, at T = 1 within 0.03 of it
# either way; all of the loss on the soft targets (weight 1) left it 0.04 behind, half of it did not
DEFAULT_TEMPERATURE = 1.0
DEFAULT_SOFT_WEIGHT = 0.5


@dataclass
class Student:
    """A trained student: its options, its weights (trained and averaged), and what its record says."""

    config: Options
    net: Family
    ema_net: Family
    steps_trained: int
    train_seconds: float
    final_metrics: dict[str, float]
    teaching: dict[str, Any]      # how it was taught, for the record's distilled_from


def parameter_count(net: Family) -> int:
    """Its weights, the measure by which a student must be smaller than its teacher."""
    return sum(p.numel() for p in net.parameters())


class Method(ABC):
    """How a family's runs are distilled."""

    name: ClassVar[str]
    settings: ClassVar[tuple[str, ...]]   # the DistillSettings it takes; the others are refused

    def checked(self, teacher: Family, asked: DistillSettings) -> DistillSettings:
        """The settings with this method's defaults filled in, or a one-line error before any data is read."""
        for field in fields(asked):
            if getattr(asked, field.name) is not None and field.name not in self.settings:
                raise GenloomError(f"{field.name} applies to distilling another family; distilling {teacher.name} "
                                   f"runs takes {', '.join(self.settings)}")
        return self.filled(teacher, asked)

    @abstractmethod
    def filled(self, teacher: Family, asked: DistillSettings) -> DistillSettings:
        """Defaults filled in and the settings checked against the teacher."""

    @abstractmethod
    def teach(self, teacher: Family, x: torch.Tensor, labels: torch.Tensor | None, validation: tuple | None,
              settings: DistillSettings, config: TrainConfig, work: Path, budget: CallBudget | None) -> Student:
        """Train the student on the teacher's data x (encoded), keeping checkpoints in `work`, by the deadline of
        the call's `budget` where it has one."""


def _trained(family: Family, x: torch.Tensor, labels: torch.Tensor | None, validation: tuple | None,
             config: TrainConfig, work: Path, budget: CallBudget | None, share: float = 1.0,
             before: str | None = None) -> Trainer:
    """`family` trained on x in `work`; it sees the data first (family.prepare), as a run's family does. With the
    call's `budget`, it ends by its deadline, taking `share` of the time left after its preparation; with `before`
    (what the call did until then, the preparation included), a budget that leaves no training is refused."""
    work.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(family, x, labels, config, work, resolve_device(config.device), validation)
    deadline = None
    if budget is not None:
        if before is not None:
            budget.check_time_left(before)
        now = time.perf_counter()
        deadline = now + share * (budget.deadline - now)
    trainer.fit(deadline)
    return trainer


def _share(config: TrainConfig, parts: int, part: int) -> TrainConfig:
    """The budget of stage `part` of `parts` equal ones (steps as even as whole steps allow, at least one)."""
    steps = config.steps and max(1, config.steps // parts + (part < config.steps % parts))
    return replace(config, steps=steps, minutes=config.minutes and config.minutes / parts,
                   epochs=config.epochs and config.epochs / parts)


def _scores(trainer: Trainer, held_out: tuple) -> dict[str, float]:
    """A diffusion student's held-out scores; its best validation loss is named for what it is (a distillation loss,
    not a likelihood a comparison of runs may set beside others')."""
    scores = trainer.held_out_scores(held_out)
    if "best_val_loss" in scores:
        scores["best_distillation_loss"] = scores.pop("best_val_loss")
    return scores


class Progressive(Method):
    """Diffusion: halve the sampling steps stage by stage, each stage's student the next one's teacher."""

    name = "progressive distillation (Salimans & Ho 2022)"
    settings = ("steps", "teacher_steps")

    def filled(self, teacher: Family, asked: DistillSettings) -> DistillSettings:
        if getattr(teacher, "categories", None) is not None:
            raise GenloomError("progressive distillation needs a model that diffuses every value as Gaussian noise; "
                               "this table's category columns diffuse multinomially: distil a run on numbers only, or "
                               "sample this one with fewer ddpm steps")
        own = teacher.default_steps(teacher.config.sampler)
        steps = asked.steps or DEFAULT_STEPS
        if steps >= own:
            raise GenloomError(f"the teacher samples in {own} steps; a student of {steps} would be no faster: ask "
                               f"fewer steps (e.g. {DEFAULT_STEPS})")
        levels = teacher.config.timesteps
        if asked.teacher_steps is None:  # the least steps x 2^k at or above its own steps, within its noise levels
            halvings = max(1, min(math.ceil(math.log2(own / steps)), math.floor(math.log2(levels / steps))))
            teacher_steps = steps * 2 ** halvings
        else:
            teacher_steps, halvings = asked.teacher_steps, asked.teacher_steps / steps
            if halvings < 2 or halvings != 2 ** round(math.log2(halvings)):
                raise GenloomError(f"teacher_steps must be the student's {steps} steps times a power of 2 (each "
                                   f"stage halves the steps); got {teacher_steps}: e.g. {steps * 8}")
        if teacher_steps > levels:
            raise GenloomError(f"the teacher learnt {levels} noise levels, fewer than the {teacher_steps} steps a "
                               f"{steps}-step student halves from: ask fewer teacher_steps (or steps)")
        return replace(asked, steps=steps, teacher_steps=teacher_steps)

    def teach(self, teacher: Family, x: torch.Tensor, labels: torch.Tensor | None, validation: tuple | None,
              settings: DistillSettings, config: TrainConfig, work: Path, budget: CallBudget | None) -> Student:
        from .families.progressive import ProgressiveStage  # torch-heavy: only when distilling
        torch.manual_seed(config.seed)
        stages = round(math.log2(settings.teacher_steps / settings.steps))
        student_options = {**asdict(teacher.config), "prediction": "v", "sampler": "ddim",
                           "timestep_spacing": "trailing", "guidance": 1.0,
                           "label_dropout": 0.0 if teacher.conditional else teacher.config.label_dropout}
        if budget is not None:  # once, for all the stages: one that ran out half way would have written nothing
            budget.check_time_left("reading the data", trainings=stages)
        stage_teacher, trained, seconds, trainer = teacher, 0, 0.0, None
        for stage in range(stages):
            steps = settings.teacher_steps // 2 ** (stage + 1)
            if config.progress:
                tqdm.write(f"genloom: distilling, stage {stage + 1} of {stages}: {2 * steps} steps to {steps}",
                           file=sys.stderr)
            options = family_entry("diffusion").options.from_options({**student_options, "sample_steps": steps})
            student = build_family("diffusion", teacher.layout, options)
            student.load_state_dict(stage_teacher.state_dict())
            trainer = _trained(ProgressiveStage(student, stage_teacher, steps), x, labels, validation,
                               _share(config, stages, stage), work / f"stage-{stage + 1}", budget,
                               share=1 / (stages - stage))
            stage_teacher = trainer.ema.module.student
            trained, seconds = trained + trainer.step, seconds + trainer.elapsed
        return Student(options, trainer.family.student, stage_teacher, trained, round(seconds, 2),
                       _scores(trainer, validation or (x, labels)),
                       {"method": self.name, "steps": settings.steps, "teacher_steps": settings.teacher_steps,
                        "stages": stages, "guidance": teacher.own_guidance})


def _half_width(width: int, heads: int) -> int:
    """About half a transformer's width, a multiple of twice its heads (rotary embeddings need even head sizes)."""
    return max(2 * heads, width // 2 // (2 * heads) * (2 * heads))


class Knowledge(Method):
    """Autoregressive: a smaller transformer trained on the teacher's soft targets and the data."""

    name = "knowledge distillation (Hinton et al. 2015)"
    settings = ("n_layer", "n_head", "n_embd", "temperature", "soft_weight")

    def filled(self, teacher: Family, asked: DistillSettings) -> DistillSettings:
        if teacher.config.backbone != "transformer":
            raise GenloomError(f"knowledge distillation makes a smaller transformer; this run's backbone is "
                               f"{teacher.config.backbone}")
        config = teacher.config
        settings = replace(asked, n_layer=asked.n_layer or max(1, config.n_layer // 2),
                           n_head=asked.n_head or config.n_head,
                           n_embd=asked.n_embd or _half_width(config.n_embd, asked.n_head or config.n_head),
                           temperature=asked.temperature or DEFAULT_TEMPERATURE,
                           soft_weight=DEFAULT_SOFT_WEIGHT if asked.soft_weight is None else asked.soft_weight)
        self.student(teacher, settings)  # refused now, before any data, where it is not smaller
        return settings

    def student(self, teacher: Family, settings: DistillSettings) -> Family:
        """The untrained student, refused where it is not smaller than its teacher."""
        options = family_entry("autoregressive").options.from_options(
            {**asdict(teacher.config), "n_layer": settings.n_layer, "n_head": settings.n_head,
             "n_embd": settings.n_embd}, "student option")
        student = build_family("autoregressive", teacher.layout, options)
        if parameter_count(student) >= parameter_count(teacher):
            raise GenloomError(f"the student ({parameter_count(student):,} parameters) is not smaller than its "
                               f"teacher ({parameter_count(teacher):,}): lower n_layer or n_embd")
        tokenizer = {key: value for key, value in teacher.state_dict().items() if key.startswith("tokens.")}
        student.load_state_dict(tokenizer, strict=False)  # a table's fitted bins: the teacher's tokens, not new ones
        return student

    def teach(self, teacher: Family, x: torch.Tensor, labels: torch.Tensor | None, validation: tuple | None,
              settings: DistillSettings, config: TrainConfig, work: Path, budget: CallBudget | None) -> Student:
        from .families.knowledge import KnowledgeDistillation
        torch.manual_seed(config.seed)
        student = self.student(teacher, settings)
        trainer = _trained(KnowledgeDistillation(student, teacher, settings.temperature, settings.soft_weight,
                                                 config.progress), x, labels, validation, config, work, budget,
                           before="reading the data and the teacher's targets")
        return Student(student.config, trainer.family.student, trainer.ema.module.student, trainer.step,
                       round(trainer.elapsed, 2), trainer.held_out_scores(validation or (x, labels)),
                       {"method": self.name, "temperature": settings.temperature,
                        "soft_weight": settings.soft_weight, "parameters": parameter_count(student),
                        "teacher_parameters": parameter_count(teacher),
                        **({"best_weights": trainer.kept_best} if trainer.kept_best else {})})


METHODS: dict[str, Method] = {"diffusion": Progressive(), "autoregressive": Knowledge()}


def method_for(teacher: Family) -> Method:
    """The family's method, or a one-line error naming the families that have one."""
    if teacher.name not in METHODS:
        raise GenloomError(f"distillation takes {' and '.join(METHODS)} runs; this run's family is {teacher.name}")
    return METHODS[teacher.name]


def distilled(teacher: Family, x: torch.Tensor, labels: torch.Tensor | None, validation: tuple | None,
              settings: DistillSettings, config: TrainConfig, budget: CallBudget | None = None) -> Student:
    """The student of `teacher` (settings already checked) trained on x, by the deadline of the call's `budget`
    where it has one; its checkpoints kept in a scratch folder that is removed after."""
    work = Path(tempfile.mkdtemp(prefix="genloom-distill-"))
    try:
        return method_for(teacher).teach(teacher, x, labels, validation, settings, config, work, budget)
    finally:
        shutil.rmtree(work, ignore_errors=True)
