"""Measuring a heterogeneity model: FSC of decoded volumes against the truth, PCA of latents,
and the correlation of a latent direction with a known coordinate."""

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
