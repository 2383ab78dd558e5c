import pytest
import torch
import torch.nn.functional as F

from genloom.data.image_layout import ImageLayout
from genloom.nets.style import ModulatedConv, StyleGenerator


def _fused(conv: ModulatedConv, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """StyleGAN2's fused form: one weight per example, scaled by its style and demodulated, in a grouped conv."""
    n, c_in, h, width = x.shape
    weight = conv.weight[None] * conv.style(w)[:, None, :, None, None]  # (N, out, in, k, k)
    if conv.demodulate:
        weight = weight * torch.rsqrt(weight.square().sum((2, 3, 4), keepdim=True) + 1e-8)
    out = F.conv2d(x.reshape(1, n * c_in, h, width), weight.reshape(-1, c_in, *weight.shape[3:]),
                   padding=conv.padding, groups=n)
    return out.reshape(n, -1, h, width) + conv.bias[None, :, None, None]


@pytest.mark.parametrize("demodulate", [True, False])
def test_modulated_conv_equals_the_fused_form(demodulate):
    torch.manual_seed(0)
    conv = ModulatedConv(6, 5, 7, kernel=3, demodulate=demodulate)
    torch.nn.init.normal_(conv.style.weight)
    x, w = torch.randn(3, 6, 9, 9), torch.randn(3, 7)
    torch.testing.assert_close(conv(x, w), _fused(conv, x, w), atol=1e-4, rtol=1e-4)


def test_demodulation_undoes_a_style_of_any_scale():
    torch.manual_seed(0)
    conv = ModulatedConv(6, 5, 7)
    x, w = torch.randn(2, 6, 8, 8), torch.randn(2, 7)
    plain = conv(x, w)
    with torch.no_grad():
        conv.style.weight.mul_(10)
        conv.style.bias.mul_(10)
    torch.testing.assert_close(conv(x, w), plain, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("shape, blocks", [((1, 28, 28), 3), ((3, 32, 32), 4), ((1, 8, 8), 2)])
def test_the_generator_grows_a_constant_to_the_image_size(shape, blocks):
    net = StyleGenerator(ImageLayout(shape), latent_dim=8, width=4, mapping_layers=2).eval()
    assert len(net.blocks) == blocks and net.constant.shape[-1] == shape[-1] >> (blocks - 1)
    assert net(torch.randn(2, 8)).shape == (2, *shape)


def test_an_untrained_generator_gives_each_code_its_own_style():
    """The mapping keeps w at z's scale and the affine layers turn it into styles that vary by about 1 around 1;
    with torch's default inits w shrank to ~0.03 and every code made the same image."""
    torch.manual_seed(0)
    net = StyleGenerator(ImageLayout((1, 28, 28)), latent_dim=64, width=8).eval()
    w = net.styles(torch.randn(256, 64))
    assert 0.5 < w.std(0).mean().item() < 2
    style = net.blocks[0]["convs"][0].conv.style(w)
    assert style.mean().item() == pytest.approx(1.0, abs=0.2) and 0.5 < style.std(0).mean().item() < 2
