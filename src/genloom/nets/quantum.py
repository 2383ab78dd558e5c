"""A quantum generator: the patch method of Huang et al. (2021), as PennyLane's quantum GAN tutorial builds it.

Each of a few small variational circuits (patches) turns the same noise into a probability distribution over
its basis states; post-selected on an ancilla qubit, and scaled so that its largest value is 1, it gives
2^(qubits - ancillas) outputs, and the patches side by side give the example (the pixels of a small image, the
encoded values of a table row). PennyLane simulates the circuits and passes gradients back through torch, so
the GAN family trains this generator against its classical critic like any other.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from ..extras import require
from ..layout import Layout
from . import register_backbone

ANCILLAS = 1
# Rotation angles want steps of some hundredths of a radian, where the GAN's Adam moves a weight by some 2e-4: the
# angles are stored divided by this gain (the equalised learning rate of ProGAN, for angles).
ANGLE_GAIN = 50.0
# PennyLane's state-vector simulator in torch: gradients by backpropagation, the batch broadcast through each gate.
# lightning.qubit (C++) is not offered: its adjoint gradients refuse probabilities of a broadcast batch, and the
# parameter-shift rule would run the circuit twice per angle.
SIMULATOR = "default.qubit"


@register_backbone(("image", "table"), "quantum decoder")
class QuantumPatchGenerator(nn.Module):
    """(N, latent) noise and an optional condition vector -> (N, *layout.shape) pre-activations. Noise enters as
    rotation angles in [0, pi/2) (pi/2 Phi(z) of a standard normal z, one per qubit); a condition shifts them
    through a linear map; each patch applies `depth` layers of RY rotations and a chain of CZ gates; a
    per-output scale and shift (the classical read-out) maps the patch's values to the layout's range."""

    export_refusal = ("its circuits run in PennyLane's simulator, which an ONNX graph cannot hold: sample with "
                      "genloom (genloom sample RUN)")

    def __init__(self, layout: Layout, in_features: int, width: int = 32, cond_dim: int = 0, qubits: int = 5,
                 depth: int = 6):
        """`in_features` noise values, one per qubit (GANConfig sees to it); `width` is the critic's alone."""
        super().__init__()
        self.shape, self.qubits, self.depth = tuple(layout.shape), qubits, depth
        self.outputs = math.prod(self.shape)
        self.per_patch = 2 ** (qubits - ANCILLAS)
        self.patches = math.ceil(self.outputs / self.per_patch)
        # uniform in [0, 1) radians to start, as the tutorial's
        self.angles = nn.Parameter(torch.rand(self.patches, depth, qubits) / ANGLE_GAIN)
        self.condition = nn.Linear(cond_dim, qubits) if cond_dim else None
        # [0, 1] to [-1, 1] times 2, through tanh: about [-0.96, 0.96] to start
        self.scale = nn.Parameter(torch.full((self.outputs,), 2.0))
        self.shift = nn.Parameter(torch.zeros(self.outputs))
        self._circuit = build_circuit(qubits, depth)  # now, so that a missing PennyLane fails before training

    def parameter_counts(self) -> dict[str, int]:
        """Trainable parameters in the circuits and in the classical parts around them."""
        quantum = self.angles.numel()
        return {"quantum": quantum, "classical": sum(p.numel() for p in self.parameters()) - quantum}

    def circuit(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """The patch circuit, built again in a copy."""
        if self._circuit is None:
            self._circuit = build_circuit(self.qubits, self.depth)
        return self._circuit

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        angles = math.pi / 2 * torch.special.ndtr(z)
        if self.condition is not None:
            angles = angles + self.condition(cond)
        n = len(z)
        # every patch of every example in one broadcast run: (patches x N) noise angles and weights
        noise = angles.repeat(self.patches, 1)
        weights = (self.angles * ANGLE_GAIN).repeat_interleave(n, dim=0)
        probabilities = self.circuit()(noise.double(), weights.double()).to(z.dtype)
        kept = probabilities[:, :self.per_patch]  # the ancilla (first wire) measured 0
        values = kept / kept.amax(1, keepdim=True).clamp_min(1e-12)  # (renormalising first would change nothing)
        values = values.reshape(self.patches, n, self.per_patch).transpose(0, 1).reshape(n, -1)[:, :self.outputs]
        return ((2 * values - 1) * self.scale + self.shift).reshape(n, *self.shape)

    def __getstate__(self):  # the circuit stays out of copies (the EMA's deep copy); a copy builds its own
        state = self.__dict__.copy()
        state["_circuit"] = None
        return state


def build_circuit(qubits: int, depth: int) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The patch circuit as a torch-interface QNode: (B, qubits) noise angles, (B, depth, qubits) weights ->
    (B, 2^qubits) basis-state probabilities, B broadcast through every gate."""
    qml = require("pennylane", "quantum", "the quantum generator")
    device = qml.device(SIMULATOR, wires=qubits)

    @qml.qnode(device, interface="torch", diff_method="backprop")
    def circuit(noise: torch.Tensor, weights: torch.Tensor):
        for wire in range(qubits):
            qml.RY(noise[:, wire], wires=wire)
        for layer in range(depth):
            for wire in range(qubits):
                qml.RY(weights[:, layer, wire], wires=wire)
            for wire in range(qubits - 1):
                qml.CZ(wires=[wire, wire + 1])
        return qml.probs(wires=range(qubits))

    return circuit
