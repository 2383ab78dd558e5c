"""Residual MLPs for rows of a table (encoded by the tabular codec into one float vector per row): encoder,
decoder and diffusion denoiser."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..layout import Layout
from . import register_backbone
from .unet import timestep_embedding


class ResidualBlock(nn.Module):
    """x + Linear(SiLU(Norm(x))): the pre-norm block of TabDDPM's and RTDL's residual MLPs."""

    def __init__(self, width: int, norm: bool = True, dropout: float = 0.0):
        super().__init__()
        self.layers = nn.Sequential(nn.LayerNorm(width) if norm else nn.Identity(), nn.SiLU(), nn.Dropout(dropout),
                                    nn.Linear(width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers(x)


class ResidualMLP(nn.Module):
    """(N, in_features) and an optional condition vector -> (N, out_features), through `depth` blocks of
    8 x `width` units (so the conv nets' `width` option of 32 gives 256 units)."""

    def __init__(self, in_features: int, out_features: int, width: int = 32, cond_dim: int = 0, depth: int = 2,
                 norm: bool = True, dropout: float = 0.0):
        super().__init__()
        hidden = 8 * width
        self.in_features = in_features
        self.net = nn.Sequential(nn.Linear(in_features + cond_dim, hidden),
                                 *[ResidualBlock(hidden, norm, dropout) for _ in range(depth)],
                                 nn.SiLU(), nn.Linear(hidden, out_features))

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x if cond is None else torch.cat([x, cond], dim=1))

    def condition_share(self, cond: torch.Tensor) -> torch.Tensor:
        """The first layer's output for the condition alone (no bias). It adds to the rows' own share, so a
        condition many rows have in common is projected once and gathered (forward_with_share)."""
        return F.linear(cond, self.net[0].weight[:, self.in_features:])

    def forward_with_share(self, x: torch.Tensor, share: torch.Tensor) -> torch.Tensor:
        """forward(x, cond) given condition_share(cond) for each row."""
        first = self.net[0]
        return self.net[1:](F.linear(x, first.weight[:, :self.in_features], first.bias) + share)


@register_backbone(("table",), "encoder")
class TableEncoder(ResidualMLP):
    """Rows -> (N, out_features)."""

    def __init__(self, layout: Layout, out_features: int, width: int = 32, cond_dim: int = 0, norm: bool = True):
        super().__init__(layout.shape[0], out_features, width, cond_dim, norm=norm)


@register_backbone(("table",), "decoder")
class TableDecoder(ResidualMLP):
    """(N, in_features) -> rows in the codec's layout (unbounded; the family's reconstruction shapes them)."""

    def __init__(self, layout: Layout, in_features: int, width: int = 32, cond_dim: int = 0):
        super().__init__(in_features, layout.shape[0], width, cond_dim)


@register_backbone(("table",), "denoiser")
class TableDenoiser(nn.Module):
    """Noisy rows and their noise level -> the network's answer for every value (TabDDPM's MLP denoiser): the
    residual MLP conditioned on a sinusoidal time embedding (plus a class embedding, the last id meaning "no
    class", as the U-Net; or, where the layout has condition columns, a projection of their encoded values).
    `levels` and `attention` shape the image U-Net only."""

    def __init__(self, layout: Layout, width: int = 32, res_blocks: int = 1, levels: int | None = None,
                 attention: bool = True, dropout: float = 0.0, num_classes: int = 0):
        super().__init__()
        self.embedding_dim = 4 * width
        self.time = nn.Sequential(nn.Linear(self.embedding_dim, self.embedding_dim), nn.SiLU(),
                                  nn.Linear(self.embedding_dim, self.embedding_dim))
        self.label = nn.Embedding(num_classes + 1, self.embedding_dim) if num_classes else None
        self.condition = (nn.Sequential(nn.Linear(layout.condition_width, self.embedding_dim), nn.SiLU(),
                                        nn.Linear(self.embedding_dim, self.embedding_dim))
                          if layout.condition_width else None)
        self.net = ResidualMLP(layout.shape[0], layout.shape[0], width, cond_dim=self.embedding_dim,
                               depth=res_blocks + 2, dropout=dropout)

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """`labels`: class ids, or the rows' encoded conditions where the layout has condition columns."""
        if self.training or x.device.type != "cpu":
            return self.net(x, self.embedding(self.time(timestep_embedding(t, self.embedding_dim)), labels, x.dtype))
        return self.shared_forward(x, t, labels)

    def embedding(self, time: torch.Tensor, labels: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor:
        """Each row's time embedding plus its class's embedding or its conditions' projection."""
        if self.label is not None and labels is not None:
            time = time + self.label(labels)
        if self.condition is not None:
            time = time + self.condition(labels.to(dtype))
        return time

    def shared_forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """forward on a CPU out of training. A sampling step gives every row the same t, and a class's rows the
        same label: the time MLP and the class embeddings' share of the first layer run once per distinct step
        and per class, and are gathered per row (the conditions' projection stays per row). The embeddings add
        before the first (linear) layer, so their shares add after it. Training takes forward's per-row path,
        whose layers Opacus' hooks see (differential privacy), and a GPU too, where torch.unique waits for the
        device and the per-row work is not what costs."""
        steps, step_of_row = torch.unique(t, return_inverse=True)
        share = self.net.condition_share(self.time(timestep_embedding(steps, self.embedding_dim)))[step_of_row]
        if self.label is not None and labels is not None:
            share = share + self.net.condition_share(self.label.weight)[labels]
        if self.condition is not None:
            share = share + self.net.condition_share(self.condition(labels.to(x.dtype)))
        return self.net.forward_with_share(x, share)
