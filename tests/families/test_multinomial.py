import torch
import torch.nn.functional as F

from genloom.families.multinomial import MultinomialDiffusion
from genloom.families.schedules import NoiseSchedule

SCHEDULE = NoiseSchedule.cosine(50)
WIDTHS = [3, 2]


def _transition(abar: float, k: int) -> torch.Tensor:
    """Q[i, j] = q(x_t = j | x_0 = i) for q = Cat(abar x_0 + (1 - abar)/k)."""
    return abar * torch.eye(k, dtype=torch.float64) + (1 - abar) / k


def test_posterior_equals_bayes_rule_with_transition_matrices():
    diffusion = MultinomialDiffusion(SCHEDULE, WIDTHS)
    abar = SCHEDULE.alphas_cumprod
    x0 = torch.tensor([[0.2, 0.5, 0.3, 0.9, 0.1]], dtype=torch.float64)  # a distribution over x_0
    x_t = torch.tensor([[0, 1, 0, 1, 0]], dtype=torch.float64)
    for t, s in [(10, 9), (40, 25), (5, 0)]:
        got = diffusion.posterior(x_t, x0, torch.tensor([t]), torch.tensor([s]))
        for (start, k), observed in zip([(0, 3), (3, 2)], [1, 0]):
            step = _transition(float(abar[t] / abar[s]), k)   # x_s -> x_t
            prior = x0[0, start:start + k] @ _transition(float(abar[s]), k)  # q(x_s | x_0)
            bayes = prior * step[:, observed]
            torch.testing.assert_close(got[0, start:start + k], bayes / bayes.sum())


def test_corruption_keeps_a_category_with_the_schedule_probability():
    diffusion = MultinomialDiffusion(SCHEDULE, WIDTHS)
    x0 = F.one_hot(torch.zeros(20_000, dtype=torch.long), 3).float()
    x0 = torch.cat([x0, F.one_hot(torch.ones(20_000, dtype=torch.long), 2).float()], 1)
    t = torch.full((20_000,), 20)
    x_t = diffusion.corrupt(x0, t, torch.Generator().manual_seed(0))
    abar = float(SCHEDULE.alphas_cumprod[20])
    assert torch.equal(x_t[:, :3].sum(1), torch.ones(20_000)) and torch.equal(x_t[:, 3:].sum(1), torch.ones(20_000))
    assert abs(x_t[:, 0].mean().item() - (abar + (1 - abar) / 3)) < 0.01
    assert abs(x_t[:, 4].mean().item() - (abar + (1 - abar) / 2)) < 0.01


def test_loss_vanishes_for_a_perfect_prediction_and_grows_for_a_wrong_one():
    diffusion = MultinomialDiffusion(SCHEDULE, WIDTHS)
    x0 = torch.tensor([[1.0, 0, 0, 0, 1]] * 3)
    x_t = torch.tensor([[0.0, 1, 0, 0, 1]] * 3)
    t = torch.tensor([0, 10, 40])
    perfect, wrong = 50 * (x0 - 0.5), 50 * (0.5 - x0)
    assert diffusion.loss(x0, x_t, perfect, t).abs().max() < 1e-4
    wrong_loss = diffusion.loss(x0, x_t, wrong, t)
    assert (wrong_loss[:2] > 0.1).all() and wrong_loss[2] > 1e-3  # near pure noise, x_0 matters little


def test_the_last_step_draws_the_predicted_categories():
    diffusion = MultinomialDiffusion(SCHEDULE, WIDTHS)
    logits = torch.tensor([[-30.0, 30, -30, 30, -30]]).repeat(100, 1)
    x = diffusion.step(diffusion.prior(100, torch.Generator().manual_seed(0)), logits, 0, -1,
                       torch.Generator().manual_seed(1))
    assert torch.equal(x, torch.tensor([[0.0, 1, 0, 1, 0]]).repeat(100, 1))
