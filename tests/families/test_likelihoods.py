import torch

from genloom.families.likelihoods import discretised_gaussian_log_prob


def test_discretised_gaussian_sums_to_one_over_all_levels():
    levels = 256
    grid = torch.linspace(-1, 1, levels).view(levels, 1)
    for mean, log_scale in [(0.0, -2.0), (0.9, -4.0), (-1.3, 0.5), (0.2, -7.0)]:
        log_p = discretised_gaussian_log_prob(grid, torch.full_like(grid, mean), torch.full_like(grid, log_scale))
        assert torch.isfinite(log_p).all()
        assert abs(log_p.exp().sum().item() - 1.0) < 1e-4


def test_discretised_gaussian_matches_the_cdf_difference():
    x, mean, scale = torch.tensor([[0.1]]), torch.tensor([[0.05]]), 0.3
    normal = torch.distributions.Normal(0.05, scale)
    expected = (normal.cdf(torch.tensor(0.1 + 1 / 255)) - normal.cdf(torch.tensor(0.1 - 1 / 255))).log()
    got = discretised_gaussian_log_prob(x, mean, torch.full_like(x, torch.tensor(scale).log().item()))
    assert torch.allclose(got, expected.view(1), atol=1e-5)
