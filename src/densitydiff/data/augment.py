"""The 48 symmetries of the cube (axis permutations x axis flips) as patch augmentations.

A cubic patch on a cubic grid can be rotated by 90 degrees about any axis and mirrored without
interpolation: each symmetry is a signed permutation of the (z, y, x) axes. 24 of them are proper
rotations (determinant +1); the other 24 also mirror the patch, which turns L- into D-amino acids
and right- into left-handed helices. `proper_only=True` keeps the 24 rotations.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import numpy as np


class CubeSymmetry(NamedTuple):
    """Permute the spatial axes by `perm`, then reverse the axes whose `flips` entry is set."""

    perm: tuple[int, int, int]
    flips: tuple[bool, bool, bool]

    def matrix(self) -> np.ndarray:
        """3x3 signed permutation matrix M with out[i] = in[perm[i]] * (-1 if flips[i])."""
        m = np.zeros((3, 3), dtype=np.int64)
        for i, (p, f) in enumerate(zip(self.perm, self.flips)):
            m[i, p] = -1 if f else 1
        return m

    @property
    def proper(self) -> bool:
        """True for rotations (determinant +1), False for mirror images."""
        return round(np.linalg.det(self.matrix())) == 1


def cube_symmetries(proper_only: bool = False) -> list[CubeSymmetry]:
    """All 48 (or the 24 proper) symmetries of the cube; index 0 is the identity."""
    out = [
        CubeSymmetry(tuple(p), tuple(bool(b) for b in f))
        for p in itertools.permutations(range(3))
        for f in itertools.product((0, 1), repeat=3)
    ]
    return [s for s in out if s.proper] if proper_only else out


def apply_symmetry(array, sym: CubeSymmetry):
    """Apply `sym` to the last three axes of a numpy array or torch tensor (leading axes kept)."""
    lead = array.ndim - 3
    axes = tuple(range(lead)) + tuple(lead + p for p in sym.perm)
    flip_axes = tuple(lead + i for i, f in enumerate(sym.flips) if f)
    if isinstance(array, np.ndarray):
        out = np.transpose(array, axes)
        return np.flip(out, flip_axes) if flip_axes else out
    out = array.permute(*axes)
    return out.flip(flip_axes) if flip_axes else out
