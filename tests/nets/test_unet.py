import pytest
import torch

from genloom.errors import GenloomError
from genloom.data.image_layout import ImageLayout
from genloom.data.signal_layout import SignalLayout
from genloom.nets import build_backbone
from genloom.nets.unet import Attention, UNet, timestep_embedding


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 16, 16), (3, 12, 20)])
def test_output_has_the_input_shape_and_starts_at_zero(shape):
    torch.manual_seed(0)
    net = build_backbone("denoiser", ImageLayout(shape, 3), width=8, num_classes=3)
    x = torch.randn(2, *shape)
    out = net(x, torch.tensor([0, 999]), torch.tensor([1, 3]))  # 3 = "no class"
    assert isinstance(net, UNet) and out.shape == x.shape
    assert torch.count_nonzero(out) == 0  # zero-initialised last layer: the first loss is exactly E[eps^2]


def test_time_and_class_change_the_output():
    torch.manual_seed(0)
    net = UNet(ImageLayout((1, 8, 8), 10), width=8, num_classes=10)
    for module in net.modules():  # undo the zero initialisation that makes every block start as the identity
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.normal_(module.weight, std=0.1)
    x = torch.randn(1, 1, 8, 8).repeat(3, 1, 1, 1)
    out = net(x, torch.tensor([10, 900, 10]), torch.tensor([2, 2, 7]))
    assert not torch.allclose(out[0], out[1]) and not torch.allclose(out[0], out[2])


def test_timestep_embedding_equals_diffusers():
    from diffusers.models import embeddings
    t = torch.tensor([0, 1, 17, 500, 999])
    theirs = embeddings.get_timestep_embedding(t, 32, flip_sin_to_cos=True, downscale_freq_shift=0)
    torch.testing.assert_close(timestep_embedding(t, 32), theirs, atol=1e-6, rtol=1e-6)


def test_sizes_the_unet_cannot_halve_are_refused():
    with pytest.raises(GenloomError, match=r"cannot halve 7x7 images 1 time\(s\) \(at most 0\)"):
        UNet(ImageLayout((1, 7, 7)), levels=1)
    with pytest.raises(GenloomError, match=r"cannot halve 8x8 images 3 time\(s\) \(at most 2\)"):
        UNet(ImageLayout((1, 8, 8)), levels=3)


def test_an_odd_size_gets_a_unet_that_does_not_halve():
    """An autoencoder's 7x7 latents (MNIST compressed 4x per side) cannot halve: the U-Net keeps their size."""
    net = UNet(ImageLayout((4, 7, 7)), width=16)
    x = torch.randn(2, 4, 7, 7)
    assert net(x, torch.tensor([3, 500])).shape == x.shape


def test_a_waveform_gets_the_same_unet_in_one_dimension_with_five_halvings():
    torch.manual_seed(0)
    net = build_backbone("denoiser", SignalLayout((1, 640), 10), width=8, num_classes=10)
    assert not any(isinstance(module, torch.nn.Conv2d) for module in net.modules())
    assert sum(isinstance(level["resize"], torch.nn.Conv1d) for level in net.down) == 5  # 640 down to 20
    x = torch.randn(2, 1, 640)
    for module in net.modules():  # past the zero initialisation: time and class reach the output
        if isinstance(module, torch.nn.Conv1d):
            torch.nn.init.normal_(module.weight, std=0.1)
    out = net(x.repeat(3, 1, 1)[:3], torch.tensor([10, 900, 10]), torch.tensor([2, 2, 7]))
    assert out.shape == (3, 1, 640) and not torch.allclose(out[0], out[1]) and not torch.allclose(out[0], out[2])


def test_a_signal_length_the_unet_cannot_halve_says_which_to_choose():
    with pytest.raises(GenloomError, match=r"cannot halve signals of 20 3 time\(s\) \(at most 2\): choose depth 2 "
                                           "or fewer, or choose a --length divisible by a power of two"):
        UNet(SignalLayout((1, 20)), levels=3)


@pytest.mark.parametrize("sides", [(5, 7), (9,)])
def test_attention_equals_torch_multi_head_attention_over_the_positions(sides):
    """The block's 1x1 convolutions, applied as linear maps, are MultiheadAttention's in- and out-projections."""
    torch.manual_seed(0)
    block = Attention(16, heads=4, dims=len(sides)).eval()
    torch.nn.init.normal_(block.proj.weight, std=0.2)
    torch.nn.init.normal_(block.proj.bias, std=0.2)
    oracle = torch.nn.MultiheadAttention(16, 4, batch_first=True).eval()
    with torch.no_grad():
        oracle.in_proj_weight.copy_(block.qkv.weight.flatten(1))
        oracle.in_proj_bias.copy_(block.qkv.bias)
        oracle.out_proj.weight.copy_(block.proj.weight.flatten(1))
        oracle.out_proj.bias.copy_(block.proj.bias)
        x = torch.randn(3, 16, *sides)
        positions = block.norm(x).flatten(2).transpose(1, 2)
        expected = x + oracle(positions, positions, positions, need_weights=False)[0].transpose(1, 2).reshape(x.shape)
        assert torch.allclose(block(x), expected, atol=1e-5)
