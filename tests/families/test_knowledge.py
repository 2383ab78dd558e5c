"""Knowledge distillation's loss against its definition, and against a known answer: a student that is its teacher."""
import copy

import pytest
import torch

from genloom.data.text_layout import TextLayout
from genloom.families.autoregressive import Autoregressive
from genloom.families.configs import AutoregressiveConfig
from genloom.families.knowledge import KnowledgeDistillation

LAYOUT = TextLayout(shape=(), vocab_size=20, start_token=0)


def _gpt(seed: int, **options) -> Autoregressive:
    torch.manual_seed(seed)
    return Autoregressive(LAYOUT, AutoregressiveConfig(**{"n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": 8,
                                                          **options}))


def _windows() -> torch.Tensor:
    return torch.randint(20, (6, 9), generator=torch.Generator().manual_seed(0))


def test_a_student_that_is_its_teacher_has_no_soft_loss():
    teacher = _gpt(0)
    distillation = KnowledgeDistillation(copy.deepcopy(teacher), teacher, temperature=2.0, soft_weight=0.5)
    _, loss, logged = next(distillation.losses(_windows(), None))
    assert logged["soft_loss"] == pytest.approx(0.0, abs=1e-6)
    hard = -teacher.log_prob(_windows()).sum() / (6 * 8)  # the mean next-token loss
    assert logged["next_token_loss"] == pytest.approx(hard.item(), rel=1e-5)
    assert loss.item() == pytest.approx(0.5 * hard.item(), rel=1e-5)


@pytest.mark.parametrize("temperature", [1.0, 3.0])
def test_the_soft_loss_is_the_softened_kl_times_t_squared(temperature):
    teacher, student = _gpt(0), _gpt(1)
    distillation = KnowledgeDistillation(student, teacher, temperature=temperature, soft_weight=1.0)
    _, loss, logged = next(distillation.losses(_windows(), None))
    inputs = _windows()[:, :-1]
    p = (teacher.net(inputs) / temperature).softmax(-1)
    q = (student.net(inputs) / temperature).softmax(-1)
    expected = temperature ** 2 * (p * (p.log() - q.log())).sum(-1).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-4)
    assert logged["next_token_loss"] > 0


def test_only_the_student_trains():
    teacher, student = _gpt(0), _gpt(1, n_embd=8)
    distillation = KnowledgeDistillation(student, teacher, temperature=2.0, soft_weight=0.5)
    trained = {id(p) for p in distillation.param_groups()["model"]}
    assert trained == {id(p) for p in student.parameters()}
    assert {id(p) for p in distillation.hidden_matrices()} == {id(p) for p in student.hidden_matrices()}


def test_the_teachers_targets_read_once_equal_asking_it(monkeypatch):
    """With every token kept, the soft loss on windows of the grid the teacher was read on (given their offsets) is
    the loss against the teacher itself; every row holds the teacher's top tokens for its token."""
    import genloom.families.knowledge as knowledge

    monkeypatch.setattr(knowledge, "TOP_K", 20)
    teacher, student = _gpt(0), _gpt(1)
    stream = torch.randint(20, (101,), generator=torch.Generator().manual_seed(2))
    distillation = KnowledgeDistillation(student, teacher, temperature=2.0, soft_weight=1.0)
    distillation.prepare(stream)
    assert distillation.window_grid == 8  # the teacher's context: the student trains on the windows it read
    starts = torch.tensor([0, 8, 88])
    windows = stream[starts[:, None] + torch.arange(9)]
    distillation.train()
    cached = next(distillation.losses(windows, starts))[2]["soft_loss"]
    distillation.eval()
    asked = distillation.held_out_soft_loss(windows)
    assert cached == pytest.approx(asked, rel=1e-4)
    for row in (1, 8, 9, 44, 96):
        start = (row - 1) // 8 * 8
        with torch.no_grad():
            top = teacher.net(stream[start:start + 8][None])[0, row - start - 1].topk(20)
        assert distillation.targets.tokens[row].tolist() == top.indices.tolist(), row


def test_a_validation_scores_the_students_own_likelihood_without_asking_the_teacher():
    teacher, student = _gpt(0), _gpt(1)
    distillation = KnowledgeDistillation(student, teacher, temperature=2.0, soft_weight=0.5).eval()
    teacher.net.forward = None  # a validation that asked the teacher would fail here
    _, loss, _ = next(distillation.losses(_windows(), None))
    expected = -student.log_prob(_windows()).sum() / (6 * 8)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
