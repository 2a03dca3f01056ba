"""Draw latents from a trained prior (ODE, Heun, SDE, Langevin) or the N(0, I) reference prior."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from densitydiff.diffusion import edm
from densitydiff.errors import InputError
from densitydiff.prior.latents import LatentStats

METHODS = ("ode", "heun", "sde", "langevin", "gaussian", "gaussian-langevin")


@dataclass
class Prior:
    """A trained prior: EDM `denoiser` on standardised latents, `stats`, training `latents`."""

    denoiser: edm.EDMDenoiser
    stats: LatentStats
    config: dict
    latents: np.ndarray

    @property
    def dim(self) -> int:
        return int(self.latents.shape[1])

    def to_model(self, z: np.ndarray) -> torch.Tensor:
        """Latents (file units) -> standardised tensor the denoiser works on."""
        return torch.from_numpy(np.asarray(self.stats.standardise(z), dtype=np.float32))

    def from_model(self, x: torch.Tensor) -> np.ndarray:
        """Standardised tensor -> latents in file units (float32)."""
        return self.stats.unstandardise(x.detach().cpu().numpy()).astype(np.float32)


def load_prior(path: str | os.PathLike) -> Prior:
    """Load RUN/prior.pt (or the file itself) with torch.load(weights_only=True)."""
    from densitydiff.prior.module import build_denoiser
    from densitydiff.prior.train import FORMAT

    path = Path(path)
    if path.is_dir():
        path = path / "prior.pt"
    if not path.is_file():
        raise InputError(f"no trained prior at {path} (run `densitydiff prior train` first)")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure means a bad file
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(f"{path}: not a readable prior checkpoint ({msg})") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise InputError(f"{path}: not a densitydiff prior checkpoint")
    try:
        denoiser = build_denoiser(int(blob["dim"]), blob["config"])
        denoiser.load_state_dict(blob["state_dict"])
        stats = LatentStats(blob["mean"].numpy(), blob["std"].numpy())
        latents = blob["latents"].numpy()
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as err:
        what = f"missing {err}" if isinstance(err, KeyError) else " ".join(str(err).split())
        raise InputError(f"{path}: damaged prior checkpoint ({what[:200]})") from None
    denoiser.eval().requires_grad_(False)
    return Prior(denoiser, stats, blob["config"], latents)


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
        x = torch.randn(n, d, generator=g) * cfg["sigma_max"]
        if method == "ode":
            res = edm.ode_solve(
                prior.denoiser, x, cfg["sigma_max"], cfg["sigma_min"], rtol=rtol, atol=atol
            )
        else:
            sigmas = edm.karras_sigmas(steps, cfg["sigma_min"], cfg["sigma_max"])
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
