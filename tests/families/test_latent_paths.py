"""Paths between latent codes: both ends exact, slerp on the circle, lerp on the line."""
import pytest
import torch

import genloom as gl
from genloom.families.latent_paths import path_between, seed_code


def test_both_ends_are_the_codes_and_slerp_keeps_the_norm():
    start, end = seed_code(0, 16), seed_code(1, 16)
    end = end / end.norm() * start.norm()  # equal norms: the great circle keeps them all along
    for method in ("slerp", "lerp"):
        path = path_between(start, end, 7, method)
        assert path.shape == (7, 16)
        torch.testing.assert_close(path[0], start)
        torch.testing.assert_close(path[-1], end)
    norms = path_between(start, end, 7, "slerp").norm(dim=1)
    torch.testing.assert_close(norms, torch.full((7,), float(start.norm())), rtol=1e-4, atol=1e-4)
    assert path_between(start, end, 7, "lerp").norm(dim=1)[3] < 0.9 * start.norm()  # the line cuts inside


def test_a_seed_code_is_the_priors_draw():
    assert torch.equal(seed_code(3, 4), torch.randn(4, generator=torch.Generator().manual_seed(3)))


@pytest.mark.parametrize("steps, method, message", [(1, "slerp", "steps must be at least 2"),
                                                    (4, "cubic", "unknown interpolation method 'cubic'")])
def test_bad_paths(steps, method, message):
    with pytest.raises(gl.GenloomError, match=message):
        path_between(seed_code(0, 4), seed_code(1, 4), steps, method)


def test_a_seed_code_of_any_shape_is_what_one_sample_draws_first():
    """sample(1, seed) draws randn(1, *shape) first; torch draws Gaussians 16 at a time, so only n = 1 is promised."""
    for shape in (4, (8,), (1, 8, 8), (3, 4, 4)):
        size = (shape,) if isinstance(shape, int) else shape
        assert torch.equal(seed_code(7, shape), torch.randn(1, *size, generator=torch.Generator().manual_seed(7))[0])
    assert not torch.equal(seed_code(7, 4), torch.randn(5, 4, generator=torch.Generator().manual_seed(7))[0])


def test_codes_of_any_shape_move_as_flat_vectors():
    start, end = seed_code(0, (1, 4, 4)), seed_code(1, (1, 4, 4))
    for method in ("slerp", "lerp"):
        path = path_between(start, end, 5, method)
        assert path.shape == (5, 1, 4, 4)
        torch.testing.assert_close(path[0], start)
        torch.testing.assert_close(path[-1], end)
        torch.testing.assert_close(path.flatten(1), path_between(start.flatten(), end.flatten(), 5, method))
    flat = path_between(start.flatten(), end.flatten(), 5)  # slerp's middle: the normalised sum of the ends' ...
    angle = torch.acos(start.flatten() @ end.flatten() / (start.norm() * end.norm()))
    middle = (start.flatten() + end.flatten()) * torch.sin(angle / 2) / torch.sin(angle)  # ... sin(a/2)/sin(a)
    torch.testing.assert_close(flat[2], middle)
