"""`hetero analyze`: the latent space of a run at a glance, as cryoDRGN's `analyze` gives it.

PCA of z (principal axes by SVD of the centred latents), k-means centres (k-means++ seeding,
Lloyd iterations, the best of a few starts) and their volumes, volumes along PC1 from its 5th to
its 95th percentile, and one self-contained HTML page with the pictures.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from densitydiff.errors import InputError
from densitydiff.hetero.checkpoint import HeteroRun


def principal_axes(z) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean (d,), unit principal axes as rows (d, d), explained variance ratios (d,)) of z."""
    z = np.asarray(z, dtype=np.float64)
    mean = z.mean(0)
    _, s, vt = np.linalg.svd(z - mean, full_matrices=False)
    var = s**2
    total = var.sum()
    return mean, vt, var / total if total > 0 else var


def kmeans(
    z, k: int, seed: int = 0, n_init: int = 4, iters: int = 100
) -> tuple[np.ndarray, np.ndarray]:
    """(centres (k, d), labels (N,)): Lloyd's k-means from k-means++ seeds, best of `n_init`."""
    z = np.asarray(z, dtype=np.float64)
    if not 1 <= k <= len(z):
        raise InputError(f"--k {k} must be between 1 and the number of latents ({len(z)})")
    rng = np.random.default_rng(seed)
    best = (np.inf, None, None)
    for _ in range(n_init):
        centres = _plus_plus(z, k, rng)
        labels = np.zeros(len(z), dtype=np.int64)
        for step in range(iters):
            d2 = ((z[:, None, :] - centres[None]) ** 2).sum(-1)
            new = d2.argmin(1)
            if step and np.array_equal(new, labels):
                break
            labels = new
            for j in range(k):
                members = z[labels == j]
                # an emptied cluster takes the point farthest from its centre
                centres[j] = members.mean(0) if len(members) else z[d2.min(1).argmax()]
        inertia = float(((z - centres[labels]) ** 2).sum())
        if inertia < best[0]:
            best = (inertia, centres.copy(), labels.copy())
    return best[1], best[2]


def _plus_plus(z: np.ndarray, k: int, rng) -> np.ndarray:
    """k-means++ seeds (Arthur & Vassilvitskii 2007): each next seed drawn with p ~ d^2."""
    centres = [z[rng.integers(len(z))]]
    for _ in range(1, k):
        d2 = ((z[:, None, :] - np.array(centres)[None]) ** 2).sum(-1).min(1)
        p = d2 / d2.sum() if d2.sum() > 0 else None
        centres.append(z[rng.choice(len(z), p=p)])
    return np.array(centres)


def pc_path(z, points: int, pc: int = 0, lo: float = 5.0, hi: float = 95.0) -> np.ndarray:
    """`points` latents on principal axis `pc` through the mean, from the `lo`th to the `hi`th
    percentile of the projections (cryoDRGN's `analyze` PC traversal)."""
    if points < 2:
        raise InputError(f"--pc-points {points}: need at least 2 points along PC1")
    mean, axes, _ = principal_axes(z)
    proj = (np.asarray(z, np.float64) - mean) @ axes[pc]
    t = np.linspace(*np.percentile(proj, [lo, hi]), points)
    return (mean + t[:, None] * axes[pc]).astype(np.float32)


def _latent_figure(proj: np.ndarray, centres: np.ndarray, explained: np.ndarray):
    """PC1 vs PC2 (hexbin for many latents, else a scatter; a histogram when zdim is 1) with
    the k-means centres, and the explained variance per component."""
    from densitydiff.viz import _pyplot

    plt = _pyplot()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4.2))
    if proj.shape[1] >= 2:
        if len(proj) > 2000:
            ax.hexbin(proj[:, 0], proj[:, 1], gridsize=50, cmap="viridis", mincnt=1)
        else:
            ax.scatter(proj[:, 0], proj[:, 1], s=4, alpha=0.5)
        ax.scatter(centres[:, 0], centres[:, 1], c="red", marker="x", s=40, label="k-means")
        for i, (x, y) in enumerate(centres[:, :2]):
            ax.annotate(str(i), (x, y), fontsize=7, color="red")
        ax.set_ylabel(f"PC2 ({100 * explained[1]:.1f} %)")
    else:
        ax.hist(proj[:, 0], bins=50)
        ax.plot(centres[:, 0], np.zeros(len(centres)), "rx", label="k-means")
        ax.set_ylabel("latents")
    ax.set_xlabel(f"PC1 ({100 * explained[0]:.1f} %)")
    ax.legend(fontsize=8)
    n = np.arange(1, len(explained) + 1)
    bx.bar(n, explained)
    bx.plot(n, np.cumsum(explained), "k.-", label="cumulative")
    bx.set_xlabel("principal component")
    bx.set_ylabel("explained variance ratio")
    bx.set_xticks(n)
    bx.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _write_figure(fig, path: Path) -> Path:
    from densitydiff.viz import _pyplot

    fig.savefig(path, format="png", dpi=120)
    _pyplot().close(fig)
    return path


