"""Measuring a heterogeneity model: FSC of decoded volumes against the truth, PCA of latents,
the correlation of a latent direction with a known coordinate, the nearest ground-truth state of
a volume, clusters against classes (adjusted Rand index, matching) and how far sampled latents
lie from the encoded ones (off_manifold)."""

from __future__ import annotations

import numpy as np

from densitydiff.metrics import fsc, fsc_auc


def volume_fsc_auc(volume, truth, pixel_size: float) -> float:
    """FSC-AUC (mean FSC from shell 1 to Nyquist, `metrics.fsc_auc`) of a volume vs the truth."""
    return float(fsc_auc(fsc(np.asarray(volume), np.asarray(truth), pixel_size)))


def pca(z, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(projections (N, k) onto the principal axes, explained variance ratios (k,)) of z (N, d)."""
    z = np.asarray(z, dtype=np.float64)
    centred = z - z.mean(0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    k = len(s) if k is None else int(k)
    var = s**2
    return centred @ vt[:k].T, (var / var.sum())[:k]


def abs_corr(a, b) -> float:
    """|Pearson correlation| of two 1-D arrays (e.g. PC1 of z and the trajectory frame)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(abs(np.corrcoef(a, b)[0, 1]))


def nearest_state(volume, truths, pixel_size: float) -> tuple[int, float]:
    """(index, FSC-AUC) of the ground-truth state most like the volume: which state a sample is."""
    scores = [volume_fsc_auc(volume, t, pixel_size) for t in truths]
    if not scores:
        raise ValueError("nearest_state needs at least one ground-truth volume")
    best = int(np.argmax(scores))
    return best, scores[best]


def contingency(labels_a, labels_b) -> np.ndarray:
    """Counts n_ij of items in class i of labels_a and j of labels_b (labels in sorted order)."""
    a, b = np.asarray(labels_a).ravel(), np.asarray(labels_b).ravel()
    if a.shape != b.shape:
        raise ValueError(f"label arrays differ in length: {a.size} and {b.size}")
    _, ia = np.unique(a, return_inverse=True)
    _, ib = np.unique(b, return_inverse=True)
    table = np.zeros((ia.max(initial=-1) + 1, ib.max(initial=-1) + 1), dtype=np.int64)
    np.add.at(table, (ia, ib), 1)
    return table


def _pairs(n) -> np.ndarray:
    """n choose 2, elementwise, in float64 (no overflow for large counts)."""
    n = np.asarray(n, dtype=np.float64)
    return n * (n - 1) / 2


def adjusted_rand_index(labels_a, labels_b) -> float:
    """Hubert & Arabie's (1985) adjusted Rand index: 1 for the same partition, 0 by chance."""
    table = contingency(labels_a, labels_b)
    n = table.sum()
    index = _pairs(table).sum()
    rows, cols = _pairs(table.sum(1)).sum(), _pairs(table.sum(0)).sum()
    expected = rows * cols / _pairs(n) if n > 1 else 0.0
    top = (rows + cols) / 2
    if top == expected:  # both partitions trivial (one cluster each, or all singletons)
        return 1.0
    return float((index - expected) / (top - expected))


def match_states(pred_labels, true_labels) -> dict[int, int]:
    """{cluster: class} maximising the items they share (Hungarian assignment on the counts).

    With more clusters than classes the extra clusters are left out of the mapping."""
    from scipy.optimize import linear_sum_assignment

    clusters, classes = np.unique(pred_labels), np.unique(true_labels)
    rows, cols = linear_sum_assignment(contingency(pred_labels, true_labels), maximize=True)
    return {int(clusters[r]): int(classes[c]) for r, c in zip(rows, cols)}


def nearest_distances(
    points, reference, *, leave_one_out: bool = False, chunk: int = 1024
) -> np.ndarray:
    """Euclidean distance of each point (M, d) to its nearest reference point (N, d), in chunks.

    leave_one_out: points is the reference itself, and each point's own row is skipped."""
    p = np.asarray(points, dtype=np.float64).reshape(len(points), -1)
    r = np.asarray(reference, dtype=np.float64).reshape(len(reference), -1)
    if leave_one_out and (p.shape != r.shape or len(r) < 2):
        raise ValueError("leave_one_out needs the reference itself, with at least two points")
    r2 = (r**2).sum(1)
    out = np.empty(len(p))
    for s in range(0, len(p), chunk):
        block = p[s : s + chunk]
        d2 = (block**2).sum(1)[:, None] + r2[None] - 2 * block @ r.T
        if leave_one_out:
            d2[np.arange(len(block)), np.arange(s, s + len(block))] = np.inf
        out[s : s + chunk] = np.sqrt(np.maximum(d2.min(1), 0.0))
    return out


def off_manifold(samples, reference) -> np.ndarray:
    """Per sample: distance to the nearest reference latent over the reference's median
    leave-one-out nearest-neighbour distance; ~1 on the data, >> 1 off it (e.g. between states).

    Samples from the reference's own distribution have median ratio ~1 (a new point sees the N
    reference points as each reference point sees the other N - 1)."""
    spacing = float(np.median(nearest_distances(reference, reference, leave_one_out=True)))
    if spacing <= 0:
        raise ValueError("the reference latents' median nearest-neighbour distance is 0")
    return nearest_distances(samples, reference) / spacing


def is_monotone(values) -> bool:
    """True when the sequence never turns back (non-decreasing or non-increasing)."""
    d = np.diff(np.asarray(values, dtype=np.float64))
    return bool(np.all(d >= 0) or np.all(d <= 0))
