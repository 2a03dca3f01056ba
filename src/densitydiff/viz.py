"""Figures (matplotlib, Agg backend): FSC curves and central-slice montages, written atomically."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
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


_NICE_LENGTHS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


def _scale_length(width: float) -> float:
    """The largest 1-2-5 length at most a quarter of `width` (the scale bar's length)."""
    fits = [v for v in _NICE_LENGTHS if v <= width / 4]
    return float(fits[-1]) if fits else width / 4


def slices_figure(volumes: Mapping[str, np.ndarray], voxel_size: float | None = None):
    """Central z, y and x slices, one row per volume (matplotlib Figure).

    Each row has one grey scale for its three panels (the 0.5-99.5 percentile of the row's
    slices) and its colour bar, so panels of a row compare directly; titles give the slice
    index; each panel has the same scale bar (Å with `voxel_size`, else voxels). Small maps are
    drawn with bilinear interpolation, not as blocks of pixels.
    """
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    plt = _pyplot()
    n = len(volumes)
    fig, axes = plt.subplots(
        n, 4, figsize=(9.0, 2.6 * n), squeeze=False,
        gridspec_kw={"width_ratios": [1, 1, 1, 0.06]},
    )  # fmt: skip
    step = float(voxel_size) if voxel_size else 1.0
    unit = "Å" if voxel_size else "vox"
    length = _scale_length(min(min(np.shape(v)) for v in volumes.values()) * step)  # one for all
    for row, (label, vol) in enumerate(volumes.items()):
        vol = np.asarray(vol, dtype=np.float32)
        centre = [s // 2 for s in vol.shape]
        slices = (vol[centre[0]], vol[:, centre[1]], vol[:, :, centre[2]])
        values = np.concatenate([s.ravel() for s in slices])
        lo, hi = (float(v) for v in np.percentile(values, [0.5, 99.5]))
        if not hi > lo:
            lo, hi = lo - 0.5, lo + 0.5
        image = None
        for col, (img, axis, index) in enumerate(zip(slices, "zyx", centre)):
            ax = axes[row, col]
            image = ax.imshow(img, cmap="gray", origin="lower", vmin=lo, vmax=hi,
                              interpolation="bilinear")  # fmt: skip
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{label}: {axis} = {index}", fontsize=8)
            bar = AnchoredSizeBar(ax.transData, length / step, f"{length:g} {unit}", "lower right",
                                  pad=0.3, color="yellow", frameon=False, size_vertical=0.4,
                                  fontproperties={"size": 7})  # fmt: skip
            ax.add_artist(bar)
        cbar = fig.colorbar(image, cax=axes[row, 3])
        cbar.ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def plot_slices(
    volumes: Mapping[str, np.ndarray], path: str | os.PathLike, voxel_size: float | None = None
) -> Path:
    """Write `slices_figure(volumes, voxel_size)` as a PNG (150 dpi), atomically."""
    plt = _pyplot()
    fig = slices_figure(volumes, voxel_size)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=150)
    plt.close(fig)
    return Path(path)


def plot_strip(
    slices: Sequence[np.ndarray], path: str | os.PathLike, voxel_size: float | None = None
) -> Path:
    """Write the 2-D slices side by side in one row, one grey scale for all (the 0.5-99.5
    percentile), numbered from 0 (a path of volumes at a glance), as a PNG, atomically."""
    plt = _pyplot()
    n = len(slices)
    fig, axes = plt.subplots(1, n, figsize=(1.6 * n, 1.9), squeeze=False)
    lo, hi = (float(v) for v in np.percentile(np.concatenate([np.ravel(s) for s in slices]),
                                                 [0.5, 99.5]))  # fmt: skip
    if not hi > lo:
        lo, hi = lo - 0.5, lo + 0.5
    for i, (ax, img) in enumerate(zip(axes[0], slices)):
        ax.imshow(np.asarray(img), cmap="gray", origin="lower", vmin=lo, vmax=hi,
                  interpolation="bilinear")  # fmt: skip
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(str(i), fontsize=8)
    if voxel_size:
        axes[0, 0].set_xlabel(f"box {np.shape(slices[0])[-1] * voxel_size:g} Å", fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return Path(path)
