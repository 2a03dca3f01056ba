"""Draw latents from a trained prior (ODE, Heun, SDE, Langevin) or the N(0, I) reference prior."""

from __future__ import annotations

import time

import numpy as np
import torch

from densitydiff.diffusion import edm
from densitydiff.errors import InputError
from densitydiff.prior.checkpoint import Prior, load_prior

__all__ = ["METHODS", "Prior", "gaussian_langevin", "load_prior", "sample_prior"]

METHODS = ("ode", "heun", "sde", "langevin", "gaussian", "gaussian-langevin")


def sample_prior(
    prior: Prior,
    n: int,
    method: str = "ode",
    *,
    seed: int = 0,
    beta: float = 1.0,
    steps: int = 64,
    rtol: float = 1e-4,
    atol: float = 1e-4,
    langevin_sigma: float = 0.05,
    langevin_steps: int = 500,
    langevin_step_size: float = 0.1,
    gaussian_dt: float = 0.01,
) -> tuple[np.ndarray, dict]:
    """n latents (file units) and {"method", "nfe", "seconds"}.

    ode: dopri5 on the probability-flow ODE from sigma_max to sigma_min (rtol/atol);
    heun: EDM Algorithm 1 with `steps` rho=7 levels; sde: eq. 6 with Langevin strength `beta`
    over `steps` levels; langevin: chains at sigma=`langevin_sigma` started at training latents;
    gaussian: N(0, I); gaussian-langevin: z <- z - z dt/2 + sqrt(dt) N(0, I) from training latents.
    """
    if method not in METHODS:
        raise InputError(f"unknown sampling method {method!r}; choose from {', '.join(METHODS)}")
    if n < 1:
        raise InputError(f"number of samples must be >= 1, got {n}")
    if beta < 0 or steps < 1 or rtol <= 0 or atol <= 0:
        raise InputError("need beta >= 0, steps >= 1, rtol > 0, atol > 0")
    g = torch.Generator().manual_seed(seed)
    cfg, d = prior.config, prior.dim
    start = time.perf_counter()
    nfe = 0
    if method in ("ode", "heun", "sde"):
        x = torch.randn(n, d, generator=g) * cfg.sigma_max
        if method == "ode":
            res = edm.ode_solve(
                prior.denoiser, x, cfg.sigma_max, cfg.sigma_min, rtol=rtol, atol=atol
            )
        else:
            sigmas = edm.karras_sigmas(steps, cfg.sigma_min, cfg.sigma_max)
            if method == "heun":
                res = edm.heun_sample(prior.denoiser, x, sigmas)
            else:
                res = edm.sde_sample(prior.denoiser, x, sigmas, beta=beta, generator=g)
        z, nfe = prior.from_model(res.x), res.nfe
    elif method == "langevin":
        idx = torch.randint(len(prior.latents), (n,), generator=g).numpy()
        res = edm.langevin(
            prior.denoiser,
            prior.to_model(prior.latents[idx]),
            langevin_sigma,
            n_steps=langevin_steps,
            step_size=langevin_step_size,
            generator=g,
        )
        z, nfe = prior.from_model(res.x), res.nfe
    elif method == "gaussian":
        z = torch.randn(n, d, generator=g).numpy()
    else:
        idx = torch.randint(len(prior.latents), (n,), generator=g).numpy()
        z = gaussian_langevin(
            torch.from_numpy(prior.latents[idx]), langevin_steps, gaussian_dt, generator=g
        ).numpy()
    info = {"method": method, "nfe": int(nfe), "seconds": time.perf_counter() - start}
    return z.astype(np.float32), info


def gaussian_langevin(z: torch.Tensor, n_steps: int, dt: float, generator=None) -> torch.Tensor:
    """Langevin chain of the standard-Gaussian prior: z <- z - z dt / 2 + sqrt(dt) N(0, I)."""
    for _ in range(n_steps):
        z = z - 0.5 * dt * z + dt**0.5 * torch.randn(z.shape, generator=generator)
    return z
