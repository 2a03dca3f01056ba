"""The 48 cube symmetries: distinct, a group, and the matrices say what the arrays do."""

from __future__ import annotations

import numpy as np
import torch

from densitydiff.data.augment import apply_symmetry, cube_symmetries


def _key(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a).tobytes()


def test_48_distinct_symmetries_24_proper_identity_first():
    syms = cube_symmetries()
    assert len(syms) == 48
    cube = np.random.default_rng(0).standard_normal((5, 5, 5))
    assert len({_key(apply_symmetry(cube, s)) for s in syms}) == 48
    assert np.array_equal(apply_symmetry(cube, syms[0]), cube)
    dets = [round(np.linalg.det(s.matrix())) for s in syms]
    assert dets.count(1) == 24 and dets.count(-1) == 24
    assert cube_symmetries(proper_only=True) == [s for s in syms if s.proper]


def test_symmetries_form_a_group():
    syms = cube_symmetries()
    cube = np.random.default_rng(1).standard_normal((4, 4, 4))
    images = {_key(apply_symmetry(cube, s)): k for k, s in enumerate(syms)}
    for a in syms:
        for b in syms:
            assert _key(apply_symmetry(apply_symmetry(cube, a), b)) in images
    # inverses: for every a some b brings the cube back
    for a in syms:
        assert any(np.array_equal(apply_symmetry(apply_symmetry(cube, a), b), cube) for b in syms)
    mats = {m.matrix().tobytes() for m in syms}
    for a in syms:
        for b in syms:
            assert (b.matrix() @ a.matrix()).tobytes() in mats


def test_matrix_moves_a_marked_voxel_where_the_array_moves_it():
    n = 5
    c = (n - 1) / 2
    for s in cube_symmetries():
        for v in [(0, 1, 3), (4, 0, 2), (1, 3, 4)]:
            cube = np.zeros((n, n, n))
            cube[v] = 1.0
            moved = np.argwhere(apply_symmetry(cube, s) == 1.0)[0]
            expected = s.matrix() @ (np.array(v) - c) + c
            assert np.allclose(moved, expected), (s, v)


def test_torch_and_numpy_agree_with_leading_axes():
    x = np.random.default_rng(2).standard_normal((2, 1, 4, 4, 4)).astype(np.float32)
    for s in cube_symmetries():
        assert np.array_equal(apply_symmetry(torch.from_numpy(x), s).numpy(), apply_symmetry(x, s))
