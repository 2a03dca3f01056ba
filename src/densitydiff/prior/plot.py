"""Figure: data latents vs prior samples in the data's first two principal components."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from densitydiff.outputs import atomic_path
from densitydiff.prior.sample import Prior, sample_prior


def pca(data: np.ndarray, k: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(mean, k x D principal axes) of `data` by SVD."""
    mean = data.mean(axis=0)
    _, _, vt = np.linalg.svd(data - mean, full_matrices=False)
    return mean, vt[:k]


def plot_prior(
    prior: Prior, data: np.ndarray, out: str | os.PathLike, n: int = 2000, seed: int = 0
) -> Path:
    """Scatter data, learned-prior and N(0, I) samples on PC1/PC2; draw an ODE interpolation path.

    The path joins the data points at the 5th and 95th percentile of PC1, through noise and
    straight, so the figure shows whether the ODE path follows the data.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from densitydiff.prior.interpolate import interpolate

    mean, axes = pca(data, min(2, data.shape[1]))

    def project(z):
        p = (z - mean) @ axes.T
        return p if p.shape[1] == 2 else np.concatenate([p, np.zeros_like(p)], axis=1)

    learned, _ = sample_prior(prior, n, "ode", seed=seed)
    gaussian, _ = sample_prior(prior, n, "gaussian", seed=seed)
    score = project(data)[:, 0]
    order = np.argsort(score)  # ends at the 5th and 95th percentile of PC1 (not outliers)
    a, b = data[order[len(order) // 20]], data[order[-1 - len(order) // 20]]
    path_noise = interpolate(prior, a, b, 16, "noise")
    path_line = interpolate(prior, a, b, 16, "latent")

    fig, axs = plt.subplots(1, 2, figsize=(10, 4.8), sharex=True, sharey=True)
    d = project(data)
    for ax, (label, z, colour) in zip(
        axs, [("learned prior (ODE)", learned, "C1"), ("N(0, I) prior", gaussian, "C2")]
    ):
        ax.scatter(d[:, 0], d[:, 1], s=2, alpha=0.3, c="C0", label="data")
        s = project(z)
        ax.scatter(s[:, 0], s[:, 1], s=2, alpha=0.3, c=colour, label=label)
        ax.set_xlabel("PC1")
        ax.set_title(label)
    pn, pl_ = project(path_noise), project(path_line)
    axs[0].plot(pn[:, 0], pn[:, 1], "k.-", label="path through noise (ODE)")
    axs[0].plot(pl_[:, 0], pl_[:, 1], "r--", label="straight path")
    axs[0].set_ylabel("PC2")
    for ax in axs:
        ax.legend(loc="best", fontsize=7, markerscale=4)
    fig.tight_layout()
    out = Path(out)
    with atomic_path(out) as tmp:
        fig.savefig(tmp)
    plt.close(fig)
    return out
