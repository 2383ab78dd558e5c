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


def test_table_reconstruction_is_gaussian_on_numbers_and_categorical_on_one_hots():
    import torch.nn.functional as F
    from torch.distributions import Normal

    from genloom.families.likelihoods import reconstruction_for
    from genloom.layout import Layout

    layout = Layout("table", (6,), spans=(("continuous", 1), ("discrete", 3), ("discrete", 2)))
    recon = reconstruction_for(layout)
    torch.manual_seed(0)
    x = torch.tensor([[0.3, 0, 1, 0, 1, 0], [-0.5, 1, 0, 0, 0, 1]])
    output, log_scale = torch.randn(2, 6), torch.randn(6) * 0.1
    expected = (Normal(torch.tanh(output[:, 0]), log_scale[0].exp()).log_prob(x[:, 0])
                + F.log_softmax(output[:, 1:4], 1)[[0, 1], [1, 0]] + F.log_softmax(output[:, 4:], 1)[[0, 1], [0, 1]])
    torch.testing.assert_close(recon.log_prob(x, output, log_scale), expected)
    mean = recon.mean(output)
    torch.testing.assert_close(mean[:, 1:4].sum(1), torch.ones(2))
    drawn = recon.sample(output.repeat(500, 1), torch.Generator().manual_seed(0))
    assert set(drawn[:, 1:4].sum(1).tolist()) == {1.0}  # one-hot draws
    share = drawn[0::2, 1:4].mean(0)
    torch.testing.assert_close(share, F.softmax(output[0, 1:4], 0), atol=0.06, rtol=0)
