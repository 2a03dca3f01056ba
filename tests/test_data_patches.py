"""Patch choice: box fractions equal brute-force counts; solvent-only boxes are never chosen."""

from __future__ import annotations

import numpy as np

from densitydiff.data.patches import box_fractions, choose_patch_origins


def test_box_fractions_equal_brute_force():
    rng = np.random.default_rng(0)
    mask = rng.random((9, 7, 8)) > 0.6
    frac = box_fractions(mask, 4)
    assert frac.shape == (6, 4, 5)
    for k, j, i in np.ndindex(frac.shape):
        assert frac[k, j, i] == mask[k : k + 4, j : j + 4, i : i + 4].mean()


def test_only_boxes_that_hold_density_are_chosen():
    density = np.zeros((30, 30, 30))
    density[20:26, 3:9, 10:16] = 5.0  # a 6^3 blob; everything else is solvent
    rng = np.random.default_rng(1)
    origins = choose_patch_origins(density, 8, 1000, rng, threshold=1.0, min_fraction=0.25)
    # boxes holding >= 128 of the 216 blob voxels: corner offsets with overlap product >= 128
    expected = [
        (k, j, i)
        for k, j, i in np.ndindex(23, 23, 23)
        if (density[k : k + 8, j : j + 8, i : i + 8] > 1).mean() >= 0.25
    ]
    assert sorted(map(tuple, origins.tolist())) == sorted(expected)  # all of them, no other
    few = choose_patch_origins(
        density, 8, 5, np.random.default_rng(2), threshold=1, min_fraction=0.25
    )
    assert len(few) == 5 and len({tuple(o) for o in few.tolist()}) == 5
    assert set(map(tuple, few.tolist())) <= set(expected)
    assert len(choose_patch_origins(density, 31, 5, rng, threshold=1, min_fraction=0)) == 0
    assert (
        len(choose_patch_origins(np.zeros((30,) * 3), 8, 5, rng, threshold=1, min_fraction=0.01))
        == 0
    )
