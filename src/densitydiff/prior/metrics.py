"""Distances between two sets of latent vectors: MMD (RBF), energy distance, sliced Wasserstein-2.

All take arrays (N, D) and (M, D) (numpy or torch) and return a float; all are V-statistics
(identical sets give exactly 0). Kernel sums are done in row blocks so 10^4 x 10^4 fits in memory.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)  # multiples of the median-heuristic bandwidth
_BLOCK = 2048


def _t(a) -> torch.Tensor:
    return torch.as_tensor(
        np.asarray(a, dtype=np.float64) if not torch.is_tensor(a) else a, dtype=torch.float64
    ).reshape(len(a), -1)


def _pair_means(x: torch.Tensor, y: torch.Tensor, fns, exclude_diagonal: bool = False):
    """Mean of each fn(|x_i - y_j|^2) over all pairs (or i != j when x is y), in row blocks."""
    totals = [0.0] * len(fns)
    for start in range(0, len(x), _BLOCK):
        d2 = torch.cdist(x[start : start + _BLOCK], y).square_()
        for i, fn in enumerate(fns):
            totals[i] += float(fn(d2).sum())
    n_pairs = len(x) * len(y)
    if exclude_diagonal:
        zero = torch.zeros(1, dtype=torch.float64)
        totals = [t - len(x) * float(fn(zero)) for t, fn in zip(totals, fns)]
        n_pairs -= len(x)
    return [t / n_pairs for t in totals]


def median_bandwidth(x, y=None, max_points: int = 2000, seed: int = 0) -> float:
    """Median pairwise distance of the pooled points (the median heuristic, Gretton et al. 2012)."""
    pts = _t(x) if y is None else torch.cat([_t(x), _t(y)])
    if len(pts) > max_points:
        g = torch.Generator().manual_seed(seed)
        pts = pts[torch.randperm(len(pts), generator=g)[:max_points]]
    d = torch.pdist(pts)
    return float(d.median()) if d.numel() else 1.0


def mmd2(x, y, bandwidths: Sequence[float], unbiased: bool = False) -> float:
    """Squared MMD averaged over RBF kernels k(a, b) = exp(-|a - b|^2 / (2 h^2)), h in bandwidths.

    MMD^2 = E k(x, x') + E k(y, y') - 2 E k(x, y) (Gretton et al. 2012, eq. 3); the V-statistic
    by default, the unbiased U-statistic (eq. 4) with unbiased=True.
    """
    x, y = _t(x), _t(y)
    kernels = [lambda d2, h=h: torch.exp(-d2 / (2 * h * h)) for h in bandwidths]
    kxx = _pair_means(x, x, kernels, exclude_diagonal=unbiased)
    kyy = _pair_means(y, y, kernels, exclude_diagonal=unbiased)
    kxy = _pair_means(x, y, kernels)
    return sum(a + b - 2 * c for a, b, c in zip(kxx, kyy, kxy)) / len(bandwidths)


def mmd(x, y, bandwidth: float | None = None, scales: Sequence[float] = SCALES) -> float:
    """sqrt(MMD^2) (V-statistic) with RBF bandwidths scales x h, h = median heuristic by default.

    Pass `bandwidth` (e.g. the data's median distance) to compare several sets on one kernel.
    """
    h = median_bandwidth(x, y) if bandwidth is None else float(bandwidth)
    return float(np.sqrt(max(mmd2(x, y, [s * h for s in scales]), 0.0)))


def energy_distance(x, y) -> float:
    """Energy distance 2 E|X - Y| - E|X - X'| - E|Y - Y'| (Szekely & Rizzo 2013, eq. 2.1).

    This is the squared form (D^2 in their notation), in units of distance.
    """
    x, y = _t(x), _t(y)

    dist = [torch.sqrt]
    (dxy,), (dxx,), (dyy,) = (
        _pair_means(x, y, dist),
        _pair_means(x, x, dist),
        _pair_means(y, y, dist),
    )
    return 2 * dxy - dxx - dyy


def sliced_wasserstein(x, y, n_projections: int = 256, seed: int = 0) -> float:
    """Sliced Wasserstein-2: sqrt(mean over random unit directions theta of W2^2(x.theta, y.theta)).

    1-D W2 between empirical laws compares quantile functions (Rabin et al. 2011); sets of
    unequal size are compared on a common grid of max(N, M) quantile levels.
    """
    x, y = _t(x), _t(y)
    g = torch.Generator().manual_seed(seed)
    theta = torch.randn(x.shape[1], n_projections, generator=g, dtype=torch.float64)
    theta /= theta.norm(dim=0, keepdim=True)
    px, _ = torch.sort(x @ theta, dim=0)
    py, _ = torch.sort(y @ theta, dim=0)
    if len(px) != len(py):
        m = max(len(px), len(py))
        levels = (np.arange(m) + 0.5) / m
        px = torch.from_numpy(_quantiles(px.numpy(), levels))
        py = torch.from_numpy(_quantiles(py.numpy(), levels))
    return float(torch.sqrt(((px - py) ** 2).mean()))


def _quantiles(sorted_cols: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Empirical quantile function (step) of each sorted column at `levels` in (0, 1)."""
    n = len(sorted_cols)
    idx = np.minimum((levels * n).astype(int), n - 1)
    return sorted_cols[idx]


def distances(x, y, bandwidth: float | None = None, seed: int = 0) -> dict[str, float]:
    """{"mmd", "energy", "sw2"} between two sets (one kernel bandwidth for all when given)."""
    return {
        "mmd": mmd(x, y, bandwidth),
        "energy": energy_distance(x, y),
        "sw2": sliced_wasserstein(x, y, seed=seed),
    }
