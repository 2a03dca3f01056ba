"""Latent files, one reader and one writer: cryoDRGN's z.pkl, .npy, .txt, and weights-only .pt.

z.pkl is cryoDRGN's layout: two pickles back to back, the means (N, zdim) then the
log-variances; older files hold the means only. .npy and .txt (as np.loadtxt reads it, one row
per particle) hold means. A .pt file holds a tensor (means) or a tuple/list (means,
log-variances). Pickles load only through the restricted unpickler in `formats.pkl`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from densitydiff.errors import InputError
from densitydiff.formats.pkl import load_pickles, save_pickles
from densitydiff.outputs import atomic_path

LATENT_SUFFIXES = (".pkl", ".npy", ".txt", ".pt", ".pth")


def _check(array, path: Path, what: str) -> np.ndarray:
    """A finite float32 (N, zdim) array, or InputError naming the file."""
    try:
        a = np.asarray(array)
    except Exception as err:  # noqa: BLE001 - any conversion failure is a bad file
        raise InputError(f"{path}: {what} is not an array ({err})") from None
    if a.dtype == object or not np.issubdtype(a.dtype, np.number):
        raise InputError(f"{path}: {what} must be numeric, got dtype {a.dtype}")
    if a.ndim != 2:
        raise InputError(f"{path}: {what} must be an N x D array, got shape {a.shape}")
    a = a.astype(np.float32)
    if not np.isfinite(a).all():
        bad = int((~np.isfinite(a)).any(axis=1).sum())
        raise InputError(f"{path}: {what} holds NaN or infinite values in {bad} rows")
    return a


def _objects(path: Path) -> list:
    """The arrays the file holds, in order (means first)."""
    suffix = path.suffix.lower()
    if suffix == ".pkl":
        return load_pickles(path)
    if suffix == ".npy":
        try:
            return [np.load(path, allow_pickle=False)]
        except (ValueError, OSError, EOFError) as err:
            raise InputError(f"{path}: not a readable .npy array ({err})") from None
    if suffix == ".txt":
        try:
            return [np.loadtxt(path, dtype=np.float64, ndmin=2)]
        except ValueError as err:
            raise InputError(f"{path}: not a table of numbers ({err})") from None
    if suffix in (".pt", ".pth"):
        from densitydiff.torchfile import read_torch_file

        obj = read_torch_file(path, "weights-only torch file")
        objs = list(obj) if isinstance(obj, (tuple, list)) else [obj]
        return [o.detach().cpu().numpy() if hasattr(o, "detach") else o for o in objs]
    raise InputError(
        f"{path}: unknown latent file type {suffix!r} (use {', '.join(LATENT_SUFFIXES)})"
    )


def read_latents(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """(means (N, zdim) float32, log-variances (N, zdim) or None when the file has none).

    Raises InputError on a missing, unsafe or malformed file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    objs = _objects(path)
    if not objs:
        raise InputError(f"{path}: the file holds no latents")
    if isinstance(objs[0], (tuple, list)) and len(objs) == 1:
        objs = list(objs[0])
    mu = _check(objs[0], path, "latent means")
    logvar = None
    if len(objs) > 1:
        logvar = _check(objs[1], path, "latent log-variances")
        if logvar.shape != mu.shape:
            raise InputError(f"{path}: log-variances have shape {logvar.shape}, means {mu.shape}")
    return mu, logvar


def write_latents(path: str | os.PathLike, mu, logvar=None) -> Path:
    """Write latent means (N, zdim), and log-variances when given, atomically, by extension.

    .pkl: cryoDRGN's z.pkl (means, then log-variances when given, back to back); .pt: a
    tensor or a (means, log-variances) tuple; .npy and .txt hold means only.
    """
    path = Path(path)
    mu = np.ascontiguousarray(np.asarray(mu, dtype=np.float32))
    if mu.ndim != 2:
        raise InputError(f"latent means must be (N, zdim), got {mu.shape}")
    arrays = [mu]
    if logvar is not None:
        logvar = np.ascontiguousarray(np.asarray(logvar, dtype=np.float32))
        if logvar.shape != mu.shape:
            raise InputError(f"log-variances {logvar.shape} do not match means {mu.shape}")
        arrays.append(logvar)
    suffix = path.suffix.lower()
    if suffix in (".npy", ".txt") and logvar is not None:
        raise InputError(f"{path}: {suffix} holds means only; write log-variances to .pkl or .pt")
    if suffix == ".pkl":
        save_pickles(path, *arrays)
    elif suffix == ".npy":
        with atomic_path(path) as tmp:
            np.save(tmp, mu)
    elif suffix == ".txt":
        with atomic_path(path) as tmp:
            np.savetxt(tmp, mu)
    elif suffix in (".pt", ".pth"):
        import torch

        tensors = [torch.from_numpy(a) for a in arrays]
        with atomic_path(path) as tmp:
            torch.save(tensors[0] if len(tensors) == 1 else tuple(tensors), tmp)
    else:
        raise InputError(f"{path}: output must end in one of {', '.join(LATENT_SUFFIXES)}")
    return path
