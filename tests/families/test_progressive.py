"""Progressive distillation's objective: its target against a known answer, and a student that learns to take in
one step what its teacher takes in two."""
from dataclasses import replace

import torch

from genloom.data.image_layout import ImageLayout
from genloom.families.configs import DiffusionConfig, DiffusionSampling
from genloom.families.diffusion import Diffusion
from genloom.families.progressive import ProgressiveStage

LAYOUT = ImageLayout((1, 8, 8), 0)
IMAGE = torch.linspace(-0.8, 0.8, 64).view(1, 1, 8, 8)  # the one training image: a perfect denoiser knows it


class _PointingAt(torch.nn.Module):
    """The exact epsilon (or v) of a model whose x_0 is always `x0`."""

    def __init__(self, family: Diffusion, x0: torch.Tensor):
        super().__init__()
        self.abar, self.prediction, self.x0 = family.alphas_cumprod, family.config.prediction, x0

    def forward(self, x_t, t, labels=None):
        abar = self.abar[t].view(-1, 1, 1, 1)
        eps = (x_t - abar.sqrt() * self.x0) / (1 - abar).sqrt()
        return eps if self.prediction == "epsilon" else abar.sqrt() * eps - (1 - abar).sqrt() * self.x0


def _family(prediction: str, x0: torch.Tensor | None = None, **options) -> Diffusion:
    torch.manual_seed(0)
    family = Diffusion(LAYOUT, DiffusionConfig(width=8, timesteps=64, prediction=prediction, **options))
    if x0 is not None:
        family.denoiser = _PointingAt(family, x0)
    return family


def test_a_perfect_teachers_target_is_its_image():
    """Two exact DDIM steps land where one step toward the same image lands, so the target is that image: a
    student that knows it has zero loss, and one that answers another image pays max(SNR, 1) x the squared gap."""
    teacher = _family("epsilon", IMAGE)
    right = ProgressiveStage(_family("v", IMAGE), teacher, steps=4)
    assert right.distillation_loss(IMAGE.repeat(64, 1, 1, 1), None).max().item() < 1e-6
    other = torch.zeros_like(IMAGE)
    wrong = ProgressiveStage(_family("v", other), teacher, steps=4)
    generator = torch.Generator().manual_seed(0)
    loss = wrong.distillation_loss(IMAGE.repeat(64, 1, 1, 1), None, generator)
    picked = torch.randint(4, (64,), generator=torch.Generator().manual_seed(0))
    abar = teacher.alphas_cumprod[wrong.starts[picked]]
    expected = (abar / (1 - abar)).clamp(min=1) * (IMAGE - other).square().mean()
    torch.testing.assert_close(loss, expected, rtol=1e-4, atol=1e-6)


def test_the_grids_nest():
    """The student steps from each point of its grid to the next; the teacher's grid has a point between."""
    stage = ProgressiveStage(_family("v"), _family("epsilon"), steps=4)
    assert stage.starts.tolist() == [63, 47, 31, 15]
    assert stage.middles.tolist() == [55, 39, 23, 7]
    assert stage.ends.tolist() == [47, 31, 15, -1]


def _ddim(family: Diffusion, steps: int, n: int = 64) -> torch.Tensor:
    trailing = Diffusion(LAYOUT, replace(family.config, timestep_spacing="trailing"))
    trailing.load_state_dict(family.state_dict())
    with torch.no_grad():
        return trailing.sample(n, None, torch.Generator().manual_seed(1), DiffusionSampling("ddim", steps))


def test_a_student_learns_two_teacher_steps_in_one(digits):
    """After training, the student's one DDIM step from some noise lands nearer the teacher's two steps from the
    same noise than the teacher's own one step does (a tiny network: its 4-step student needs longer than a test)."""
    from genloom.data.image_codec import ImageCodec

    x = ImageCodec().fit(digits).encode(digits.values)
    teacher = _family("epsilon")
    optimizer = torch.optim.Adam(teacher.parameters(), lr=2e-3)
    for _ in range(150):  # a rough teacher of the digits
        batch = x[torch.randint(len(x), (32,))]
        loss = next(teacher.losses(batch, None))[1]
        optimizer.zero_grad(), loss.backward(), optimizer.step()
    teacher.eval().requires_grad_(False)
    student = _family("v", timestep_spacing="trailing", sampler="ddim")
    student.load_state_dict(teacher.state_dict())
    stage = ProgressiveStage(student, teacher, steps=1)
    optimizer = torch.optim.Adam(student.parameters(), lr=1e-3)
    losses = []
    for _ in range(250):
        loss = stage.distillation_loss(x[torch.randint(len(x), (32,))], None).mean()
        optimizer.zero_grad(), loss.backward(), optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-30:]) < 0.5 * sum(losses[:30])
    reference = _ddim(teacher, 2)
    student_gap = (_ddim(student.eval(), 1) - reference).square().mean()
    teacher_gap = (_ddim(teacher, 1) - reference).square().mean()
    assert student_gap < 0.5 * teacher_gap, (student_gap, teacher_gap)
