"""The FID InceptionV3: the TensorFlow graph of 2015-12-05 (pool features of 2048 numbers, 1008 class logits)
that FID and the Inception Score were defined with, as pytorch-fid and torch-fidelity port it.

What it follows: the layout, module names and block variants (the FID-specific InceptionA/C/E with their pooling
differences) of pytorch-fid's `pytorch_fid/inception.py` (Maximilian Seitzer, Apache License 2.0), which in turn
follows torchvision's InceptionV3 (BSD 3-Clause) and the TensorFlow graph; the names must match so that the
published weights file loads. The resize follows torch-fidelity's TensorFlow-1 bilinear interpolation (Apache
License 2.0). Equality with torch-fidelity's extractor is tested (tests/metrics/test_inception.py).

Written here in plain torch because both of those build it from torchvision's blocks or import torchvision,
which genloom does not depend on (installing it would also replace a CPU build of torch). Its weights are read
from a local file only, never downloaded: pytorch-fid's pt_inception-2015-12-05-6726825d.pth (the same state
dict as torch-fidelity's weights-inception-2015-12-05-6726825d.pth), or that state dict as .safetensors.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from ..errors import GenloomError

WEIGHTS_ENV = "GENLOOM_INCEPTION_WEIGHTS"
WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{WEIGHTS_FILE}"
SIZE, FEATURES, CLASSES = 299, 2048, 1008


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm, ReLU: the unit every block is made of."""

    def __init__(self, cin: int, cout: int, kernel, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _average_pool(x: torch.Tensor) -> torch.Tensor:
    # TensorFlow's pool leaves the zero padding out of the average; torch's default counts it
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    def __init__(self, cin: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, 1)
        self.branch5x5_1 = BasicConv2d(cin, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1x1(x), self.branch5x5_2(self.branch5x5_1(x)),
                          self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                          self.branch_pool(_average_pool(x))], 1)


class InceptionB(nn.Module):
    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch3x3(x), self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                          F.max_pool2d(x, 3, stride=2)], 1)


class InceptionC(nn.Module):
    def __init__(self, cin: int, c7: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 192, 1)
        self.branch7x7_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        double = x
        for i in range(1, 6):
            double = getattr(self, f"branch7x7dbl_{i}")(double)
        return torch.cat([self.branch1x1(x), self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x))), double,
                          self.branch_pool(_average_pool(x))], 1)


class InceptionD(nn.Module):
    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seven = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), seven, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionE(nn.Module):
    def __init__(self, cin: int, max_pool: bool):
        super().__init__()
        # the TF graph's last block pools by maximum where the paper and the block before it average
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(cin, 320, 1)
        self.branch3x3_1 = BasicConv2d(cin, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        single = self.branch3x3_1(x)
        double = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _average_pool(x)
        return torch.cat([self.branch1x1(x), self.branch3x3_2a(single), self.branch3x3_2b(single),
                          self.branch3x3dbl_3a(double), self.branch3x3dbl_3b(double), self.branch_pool(pooled)], 1)


def resize_like_tensorflow1(x: torch.Tensor, size: int = SIZE) -> torch.Tensor:
    """Bilinear resize as TF 1.x's resize_bilinear did in the original FID code: the source of output pixel i
    is i * in/out, without torch's half-pixel offset; torch-fidelity's arithmetic, operation for operation."""
    def lerp(x: torch.Tensor, dim: int) -> torch.Tensor:
        length = x.shape[dim]
        position = torch.arange(size, dtype=x.dtype, device=x.device) * torch.tensor(length / size, dtype=x.dtype)
        low = position.long()
        high = (low + 1).clamp_max(length - 1)
        shape = [size if d == dim else 1 for d in range(x.dim())]
        lo, hi = x.index_select(dim, low), x.index_select(dim, high)
        return lo + (hi - lo) * (position - low.to(x.dtype)).view(shape)

    return lerp(lerp(x, 3), 2)


class InceptionV3(nn.Module):
    """Images in [-1, 1], any size, 1 or 3 channels -> (pool features (N, 2048), logits (N, 1008)).

    The logits leave out the classifier's bias, as the original Inception Score code did (torch-fidelity's
    'logits_unbiased', its default for the score)."""

    batch_size = 32   # 299x299 activations: a large batch would need gigabytes

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, c7=128)
        self.Mixed_6c = InceptionC(768, c7=160)
        self.Mixed_6d = InceptionC(768, c7=160)
        self.Mixed_6e = InceptionC(768, c7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, max_pool=False)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.fc = nn.Linear(FEATURES, CLASSES)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            raise GenloomError(f"InceptionV3 takes images of shape (N, 1 or 3, H, W); got {tuple(x.shape)}")
        # back to the 0..255 scale of 8-bit pixels: resized and scaled as torch-fidelity does with them
        pixels = (x.float().expand(-1, 3, -1, -1) + 1) * 127.5
        x = (resize_like_tensorflow1(pixels) - 128) / 128
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(F.max_pool2d(x, 3, stride=2)))
        x = F.max_pool2d(x, 3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        features = x.mean((2, 3))
        return features, features @ self.fc.weight.T


def inception_weights_path(path: str | Path | None = None) -> Path | None:
    """The weights file asked for: `path`, else $GENLOOM_INCEPTION_WEIGHTS; None when neither is set."""
    path = path or os.environ.get(WEIGHTS_ENV) or None
    return Path(path).expanduser().resolve() if path else None


def load_inception(path: str | Path) -> InceptionV3:
    """InceptionV3 with the pt_inception-2015-12-05 weights in `path` (.pth or .safetensors), in eval mode."""
    path = Path(path)
    fix = (f"download {WEIGHTS_URL} and point {WEIGHTS_ENV} (or inception_weights) at it, or unset it to score "
           "with a feature net trained on the run's images")
    if not path.is_file():
        raise GenloomError(f"no InceptionV3 weights at {path}; {fix}")
    net = InceptionV3()
    try:
        state = (load_file(str(path)) if path.suffix == ".safetensors"
                 else torch.load(path, map_location="cpu", weights_only=True))
        net.load_state_dict(state)
    except Exception as error:  # a damaged file can make the unpickler or the loader raise almost anything
        reason = " ".join(str(error).split())[:200]
        raise GenloomError(f"{path} is not the {WEIGHTS_FILE} state dict ({reason}); {fix}") from None
    return net.eval().requires_grad_(False)
