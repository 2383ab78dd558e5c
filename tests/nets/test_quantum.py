import copy
import math
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("pennylane")

from genloom.data.image_layout import ImageLayout  # noqa: E402
from genloom.data.table_layout import TableLayout  # noqa: E402
from genloom.errors import GenloomError  # noqa: E402
from genloom.nets import build_backbone  # noqa: E402
from genloom.nets.quantum import ANGLE_GAIN, QuantumPatchGenerator, build_circuit  # noqa: E402

DIGIT = ImageLayout((1, 8, 8), 10)


def _generator(layout=DIGIT, qubits=5, depth=2, **options) -> QuantumPatchGenerator:
    torch.manual_seed(0)
    return build_backbone("quantum decoder", layout, qubits, qubits=qubits, depth=depth, **options)


def _product_state(angles: np.ndarray) -> np.ndarray:
    """Basis-state probabilities of RY(angle_i)|0> on each qubit, wire 0 the most significant bit."""
    state = np.ones(1)
    for angle in angles:
        state = np.kron(state, [math.cos(angle / 2) ** 2, math.sin(angle / 2) ** 2])
    return state


def test_without_trained_rotations_a_patch_is_the_noise_product_state_post_selected():
    """Zero weights leave the noise rotations and CZ gates, which only add phases: each patch's values are the
    product state's probabilities with the ancilla (wire 0) at 0, renormalised and scaled to a maximum of 1."""
    generator = _generator()
    with torch.no_grad():
        generator.angles.zero_()
        generator.scale.fill_(0.5)
        generator.shift.fill_(0.5)  # (2v - 1) x 0.5 + 0.5 = v
    z = torch.randn(3, 5, generator=torch.Generator().manual_seed(1))
    values = generator(z).detach().reshape(3, 4, 16).numpy()
    for row, code in zip(values, z.numpy()):
        kept = _product_state(math.pi / 2 * _normal_cdf(code))[:16]
        expected = kept / kept.max()
        for patch in row:  # every patch sees the same noise
            np.testing.assert_allclose(patch, expected, rtol=1e-5, atol=1e-6)


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    from scipy.stats import norm
    return norm.cdf(x)


def test_patches_cover_a_table_row_and_the_parameters_are_counted():
    row = TableLayout(shape=(20,), spans=[])
    generator = _generator(row, qubits=4, depth=3)
    assert generator.patches == 3  # 8 outputs a patch, 24 >= 20
    assert generator(torch.randn(5, 4)).shape == (5, 20)
    assert generator.parameter_counts() == {"quantum": 3 * 3 * 4, "classical": 2 * 20}


def test_a_condition_shifts_the_noise_angles():
    generator = _generator(cond_dim=3)
    z = torch.randn(2, 5)
    assert not torch.allclose(generator(z, torch.zeros(2, 3)), generator(z, torch.ones(2, 3)))


def test_gradients_through_the_simulator_teach_a_student_circuit_its_teachers_outputs():
    """A student with other rotation angles (and the same read-out) learns a teacher circuit's outputs for a fixed
    batch of noise: only the angles train, so the error can fall only if gradients pass through the circuits."""
    teacher, student = _generator(depth=2), _generator(depth=2)
    with torch.no_grad():
        teacher.angles.copy_(torch.rand(teacher.angles.shape, generator=torch.Generator().manual_seed(2)) * 3
                             / ANGLE_GAIN)
    z = torch.randn(16, 5, generator=torch.Generator().manual_seed(3))
    target = teacher(z).detach()
    optimiser = torch.optim.Adam([student.angles], lr=2e-3)
    errors = []
    for _ in range(60):
        optimiser.zero_grad()
        error = (student(z) - target).square().mean()
        error.backward()
        optimiser.step()
        errors.append(error.item())
    assert errors[-1] < errors[0] / 10


def test_a_copy_builds_its_own_circuit_and_computes_the_same():
    generator = _generator()
    z = torch.randn(4, 5)
    twin = copy.deepcopy(generator)
    assert torch.equal(twin(z), generator(z)) and twin.circuit() is not generator.circuit()


def test_each_patch_of_each_example_is_its_own_circuit_run_alone():
    """Every patch has its own angles: the broadcast run must give example i's patch p what the circuit gives for
    example i's noise and patch p's angles, run by themselves."""
    generator = _generator(depth=3)
    with torch.no_grad():
        generator.angles.copy_(torch.rand(generator.angles.shape, generator=torch.Generator().manual_seed(4)) * 3
                               / ANGLE_GAIN)
        generator.scale.fill_(0.5)
        generator.shift.fill_(0.5)
    z = torch.randn(3, 5, generator=torch.Generator().manual_seed(5))
    values = generator(z).detach().reshape(3, 4, 16)
    noise = (math.pi / 2 * torch.special.ndtr(z)).double()
    for example in range(3):
        for patch in range(4):
            alone = build_circuit(5, 3)(noise[example:example + 1],
                                        (generator.angles[patch:patch + 1] * ANGLE_GAIN).detach().double())
            kept = alone[0, :16]
            torch.testing.assert_close(values[example, patch], (kept / kept.max()).float(), rtol=1e-5, atol=1e-6)


def test_without_pennylane_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pennylane", None)
    with pytest.raises(GenloomError, match=r"needs the quantum extra .* pip install 'genloom\[quantum\]'"):
        _generator()
