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


_LINESTYLES = ("-", "--", "-.", ":")
_NICE_RESOLUTIONS = (100, 50, 30, 20, 15, 10, 8, 6, 5, 4, 3.5, 3, 2.5, 2, 1.8, 1.6, 1.5, 1.4, 1.2,
                     1.0, 0.8)  # fmt: skip
THRESHOLDS = (0.5, 0.143)


def _crossing(curve, threshold: float) -> float | None:
    from densitydiff import metrics

    try:
        return metrics.resolution_at(curve, threshold)
    except Exception:  # noqa: BLE001 - a curve too short to cross: no value in the legend
        return None


def _legend_label(label: str, curve) -> str:
    parts = []
    for t in THRESHOLDS:
        r = _crossing(curve, t)
        parts.append(f"{t:g}: {r:.2f} Å" if r is not None else f"{t:g}: n/a")
    return f"{label} ({', '.join(parts)})"


def fsc_figure(curves: Mapping[str, object]):
    """The FSC figure (matplotlib Figure): curves against spatial frequency (1/Å, bottom axis)
    with resolution in Å on the top axis, labelled 0.5 and 0.143 lines, the crossings in the
    legend, y-limits that hold every curve, and line styles that keep overlapping curves seen.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    lo, hi, f_max = -0.1, 1.05, 0.0
    n = len(curves)
    for i, (label, curve) in enumerate(curves.items()):
        f = np.asarray(curve.frequencies, float)
        c = np.asarray(curve.fsc, float)
        # first curves drawn widest, later ones narrower and dashed: all stay visible on top
        ax.plot(f, c, ls=_LINESTYLES[i % len(_LINESTYLES)], lw=max(1.0, 1.2 + 0.6 * (n - 1 - i)),
                alpha=0.9, label=_legend_label(label, curve), zorder=3 + i)  # fmt: skip
        lo, hi = min(lo, float(c.min()) - 0.05), max(hi, float(c.max()) + 0.05)
        f_max = max(f_max, float(f.max()))
    for level, colour in zip(THRESHOLDS, ("0.45", "0.25")):
        ax.axhline(level, color=colour, lw=0.9, ls=(0, (4, 3)), zorder=1,
                   label=f"FSC = {level:g}")  # fmt: skip
        ax.annotate(f"{level:g}", xy=(1.0, level), xycoords=("axes fraction", "data"),
                    xytext=(3, 0), textcoords="offset points", va="center", fontsize=8,
                    color=colour)  # fmt: skip
    ax.set_xlim(0.0, f_max if f_max > 0 else 1.0)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("spatial frequency (1/Å)")
    ax.set_ylabel("FSC")
    top = ax.twiny()  # resolution ticks (Å) at their frequencies, above the 1/Å axis
    top.set_xlim(ax.get_xlim())
    width = ax.get_xlim()[1]
    shown: list[float] = []
    for r in sorted(_NICE_RESOLUTIONS):  # finest first; keep ticks >= 9 % of the axis apart
        if 1.0 / r <= width + 1e-12 and all(1.0 / q - 1.0 / r >= 0.09 * width for q in shown):
            shown.append(r)
    shown.sort(reverse=True)
    top.set_xticks([1.0 / r for r in shown], labels=[f"{r:g}" for r in shown])
    top.set_xlabel("resolution (Å)")
    ax.grid(alpha=0.25, lw=0.5)
    ax.legend(fontsize=7, loc="best", framealpha=0.9)
    fig.tight_layout()
    return fig


def plot_fsc(curves: Mapping[str, object], path: str | os.PathLike) -> Path:
    """Write `fsc_figure(curves)` (label -> FSCCurve) as a PNG, atomically."""
    plt = _pyplot()
    fig = fsc_figure(curves)
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
