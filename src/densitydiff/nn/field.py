"""Pieces of a neural field over 3-D frequency coordinates (cryoDRGN's decoder, Zhong et al. 2021):
positional encodings of a coordinate and the residual MLP that maps them to values.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class PositionalEncoding(nn.Module):
    """sin/cos features of coordinates (..., 3) in cycles per pixel ([-0.5, 0.5]).

    "geom_lowf" (cryoDRGN's geom_lowf): per axis, `dim` frequencies geometric from D/2 down to 1,
    i.e. wavelengths 2 pi / (D/2) to 2 pi in coordinate units; "gaussian" (cryoDRGN 4.3.1's
    default): 3 `dim` random frequency vectors ~ N(0, feat_sigma^2) times D/2 (Tancik et al.
    2020), fixed by `seed`.
    Output (..., 6 dim).
    """

    def __init__(
        self,
        D: int,
        kind: str = "geom_lowf",
        dim: int | None = None,
        feat_sigma: float = 0.5,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.D2 = D // 2
        self.dim = int(dim or self.D2)
        self.kind = kind
        if kind == "geom_lowf":
            i = torch.arange(self.dim, dtype=torch.float32)
            freqs = self.D2 * (1.0 / self.D2) ** (i / max(self.dim - 1, 1))
            self.register_buffer("freqs", freqs)
        elif kind == "gaussian":
            g = torch.Generator().manual_seed(int(seed))
            rand = torch.randn((3 * self.dim, 3), generator=g) * feat_sigma * self.D2
            self.register_buffer("freqs", rand)
        else:
            raise ValueError(f"unknown positional encoding {kind!r}")

    @property
    def out_dim(self) -> int:
        return 6 * self.dim

    def forward(self, coords: Tensor) -> Tensor:
        if self.kind == "gaussian":
            k = coords @ self.freqs.T  # (..., 3 dim)
        else:
            k = (coords[..., None] * self.freqs).flatten(-2)  # (..., 3 dim)
        return torch.cat([torch.sin(k), torch.cos(k)], -1)


class ResidualLinear(nn.Module):
    """x + Linear(x) (cryoDRGN's ResidLinear; the activation follows outside)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.linear = nn.Linear(width, width)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.linear(x)


class ResidualLinearMLP(nn.Module):
    """Linear(in, width), ReLU, `layers` x (ResidualLinear, ReLU), Linear(width, out):
    cryoDRGN's ResidLinearMLP, used as the VAE's encoder and decoder."""

    def __init__(self, in_dim: int, width: int, layers: int, out_dim: int) -> None:
        super().__init__()
        mods: list[nn.Module] = [nn.Linear(in_dim, width), nn.ReLU()]
        for _ in range(layers):
            mods += [ResidualLinear(width), nn.ReLU()]
        mods.append(nn.Linear(width, out_dim))
        self.main = nn.Sequential(*mods)

    def forward(self, x: Tensor) -> Tensor:
        return self.main(x)


class ConvEncoder(nn.Module):
    """Images (B, D, D) -> (B, out_dim): stride-2 3x3 convolutions (32, 64, 128, 128, ...
    channels, ReLU) down to 4 x 4, then Linear(width), ReLU, Linear(out_dim)."""

    def __init__(self, D: int, width: int, out_dim: int) -> None:
        super().__init__()
        mods: list[nn.Module] = []
        channels, size = 1, D
        while size > 4:
            nxt = min(32 * 2 ** len(mods[::2]), 128)
            mods += [nn.Conv2d(channels, nxt, 3, stride=2, padding=1), nn.ReLU()]
            channels, size = nxt, (size + 1) // 2
        self.features = nn.Sequential(*mods)
        self.head = nn.Sequential(
            nn.Linear(channels * size * size, width), nn.ReLU(), nn.Linear(width, out_dim)
        )

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.features(images.reshape(-1, 1, *images.shape[-2:])).flatten(1))


def hermitian_sign(coords: Tensor) -> Tensor:
    """+1 or -1 per coordinate (..., 3): which of the half-spaces q.n > 0 / q.n < 0 it lies in.

    n = (1, sqrt 2, sqrt 3) / sqrt 6 has rationally independent components, so no lattice point
    but the origin lies on the dividing plane; q and -q always get opposite signs.
    """
    n = torch.tensor(
        [1.0, math.sqrt(2.0), math.sqrt(3.0)], dtype=coords.dtype, device=coords.device
    ) / math.sqrt(6.0)
    s = torch.sign(coords @ n)
    return torch.where(s == 0, torch.ones_like(s), s)
