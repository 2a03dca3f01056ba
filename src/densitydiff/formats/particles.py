"""cryoDRGN's particle files: images from stacks, .txt lists or .star; poses.pkl, ctf.pkl, z.pkl.

poses.pkl: a pickled tuple (rotations N x 3 x 3, translations N x 2 as a fraction of the box),
or rotations alone; ctf.pkl: float32 N x 9 [D, pixel Å, dfU Å, dfV Å, dfang deg, kV, Cs mm, w,
phase shift deg]; z.pkl: means then log-variances, back to back. Pickles load only through the
restricted unpickler in `formats.pkl`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from densitydiff.errors import InputError
from densitydiff.formats.mrcs import read_stack
from densitydiff.formats.pkl import load_pickle, load_pickles, save_pickles
from densitydiff.outputs import atomic_path


def read_particles(path: str | os.PathLike, lazy: bool = False) -> np.ndarray:
    """Images (N, D, D) float32 from an .mrcs/.mrc stack, a .txt list of stacks, or a .star file.

    `lazy=True` memory-maps a single stack instead of reading it (for large files).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    suffix = path.suffix.lower()
    if suffix == ".txt":
        names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        if not names:
            raise InputError(f"{path}: empty list of particle stacks")
        stacks = [read_particles(_resolve(path, n)) for n in names]
        _same_box(stacks, path)
        return np.concatenate(stacks)
    if suffix == ".star":
        from densitydiff.formats.star import read_star_images

        return read_star_images(path)
    return read_stack(path, lazy=lazy)


def _resolve(listing: Path, name: str) -> Path:
    p = Path(name)
    return p if p.is_absolute() else listing.parent / p


def _same_box(stacks: list[np.ndarray], path: Path) -> None:
    shapes = {s.shape[1:] for s in stacks}
    if len(shapes) != 1:
        raise InputError(f"{path}: stacks have different image sizes {sorted(shapes)}")


def save_poses(path: str | os.PathLike, rotations: np.ndarray, translations: np.ndarray) -> None:
    """Write cryoDRGN's poses.pkl: (rotations N x 3 x 3, translations N x 2 / box) float32."""
    rot = np.asarray(rotations, dtype=np.float32)
    trans = np.asarray(translations, dtype=np.float32)
    _check_poses(rot, trans, Path(path))
    save_pickles(path, (rot, trans))


def load_poses(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """Read poses.pkl: (rotations N x 3 x 3, translations N x 2 or None when absent)."""
    obj = load_pickle(path)
    if isinstance(obj, tuple | list):
        if len(obj) != 2:
            raise InputError(f"{path}: expected (rotations, translations), got {len(obj)} items")
        rot, trans = np.asarray(obj[0], np.float32), np.asarray(obj[1], np.float32)
    else:
        rot, trans = np.asarray(obj, np.float32), None
    _check_poses(rot, trans, Path(path))
    return rot, trans


def _check_poses(rot: np.ndarray, trans: np.ndarray | None, path: Path) -> None:
    if rot.ndim != 3 or rot.shape[1:] != (3, 3):
        raise InputError(f"{path}: rotations must be (N, 3, 3), got {rot.shape}")
    if trans is not None and trans.shape != (len(rot), 2):
        raise InputError(f"{path}: translations must be ({len(rot)}, 2), got {trans.shape}")
    if not np.all(np.isfinite(rot)) or (trans is not None and not np.all(np.isfinite(trans))):
        raise InputError(f"{path}: poses contain NaN or infinite values")
    err = np.abs(rot @ rot.transpose(0, 2, 1) - np.eye(3)).max() if len(rot) else 0.0
    if err > 1e-3:
        raise InputError(f"{path}: rotations are not orthonormal (max |R R^T - I| = {err:.2g})")


def save_z(path: str | os.PathLike, mu: np.ndarray, logvar: np.ndarray | None = None) -> None:
    """Write cryoDRGN's z.pkl: latent means, then (if given) log-variances, back to back."""
    mu = np.asarray(mu, dtype=np.float32)
    if mu.ndim != 2:
        raise InputError(f"latent means must be (N, zdim), got {mu.shape}")
    objs = [mu]
    if logvar is not None:
        logvar = np.asarray(logvar, dtype=np.float32)
        if logvar.shape != mu.shape:
            raise InputError(f"log-variances {logvar.shape} do not match means {mu.shape}")
        objs.append(logvar)
    save_pickles(path, *objs)


def load_z(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """Read z.pkl: (means (N, zdim), log-variances or None for files that hold only means)."""
    objs = load_pickles(path)
    mu = np.asarray(objs[0], dtype=np.float32)
    if mu.ndim != 2:
        raise InputError(f"{path}: latent means must be (N, zdim), got {mu.shape}")
    logvar = np.asarray(objs[1], dtype=np.float32) if len(objs) > 1 else None
    if logvar is not None and logvar.shape != mu.shape:
        raise InputError(f"{path}: log-variances {logvar.shape} do not match means {mu.shape}")
    return mu, logvar


def write_list(path: str | os.PathLike, stacks: list[str | os.PathLike]) -> None:
    """Write a .txt list of stacks (one path per line), as cryoDRGN reads them."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text("".join(f"{s}\n" for s in stacks))
