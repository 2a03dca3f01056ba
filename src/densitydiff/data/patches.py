"""Choose cubic patches that hold density: random origins whose patch is not mostly solvent."""

from __future__ import annotations

import numpy as np


def box_fractions(mask: np.ndarray, patch: int) -> np.ndarray:
    """Fraction of True voxels in every patch^3 box, by the box's corner (a summed-area table)."""
    s = np.zeros(tuple(n + 1 for n in mask.shape), dtype=np.int64)
    s[1:, 1:, 1:] = mask.astype(np.int64).cumsum(0).cumsum(1).cumsum(2)
    p = patch
    # inclusion-exclusion over the 8 corners of each box
    total = (
        s[p:, p:, p:]
        - s[:-p, p:, p:]
        - s[p:, :-p, p:]
        - s[p:, p:, :-p]
        + s[:-p, :-p, p:]
        + s[:-p, p:, :-p]
        + s[p:, :-p, :-p]
        - s[:-p, :-p, :-p]
    )
    return total / float(p**3)


def choose_patch_origins(
    density: np.ndarray,
    patch: int,
    n: int,
    rng: np.random.Generator,
    *,
    threshold: float,
    min_fraction: float,
) -> np.ndarray:
    """Up to `n` distinct corners (k, j, i) of patches with >= min_fraction voxels above threshold.

    Fewer than `n` come back when fewer boxes qualify (a small structure); none when the grid is
    smaller than a patch. Sorted, so the store's layout does not depend on the draw order.
    """
    if any(s < patch for s in density.shape) or n <= 0:
        return np.zeros((0, 3), dtype=np.int64)
    frac = box_fractions(density > threshold, patch)
    valid = np.flatnonzero(frac >= min_fraction)
    if valid.size == 0:
        return np.zeros((0, 3), dtype=np.int64)
    pick = np.sort(rng.choice(valid, size=min(n, valid.size), replace=False))
    return np.stack(np.unravel_index(pick, frac.shape), axis=1).astype(np.int64)
