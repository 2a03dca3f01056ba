"""hetero/evaluate.py's state and cluster measures against hand-worked and independent results:
the adjusted Rand index, nearest ground-truth state, cluster-to-class matching, off_manifold."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from scipy.spatial.distance import cdist

from densitydiff.hetero.evaluate import (
    adjusted_rand_index,
    contingency,
    is_monotone,
    match_states,
    nearest_distances,
    nearest_state,
    off_manifold,
    volume_fsc_auc,
)


def pair_count_ari(a, b) -> float:
    """ARI from the four pair counts over all i < j (Steinley 2004's form), no contingency table."""
    same_a = np.array([a[i] == a[j] for i, j in combinations(range(len(a)), 2)])
    same_b = np.array([b[i] == b[j] for i, j in combinations(range(len(b)), 2)])
    n11 = np.sum(same_a & same_b)
    n10 = np.sum(same_a & ~same_b)
    n01 = np.sum(~same_a & same_b)
    n00 = np.sum(~same_a & ~same_b)
    return 2.0 * (n11 * n00 - n10 * n01) / ((n11 + n10) * (n10 + n00) + (n11 + n01) * (n01 + n00))


def test_ari_is_one_for_the_same_partition_under_renaming():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 4, 200)
    names = np.array(["w", "x", "y", "z"])[rng.permutation(4)]
    assert adjusted_rand_index(a, names[a]) == pytest.approx(1.0)
    assert adjusted_rand_index(a, a + 17) == pytest.approx(1.0)


def test_ari_of_worked_examples():
    """Contingency [[2, 1, 0], [0, 1, 2]]: sum C(n_ij, 2) = 2, rows 6, columns 3, expected
    6 * 3 / C(6, 2) = 1.2, so ARI = (2 - 1.2) / (4.5 - 1.2) = 0.2424; a crossed 2 x 2 split,
    [[1, 1], [1, 1]]: (0 - 2/3) / (2 - 2/3) = -0.5."""
    a, b = [0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 2, 2]
    assert np.array_equal(contingency(a, b), [[2, 1, 0], [0, 1, 2]])
    assert adjusted_rand_index(a, b) == pytest.approx(0.8 / 3.3)
    assert adjusted_rand_index([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(-0.5)


def test_ari_equals_the_pair_count_form_and_is_symmetric():
    rng = np.random.default_rng(1)
    for n, ka, kb in [(30, 3, 4), (41, 2, 5), (25, 6, 6)]:
        a, b = rng.integers(0, ka, n), rng.integers(0, kb, n)
        b[: n // 2] = a[: n // 2]  # partly agreeing, so the index is not near 0
        assert adjusted_rand_index(a, b) == pytest.approx(pair_count_ari(a, b), abs=1e-12)
        assert adjusted_rand_index(a, b) == pytest.approx(adjusted_rand_index(b, a), abs=1e-12)


def test_ari_of_independent_labels_is_zero_on_average():
    """Independent labelings: E[ARI] = 0 (the index is corrected for chance); 400 draws of 60
    items give a mean within 0.005 of 0 (its standard error here is ~0.001)."""
    rng = np.random.default_rng(2)
    values = [adjusted_rand_index(rng.integers(0, 3, 60), rng.integers(0, 4, 60))
              for _ in range(400)]  # fmt: skip
    assert abs(np.mean(values)) < 0.005
    assert np.std(values) > 0.005  # the draws do vary: the mean is not 0 by construction


def test_ari_of_trivial_partitions():
    assert adjusted_rand_index([1, 1, 1, 1], [0, 0, 0, 0]) == 1.0
    assert adjusted_rand_index([0, 1, 2, 3], [3, 2, 1, 0]) == 1.0
    assert adjusted_rand_index([0, 0, 0, 0], [0, 0, 1, 1]) == pytest.approx(0.0)
    with pytest.raises(ValueError):
        adjusted_rand_index([0, 1], [0, 1, 2])


def _smooth_volumes(k: int, D: int, rng) -> list[np.ndarray]:
    return [gaussian_filter(rng.normal(size=(D, D, D)), 1.5) for _ in range(k)]


def test_nearest_state_picks_the_right_state():
    """Each of five smoothed random volumes, scaled and with noise added, is nearest itself."""
    rng = np.random.default_rng(3)
    truths = _smooth_volumes(5, 16, rng)
    for k, t in enumerate(truths):
        vol = 3.0 * t + 0.3 * t.std() * gaussian_filter(rng.normal(size=t.shape), 1.5) / 0.1
        index, score = nearest_state(vol, truths, 2.0)
        assert index == k
        others = [volume_fsc_auc(vol, u, 2.0) for j, u in enumerate(truths) if j != k]
        assert score == pytest.approx(volume_fsc_auc(vol, t, 2.0)) and score > max(others)
    mix = 0.7 * truths[1] + 0.3 * truths[4]  # a blend is nearest its larger part
    assert nearest_state(mix, truths, 2.0)[0] == 1


def test_match_states_recovers_a_permutation():
    rng = np.random.default_rng(4)
    truth = rng.choice(4, 500, p=[0.4, 0.3, 0.2, 0.1])
    perm = np.array([2, 0, 3, 1])  # class c is called cluster perm[c]
    pred = perm[truth]
    flip = rng.random(500) < 0.15  # some items in a wrong cluster
    pred[flip] = rng.integers(0, 4, flip.sum())
    assert match_states(pred, truth) == {int(perm[c]): c for c in range(4)}
    # one cluster more than classes: the small stray cluster is left out
    pred5 = perm[truth].copy()
    pred5[:5] = 9
    mapping = match_states(pred5, truth)
    assert 9 not in mapping and mapping == {int(perm[c]): c for c in range(4)}


def test_nearest_distances_equal_brute_force():
    rng = np.random.default_rng(5)
    ref, pts = rng.normal(size=(50, 3)), rng.normal(size=(23, 3))
    d = cdist(pts, ref)
    assert np.allclose(nearest_distances(pts, ref, chunk=7), d.min(1), atol=1e-9)
    own = cdist(ref, ref) + np.diag(np.full(50, np.inf))
    assert np.allclose(nearest_distances(ref, ref, leave_one_out=True, chunk=8), own.min(1))


def test_off_manifold_is_one_on_the_data_and_large_between_two_states():
    rng = np.random.default_rng(6)
    ref = rng.normal(size=(2000, 4))
    same = off_manifold(rng.normal(size=(1000, 4)), ref)
    assert 0.9 < np.median(same) < 1.1
    # two states 20 apart: points from them are on the data, points halfway are not
    centres = np.zeros((2, 4))
    centres[1, 0] = 20.0
    two = centres[rng.integers(0, 2, 2000)] + rng.normal(size=(2000, 4))
    on = centres[rng.integers(0, 2, 200)] + rng.normal(size=(200, 4))
    between = np.array([10.0, 0, 0, 0]) + 0.5 * rng.normal(size=(200, 4))
    assert 0.85 < np.median(off_manifold(on, two)) < 1.15
    assert off_manifold(between, two).min() > 5.0


def test_is_monotone():
    assert is_monotone([0, 0, 3, 5, 97]) and is_monotone([97, 50, 50, 2])
    assert not is_monotone([0, 10, 5, 97]) and is_monotone([4])
