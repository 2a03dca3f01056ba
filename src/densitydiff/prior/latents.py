"""Latent vectors in and out: cryoDRGN z.pkl (means, log-variances), .npy, .pt; standardising."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from densitydiff.errors import InputError
from densitydiff.outputs import atomic_path

SUFFIXES = (".pkl", ".npy", ".pt", ".pth")


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


def _check(array, path: Path, what: str) -> np.ndarray:
    try:
        a = np.asarray(array)
    except Exception as err:  # noqa: BLE001 - any conversion failure is a bad file
        raise InputError(f"{path}: {what} is not an array ({err})") from None
    if a.dtype == object or not np.issubdtype(a.dtype, np.number):
        raise InputError(f"{path}: {what} must be numeric, got dtype {a.dtype}")
    if a.ndim != 2:
        raise InputError(f"{path}: {what} must be an N x D array, got shape {a.shape}")
    if a.shape[0] < 2 or a.shape[1] < 1:
        raise InputError(
            f"{path}: {what} needs at least 2 vectors of dimension >= 1, got {a.shape}"
        )
    a = a.astype(np.float32)
    if not np.isfinite(a).all():
        bad = int((~np.isfinite(a)).any(axis=1).sum())
        raise InputError(f"{path}: {what} holds NaN or infinite values in {bad} rows")
    return a


def load_latents(path: str | os.PathLike) -> Latents:
    """Read latents: z.pkl (restricted unpickler; 1st pickle means, 2nd log-variances), .npy, .pt.

    A .pt file may hold a tensor (means) or a tuple/list (means, log-variances), loaded with
    densitydiff.torchfile (weights only). Raises InputError on a missing, unsafe or malformed file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    suffix = path.suffix.lower()
    if suffix == ".pkl":
        from densitydiff.formats.pkl import load_pickles

        objs = load_pickles(path)
    elif suffix == ".npy":
        try:
            objs = [np.load(path, allow_pickle=False)]
        except (ValueError, OSError, EOFError) as err:
            raise InputError(f"{path}: not a readable .npy array ({err})") from None
    elif suffix in (".pt", ".pth"):
        from densitydiff.torchfile import read_torch_file

        obj = read_torch_file(path, "weights-only torch file")
        objs = list(obj) if isinstance(obj, (tuple, list)) else [obj]
        objs = [o.detach().cpu().numpy() if hasattr(o, "detach") else o for o in objs]
    else:
        raise InputError(f"{path}: unknown latent file type {suffix!r} (use .pkl, .npy or .pt)")
    if isinstance(objs[0], (tuple, list)) and len(objs) == 1:
        objs = list(objs[0])
    mu = _check(objs[0], path, "latent means")
    logvar = None
    if len(objs) > 1:
        logvar = _check(objs[1], path, "latent log-variances")
        if logvar.shape != mu.shape:
            raise InputError(f"{path}: log-variances have shape {logvar.shape}, means {mu.shape}")
    return Latents(mu, logvar)


def save_latents(path: str | os.PathLike, z) -> Path:
    """Write N x D latents as .npy, .pt, or .pkl (cryoDRGN's z.pkl: one pickled float32 array)."""
    path = Path(path)
    z = np.ascontiguousarray(np.asarray(z, dtype=np.float32))
    suffix = path.suffix.lower()
    if suffix == ".pkl":
        from densitydiff.formats.pkl import save_pickles

        save_pickles(path, z)
    elif suffix == ".npy":
        with atomic_path(path) as tmp:
            np.save(tmp, z)
    elif suffix in (".pt", ".pth"):
        import torch

        with atomic_path(path) as tmp:
            torch.save(torch.from_numpy(z), tmp)
    else:
        raise InputError(f"{path}: output must end in .npy, .pkl or .pt")
    return path


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
