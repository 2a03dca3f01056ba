"""The prior's latents: means and log-variances read from latent files, and their standardising."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from densitydiff.errors import InputError
from densitydiff.formats.latents import read_latents, write_latents

MIN_VECTORS = 2  # a distribution to standardise and learn needs at least two samples


@dataclass
class Latents:
    """Posterior means `mu` (N, D) float32 and, when the file has them, log-variances (N, D)."""

    mu: np.ndarray
    logvar: np.ndarray | None = None

    def posterior_sample(self, rng: np.random.Generator) -> np.ndarray:
        """z = mu + exp(logvar / 2) eps, one draw per particle (the VAE's reparameterisation)."""
        if self.logvar is None:
            raise InputError("these latents have no log-variances to sample the posterior from")
        eps = rng.standard_normal(self.mu.shape).astype(np.float32)
        return self.mu + np.exp(0.5 * self.logvar) * eps


def load_latents(path: str | os.PathLike) -> Latents:
    """Latents to learn a prior from (`formats.latents.read_latents`: z.pkl, .npy, .txt, .pt).

    Raises InputError on a missing, unsafe or malformed file, or fewer than two vectors.
    """
    mu, logvar = read_latents(path)
    if mu.shape[0] < MIN_VECTORS or mu.shape[1] < 1:
        raise InputError(
            f"{path}: latent means needs at least 2 vectors of dimension >= 1, got {mu.shape}"
        )
    return Latents(mu, logvar)


def save_latents(path: str | os.PathLike, z) -> Path:
    """Write N x D latents as .npy, .txt, .pt, or .pkl (cryoDRGN's z.pkl of means only)."""
    return write_latents(path, z)


@dataclass
class LatentStats:
    """Per-dimension mean and std used to standardise latents before diffusion."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, latents: Latents, posterior: bool = False) -> LatentStats:
        """Moments of the means, or of the aggregate posterior (var(mu) + E exp(logvar))."""
        mean = latents.mu.mean(axis=0, dtype=np.float64)
        var = latents.mu.var(axis=0, dtype=np.float64)
        if posterior and latents.logvar is not None:
            var = var + np.exp(latents.logvar.astype(np.float64)).mean(axis=0)
        std = np.sqrt(var)
        if (std <= 1e-12 * max(1.0, float(np.abs(mean).max()))).any():
            dims = np.flatnonzero(std <= 1e-12 * max(1.0, float(np.abs(mean).max()))).tolist()
            raise InputError(f"latent dimension(s) {dims} are constant; cannot standardise")
        return cls(mean.astype(np.float32), std.astype(np.float32))

    def standardise(self, z):
        return (z - self.mean) / self.std

    def unstandardise(self, x):
        return x * self.std + self.mean


def parse_vector(text: str, dim: int) -> np.ndarray:
    """'0.1,-2,3' -> float32 vector of length `dim` (InputError otherwise)."""
    try:
        v = np.array([float(t) for t in text.replace(" ", ",").split(",") if t], np.float32)
    except ValueError:
        raise InputError(f"not a comma-separated vector of numbers: {text!r}") from None
    if v.shape != (dim,) or not np.isfinite(v).all():
        raise InputError(f"vector {text!r} must have {dim} finite numbers")
    return v
