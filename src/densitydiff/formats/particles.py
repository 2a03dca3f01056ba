"""cryoDRGN's particle files: images from stacks, .txt lists or .star; poses.pkl.

poses.pkl: a pickled tuple (rotations N x 3 x 3, translations N x 2 as a fraction of the box),
or rotations alone; pickles load only through the restricted unpickler in `formats.pkl`.
Stacks: `formats.mrcs`; ctf.pkl: `formats.ctf`; z.pkl: `formats.latents`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from densitydiff.errors import InputError
from densitydiff.formats.mrcs import read_stack
from densitydiff.formats.pkl import load_pickle, save_pickles


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


def check_counts(n_images: int, **per_image: np.ndarray | None) -> None:
    """Each per-image array (poses, ctf, ...) has one row per image of the stack.

    A poses.pkl from another stack is the classic mistake: it loads fine and misaligns every
    image. Raises InputError naming the first array whose length disagrees.
    """
    for name, array in per_image.items():
        if array is not None and len(array) != n_images:
            raise InputError(f"{name} has {len(array)} rows but the stack holds {n_images} images")
