"""Knowledge distillation (Hinton et al. 2015): a smaller autoregressive student learns the teacher's whole
next-token distribution, softened by a temperature, beside the data's next tokens; a soft target says which wrong
tokens are nearly right, which one-hot targets do not, so a small student learns more per step than from the data
alone.

On a token stream the teacher is read once, before training: its TOP_K most likely next tokens at every position
(TeacherTargets; the sparse soft targets of distilling large language models), so a step costs the student's
step, not a pass of a larger network as well; the student trains on the windows they were read on. Examples
(molecules, a table's rows, images) and held-out scores ask the teacher as they go."""
from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .autoregressive import Autoregressive
from .base import Family, FrozenReference, LossStep

TOP_K = 16                  # teacher tokens kept per position of a stream
CACHE_BYTES = 2 * 2 ** 30   # past this, a stream's targets are not kept: the teacher is asked at every step
READ_BATCH = 32             # windows per pass of the teacher while it is read ...
READ_LOGITS = 2 ** 26       # ... fewer where their logits would pass this many numbers (256 MB)


class TeacherTargets:
    """The teacher's TOP_K logits (fp16) and their tokens at every position of a token stream, read on windows of its
    context laid end to end; the student then trains on those same windows (Family.window_grid), so each target was
    made from the context the student sees (HF's run_clm cuts its blocks so too). The weight average's copy of the
    family shares them rather than copying them."""

    def __init__(self, teacher: Autoregressive, stream: torch.Tensor, progress: bool):
        context, k = teacher.context_length, min(TOP_K, teacher.layout.vocab_size)
        self.logits = torch.zeros(len(stream), k, dtype=torch.float16)   # row j: for predicting token j
        self.tokens = torch.zeros(len(stream), k, dtype=torch.int32)
        device = next(teacher.parameters()).device
        starts = torch.arange(0, len(stream) - context, context)  # each window predicts its next `context` tokens
        batch = max(1, min(READ_BATCH, READ_LOGITS // (context * teacher.layout.vocab_size)))
        with torch.no_grad():
            for first in tqdm(range(0, len(starts), batch), desc="reading the teacher", unit="pass",
                              disable=not progress, mininterval=1.0):
                chunk = starts[first:first + batch]
                values, indices = teacher.net(stream[chunk[:, None] + torch.arange(context)].to(device)).float().topk(k)
                rows = (chunk[:, None] + 1 + torch.arange(context)).flatten()
                self.logits[rows] = values.flatten(0, 1).half().cpu()
                self.tokens[rows] = indices.flatten(0, 1).int().cpu()

    @staticmethod
    def fits(teacher: Autoregressive, stream: torch.Tensor) -> bool:
        """Whether a stream's targets fit under CACHE_BYTES (and the stream holds a window: else training refuses
        it); 6 bytes a kept target, its fp16 logit and int32 token."""
        kept = len(stream) * min(TOP_K, teacher.layout.vocab_size)
        return len(stream) > teacher.context_length + 1 and kept * 6 <= CACHE_BYTES

    def at(self, starts: torch.Tensor, length: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, tokens) of the `length` predictions of windows starting at `starts`, flattened."""
        rows = (starts[:, None].cpu() + 1 + torch.arange(length)).flatten()
        return self.logits[rows].to(device).float(), self.tokens[rows].to(device).long()

    def __deepcopy__(self, memo: dict) -> TeacherTargets:
        return self


class KnowledgeDistillation(Family):
    """loss = w T^2 KL(teacher_T || student_T) + (1 - w) CE(student, data), with both distributions softened by
    temperature T (the T^2 keeps the soft part's gradients in scale as T changes)."""

    name = "knowledge-distillation"

    def __init__(self, student: Autoregressive, teacher: Autoregressive, temperature: float, soft_weight: float,
                 progress: bool = False):
        super().__init__(student.layout, student.config)
        self.student, self.reference = student, FrozenReference(teacher)
        self.temperature, self.soft_weight, self.progress = temperature, soft_weight, progress
        self.targets: TeacherTargets | None = None

    @property
    def teacher(self) -> Autoregressive:
        return self.reference.module

    def prepare(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> None:
        """Read the teacher once over a token stream that its targets fit in memory for."""
        if self.context_length is not None and TeacherTargets.fits(self.teacher, x):
            self.targets = TeacherTargets(self.teacher, x, self.progress)

    @property
    def context_length(self) -> int | None:
        return self.student.context_length

    @property
    def window_grid(self) -> int | None:
        """Where the teacher's targets were read, once read."""
        return self.context_length if self.targets is not None else None

    def hidden_matrices(self) -> list[nn.Parameter]:
        return self.student.hidden_matrices()

    def _parts(self, x: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(soft loss, next-token loss) of the student on a batch: against the teacher's kept targets when training
        on windows of the stream they were read from (labels: the windows' offsets), else against the teacher."""
        cached = self.training and self.targets is not None and labels is not None
        sequences = self.student.sequences(x, labels if self.student.context_length is None else None)
        inputs, targets = sequences[:, :-1], sequences[:, 1:]
        logits = self.student.net(inputs).float().flatten(0, 1)
        log_probs = F.log_softmax(logits, dim=-1)
        counted = self.student.example_mask(sequences)[:, 1:].flatten()  # a molecule's padding is not modelled
        hard = (F.nll_loss(log_probs, targets.flatten(), reduction="none") * counted).sum() / len(counted)
        t = self.temperature
        log_student = log_probs if t == 1 else F.log_softmax(logits / t, dim=-1)  # at T = 1 (the default), once
        if cached:  # the KL from the teacher's top tokens (renormalised) to the student's distribution
            top_logits, top_tokens = self.targets.at(labels, inputs.shape[1], logits.device)
            log_teacher = F.log_softmax(top_logits / t, dim=-1)
            divergence = (log_teacher.exp() * (log_teacher - log_student.gather(1, top_tokens))).sum(-1)
        else:
            with torch.no_grad():
                log_teacher = F.log_softmax(self.teacher.net(inputs).float().flatten(0, 1) / t, dim=-1)
            divergence = F.kl_div(log_student, log_teacher, log_target=True, reduction="none").sum(-1)
        return (divergence * counted).sum() / len(counted) * t * t, hard

    def losses(self, x: torch.Tensor, labels: torch.Tensor | None) -> Iterator[LossStep]:
        if not self.training:  # a validation scores the student's own next-token loss: the best weights kept are
            # those of its best held-out likelihood, comparable with any model's, and a validation needs no pass of
            # the teacher (asking it took a twelfth of a 5-minute distillation on tiny Shakespeare)
            yield from self.student.losses(x, labels)
            return
        soft, hard = self._parts(x, labels)
        yield "model", self.soft_weight * soft + (1 - self.soft_weight) * hard, {
            "soft_loss": soft.item(), "next_token_loss": hard.item()}

    def evaluate(self, x: torch.Tensor, labels: torch.Tensor | None) -> dict[str, float]:
        """The student's own held-out numbers, comparable with any model's on the data (and, as a validation,
        without a pass of the teacher, which a time budget does not hold back time for)."""
        return self.student.evaluate(x, labels)

    def held_out_soft_loss(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> float:
        """How far the student's next-token distributions lie from the teacher's on examples or windows x (asking
        the teacher)."""
        was_training = self.training
        try:
            with torch.no_grad():
                return self.eval()._parts(x, labels)[0].item()
        finally:
            self.train(was_training)

    def sample(self, n: int, labels: torch.Tensor | None, generator: torch.Generator, options: Any = None,
               given: Sequence[int] = (), on_pass: Callable[[], None] = lambda: None) -> torch.Tensor:
        """The student's samples."""
        return self.student.sample(n, labels, generator, options, given, on_pass)
