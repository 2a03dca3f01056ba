"""Interpolate two latents through the diffusion's noise space, or straight in latent space."""

from __future__ import annotations

import numpy as np
import torch

from densitydiff.diffusion import edm
from densitydiff.errors import InputError
from densitydiff.prior.sample import Prior


def slerp(a: torch.Tensor, b: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation (Shoemake 1985) between rows a, b at weights w (K,) -> (K, D)."""
    cos = torch.clamp((a @ b) / (a.norm() * b.norm()), -1.0, 1.0)
    omega = torch.arccos(cos)
    if float(omega) < 1e-6:
        return (1 - w)[:, None] * a + w[:, None] * b
    return (
        torch.sin((1 - w) * omega)[:, None] * a + torch.sin(w * omega)[:, None] * b
    ) / torch.sin(omega)


def encode(prior: Prior, z: np.ndarray, rtol: float = 1e-5, atol: float = 1e-5) -> torch.Tensor:
    """Latents -> noise at sigma_max: the probability-flow ODE run forward from sigma_min."""
    cfg = prior.config
    return edm.ode_solve(
        prior.denoiser, prior.to_model(z), cfg.sigma_min, cfg.sigma_max, rtol=rtol, atol=atol
    ).x


def decode(prior: Prior, x: torch.Tensor, rtol: float = 1e-5, atol: float = 1e-5) -> np.ndarray:
    """Noise at sigma_max -> latents: the probability-flow ODE run back to sigma_min."""
    cfg = prior.config
    res = edm.ode_solve(prior.denoiser, x, cfg.sigma_max, cfg.sigma_min, rtol=rtol, atol=atol)
    return prior.from_model(res.x)


def interpolate(
    prior: Prior,
    z_a: np.ndarray,
    z_b: np.ndarray,
    steps: int = 10,
    through: str = "noise",
    mode: str = "spherical",
) -> np.ndarray:
    """`steps` latents from z_a to z_b (ends included), (steps, D).

    through="noise": encode both ends with the ODE, interpolate the noises (linear or spherical;
    spherical keeps the norm typical of N(0, sigma_max^2 I)), decode each point.
    through="latent": straight line (1 - w) z_a + w z_b.
    """
    if steps < 2:
        raise InputError(f"--steps must be >= 2, got {steps}")
    if through not in ("noise", "latent") or mode not in ("linear", "spherical"):
        raise InputError("through must be noise|latent and mode linear|spherical")
    z_a = np.asarray(z_a, np.float32).reshape(-1)
    z_b = np.asarray(z_b, np.float32).reshape(-1)
    if z_a.shape != (prior.dim,) or z_b.shape != (prior.dim,):
        raise InputError(f"end points must have {prior.dim} numbers")
    w = torch.linspace(0, 1, steps)
    if through == "latent":
        return ((1 - w)[:, None].numpy() * z_a + w[:, None].numpy() * z_b).astype(np.float32)
    noise = encode(prior, np.stack([z_a, z_b]))
    if mode == "linear":
        path = (1 - w)[:, None] * noise[0] + w[:, None] * noise[1]
    else:
        path = slerp(noise[0], noise[1], w)
    return decode(prior, path)
