"""Embeddings of a scalar noise level (diffusion time or EDM's c_noise) as feature vectors."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def sinusoidal_embedding(t: Tensor, dim: int) -> Tensor:
    """Transformer-style sin/cos features of `t` (shape (B,) or scalar) -> (B, dim).

    Frequencies 1 / 10000^(k / (dim/2)), k = 0 .. dim/2 - 1 (Vaswani et al. 2017, sec. 3.5;
    used as the timestep embedding in DDPM). Odd `dim` gets one zero column at the end.
    """
    if dim < 1:
        raise ValueError(f"embedding dim must be >= 1, got {dim}")
    t = torch.as_tensor(t).reshape(-1)
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    half = dim // 2
    if half == 0:
        return torch.zeros(t.shape[0], dim, dtype=t.dtype, device=t.device)
    k = torch.arange(half, dtype=t.dtype, device=t.device)
    freqs = torch.exp(-math.log(10000.0) * k / half)
    angles = t[:, None] * freqs[None, :]
    emb = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
    if dim % 2:
        emb = torch.nn.functional.pad(emb, (0, 1))
    return emb


class FourierEmbedding(torch.nn.Module):
    """Random Fourier features sin/cos(2 pi f t), f ~ N(0, scale^2) fixed (Tancik et al. 2020)."""

    def __init__(self, dim: int, scale: float = 16.0, seed: int = 0) -> None:
        super().__init__()
        if dim % 2:
            raise ValueError(f"Fourier embedding dim must be even, got {dim}")
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("freqs", torch.randn(dim // 2, generator=g) * scale)

    def forward(self, t: Tensor) -> Tensor:
        angles = 2 * math.pi * t.reshape(-1, 1).to(self.freqs.dtype) * self.freqs[None, :]
        return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)