def _write_maps(run: HeteroRun, z: np.ndarray, folder: Path) -> dict[str, np.ndarray]:
    """folder/vol_000.mrc, ... one per row of z; returns {label: volume} for the slice figure."""
    from densitydiff.formats.maps import write_map
    from densitydiff.hetero.volume import as_map, decode_volume

    folder.mkdir()
    volumes = {}
    for i, row in enumerate(z):
        volume = decode_volume(run, row)
        write_map(folder / f"vol_{i:03d}.mrc", as_map(run, volume))
        volumes[f"vol_{i:03d}"] = volume
    return volumes


def analyze(
    run: HeteroRun,
    z,
    out_dir: str | os.PathLike,
    *,
    k: int = 8,
    pc_points: int = 10,
    seed: int = 0,
    record: dict | None = None,
) -> Path:
    """Write OUT_DIR whole: pca.png (PC1 vs PC2, explained variance), z_pca.txt, kmeans{k}/
    (centres.txt, labels.txt, vol_XXX.mrc, slices.png), pc1/ (z_values.txt, vol_XXX.mrc,
    slices.png), index.html and analyze.json (the run record, written last)."""
    from densitydiff.hetero.volume import check_latents
    from densitydiff.outputs import atomic_dir
    from densitydiff.report import STYLE, embed_png, settings_rows, settings_table
    from densitydiff.runrecord import write_record
    from densitydiff.viz import plot_slices

    z = check_latents(run, z)
    if len(z) < 2:
        raise InputError(f"need at least 2 latents for PCA, got {len(z)}")
    mean, axes, explained = principal_axes(z)
    proj = (z - mean) @ axes.T
    centres, labels = kmeans(z, k, seed=seed)
    path = pc_path(z, pc_points)
    with atomic_dir(out_dir, "analyze.json") as tmp:
        pca_png = _write_figure(_latent_figure(proj, (centres - mean) @ axes.T, explained),
                                tmp / "pca.png")  # fmt: skip
        np.savetxt(tmp / "z_pca.txt", proj)
        np.savetxt(tmp / "explained_variance.txt", explained)
        km = tmp / f"kmeans{k}"
        km_vols = _write_maps(run, centres.astype(np.float32), km)
        np.savetxt(km / "centres.txt", centres.astype(np.float32))
        np.savetxt(km / "labels.txt", labels, fmt="%d")
        km_png = plot_slices(km_vols, km / "slices.png", voxel_size=run.pixel_size)
        pc_vols = _write_maps(run, path, tmp / "pc1")
        np.savetxt(tmp / "pc1" / "z_values.txt", path)
        pc_png = plot_slices(pc_vols, tmp / "pc1" / "slices.png", voxel_size=run.pixel_size)
        counts = np.bincount(labels, minlength=k)
        settings = {"latents": len(z), "zdim": run.zdim, "k": k, "pc points": pc_points,
                    "seed": seed}  # fmt: skip
        title = "densitydiff hetero analyze"
        parts = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{title}</title><style>{STYLE}</style></head><body>",
            f"<h1>{title}</h1>",
            "<h2>Settings</h2>" + settings_table(settings_rows(settings, record)),
            "<h2>Principal components of z</h2>",
            f"<figure>{embed_png(pca_png, 'PC1 vs PC2 and explained variance')}<figcaption>"
            "Latents on their first two principal components, k-means centres marked (red); "
            "explained variance ratio per component.</figcaption></figure>",
            f"<h2>k-means, k = {k}</h2>",
            "<p>Latents per centre: " + ", ".join(f"{i}: {c}" for i, c in enumerate(counts))
            + f". Volumes in <code>kmeans{k}/vol_XXX.mrc</code>.</p>",
            f"<figure>{embed_png(km_png, 'central slices of the k-means centre volumes')}"
            "<figcaption>Central slices of the volume at each centre.</figcaption></figure>",
            "<h2>Along PC1</h2>",
            f"<figure>{embed_png(pc_png, 'central slices along PC1')}<figcaption>{pc_points} "
            "volumes from the 5th to the 95th percentile of PC1 (<code>pc1/vol_XXX.mrc</code>)."
            "</figcaption></figure>",
            "</body></html>",
        ]
        (tmp / "index.html").write_text("\n".join(parts), encoding="utf-8")
        info = {
            "n": len(z),
            "zdim": run.zdim,
            "k": k,
            "pc_points": pc_points,
            "explained_variance": [float(v) for v in explained],
            "kmeans_counts": [int(c) for c in counts],
            "pixel_size": run.pixel_size,
        }
        write_record(tmp / "analyze.json", {**(record or {}), **info})
    return Path(out_dir)


def latents_file(run_dir: str | os.PathLike, epoch: int | None = None) -> Path:
    """RUN/z.pkl, or RUN/z.N.pkl for `--epoch N`; InputError when it is not there."""
    run_dir = Path(run_dir)
    path = run_dir / ("z.pkl" if epoch is None else f"z.{epoch}.pkl")
    if not path.is_file():
        raise InputError(f"{path}: no such latents file in the run")
    return path


__all__ = ["analyze", "kmeans", "latents_file", "pc_path", "principal_axes"]
