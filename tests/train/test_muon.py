"""Our Muon against torch.optim.Muon, the installed oracle: the same update when both run the Newton-Schulz
iteration in bfloat16, and nearly the same in float32 (the CPU's default here)."""
import pytest
import torch

from genloom.train.muon import Muon, orthogonalised


def _steps(optimizer_class, steps=3, shapes=((24, 8), (8, 8), (24, 8), (8, 32)), apart=False, **options):
    """`steps` steps of random gradients on weights of `shapes`; `apart`: each weight in an optimizer of its own."""
    torch.manual_seed(0)
    weights = [torch.nn.Parameter(torch.randn(*shape) * 0.1) for shape in shapes]
    optimizers = [optimizer_class(group, lr=0.02, weight_decay=0.01, **options)
                  for group in ([[weight] for weight in weights] if apart else [weights])]
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        for weight in weights:
            weight.grad = torch.randn(weight.shape, generator=generator)
        for optimizer in optimizers:
            optimizer.step()
    return [weight.detach().clone() for weight in weights], optimizers[0]


def test_equal_to_torch_in_bfloat16_and_close_in_float32():
    """Two of the weights share a shape, so ours steps them in one batched iteration where torch steps each."""
    theirs, _ = _steps(torch.optim.Muon, adjust_lr_fn="original")
    ours, _ = _steps(Muon, dtype=torch.bfloat16)
    for a, b in zip(ours, theirs):
        assert torch.equal(a, b)
    ours_fp32, _ = _steps(Muon)  # float32 on the CPU
    start, _ = _steps(Muon, steps=0)
    for a, b, s in zip(ours_fp32, theirs, start):
        assert not torch.equal(a, b)
        assert (a - b).abs().max() < 5e-2 * (b - s).abs().max()  # within bfloat16's precision of the update


def test_the_update_is_nearly_orthogonal_and_the_state_is_torchs():
    update = orthogonalised(torch.randn(40, 16), torch.float32)
    singular = torch.linalg.svdvals(update)
    assert update.shape == (40, 16) and singular.min() > 0.5 and singular.max() < 1.5  # Keller Jordan's band
    _, ours = _steps(Muon)
    _, theirs = _steps(torch.optim.Muon, adjust_lr_fn="original")
    assert set(ours.state_dict()["state"][0]) == set(theirs.state_dict()["state"][0]) == {"momentum_buffer"}


def test_only_matrices():
    with pytest.raises(ValueError, match="weight matrices only"):
        Muon([torch.nn.Parameter(torch.zeros(3))])


def test_matrices_of_one_shape_step_together_as_they_would_alone():
    """A stack of same-shaped matrices is orthogonalised in batched products: each comes out as it does alone
    (to float rounding), whether wide, square or tall."""
    torch.manual_seed(0)
    for shape in ((3, 8, 24), (2, 16, 16), (4, 40, 16)):
        stack = torch.randn(*shape)
        alone = torch.stack([orthogonalised(matrix, torch.float32) for matrix in stack])
        torch.testing.assert_close(orthogonalised(stack, torch.float32), alone, rtol=1e-5, atol=1e-5)
    shapes = ((24, 8), (8, 8), (24, 8), (24, 8))
    together, _ = _steps(Muon, shapes=shapes)
    apart, _ = _steps(Muon, shapes=shapes, apart=True)
    for a, b in zip(together, apart):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
