import torch

from genloom.data.image_layout import ImageLayout, PixelTokens, discretised_gaussian_log_prob


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


def test_pixel_tokens_are_equal_bins_of_eight_bit_values_decoded_to_their_centres():
    tokens = PixelTokens((1, 2, 2), levels=4)
    eight_bit = torch.tensor([0, 63, 64, 255]).view(1, 1, 2, 2)
    x = eight_bit.float() / 127.5 - 1
    encoded = tokens.encode(x)
    assert encoded.tolist() == [[0, 0, 1, 3]] and tokens.length == 4 and tokens.vocab_size == 4
    decoded = (tokens.decode(encoded) + 1) * 127.5
    torch.testing.assert_close(decoded.flatten(), torch.tensor([31.5, 31.5, 95.5, 223.5]))  # each bin's middle
    assert not tokens.allowed(6)[:, 4:].any() and tokens.allowed(6)[:, :4].all()


def test_bits_per_dim_count_the_spread_within_a_level():
    tokens = PixelTokens((1, 2, 2), levels=16)
    uniform = torch.full((3,), 4 * torch.log(torch.tensor(1 / 16)).item())  # every token at 1/16
    assert abs(tokens.likelihood_scores(uniform)["bits_per_dim"] - 8.0) < 1e-6  # uniform over 256 values


def test_the_image_layout_gives_the_image_pieces():
    layout = ImageLayout((1, 8, 8), 10)
    assert layout.kind == "image" and layout.reconstruction().scale_shape == (1, 1, 1)
    assert layout.tokens(16, 32).length == 64 and layout.category_conditions() is None
