"""Residual MLP F(x, c_noise) for diffusion on vectors (the latent prior's network)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from densitydiff.nn.embeddings import sinusoidal_embedding


class ResidualBlock(nn.Module):
    """h + Linear(SiLU(LayerNorm(h) + W e)): one hidden layer conditioned on the noise embedding."""

    def __init__(self, width: int, emb_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.emb = nn.Linear(emb_dim, width)
        self.linear = nn.Linear(width, width)

    def forward(self, h: Tensor, e: Tensor) -> Tensor:
        return h + self.linear(nn.functional.silu(self.norm(h) + self.emb(e)))


class ResidualMLP(nn.Module):
    """`depth` residual hidden layers of `width` with SiLU and a sinusoidal noise embedding.

    Input (B, dim) and noise level (B,), output (B, dim). The output layer starts at zero so an
    untrained EDM denoiser is D = c_skip x (the optimum for sigma -> 0 and sigma -> inf).
    """

    def __init__(self, dim: int, width: int = 128, depth: int = 16, emb_dim: int = 64) -> None:
        super().__init__()
        self.dim, self.width, self.depth, self.emb_dim = dim, width, depth, emb_dim
        self.embed = nn.Sequential(
            nn.Linear(emb_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim), nn.SiLU()
        )
        self.input = nn.Linear(dim, width)
        self.blocks = nn.ModuleList(ResidualBlock(width, emb_dim) for _ in range(depth))
        self.out_norm = nn.LayerNorm(width)
        self.output = nn.Linear(width, dim)
        nn.init.zeros_(self.output.weight)
        nn.init.zeros_(self.output.bias)

    def forward(self, x: Tensor, noise: Tensor) -> Tensor:
        noise = torch.as_tensor(noise, dtype=x.dtype, device=x.device).reshape(-1)
        if noise.numel() == 1:
            noise = noise.expand(x.shape[0])
        # c_noise = ln(sigma)/4 lies in about [-2, 1.5]; scale it up so the sinusoids resolve it
        e = self.embed(sinusoidal_embedding(noise * 250.0, self.emb_dim))
        h = self.input(x)
        for block in self.blocks:
            h = block(h, e)
        return self.output(nn.functional.silu(self.out_norm(h)))
