"""Figures (matplotlib, Agg backend): FSC curves and central-slice montages, written atomically."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from densitydiff.outputs import atomic_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_fsc(curves: Mapping[str, object], path: str | os.PathLike) -> Path:
    """Plot FSC curves (label -> FSCCurve) against spatial frequency, with 0.5 and 0.143 lines."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, curve in curves.items():
        ax.plot(curve.frequencies, curve.fsc, label=label)
    for level in (0.5, 0.143):
        ax.axhline(level, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("spatial frequency (1/Å)")
    ax.set_ylabel("FSC")
    ax.set_ylim(-0.1, 1.05)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return Path(path)


def plot_slices(volumes: Mapping[str, np.ndarray], path: str | os.PathLike) -> Path:
    """Central z, y and x slices of each volume, one row per volume."""
    plt = _pyplot()
    n = len(volumes)
    fig, axes = plt.subplots(n, 3, figsize=(7.5, 2.5 * n), squeeze=False)
    for row, (label, vol) in enumerate(volumes.items()):
        centre = [s // 2 for s in vol.shape]
        slices = (vol[centre[0]], vol[:, centre[1]], vol[:, :, centre[2]])
        for col, (img, axis) in enumerate(zip(slices, "zyx")):
            ax = axes[row, col]
            ax.imshow(img, cmap="gray", origin="lower")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{label} ({axis} = centre)", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return Path(path)
