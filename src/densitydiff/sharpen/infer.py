"""Sharpen a whole map with a trained model: resample, z-score, tile, run, blend, map back.

1. The map is Fourier-resampled onto the model's voxel size (skipped when it already has it).
2. It is z-scored over the whole grid, as the training store normalises each simulated grid.
3. Cubic tiles of the model's patch edge (overlap patch/2 by default) are cut lazily, with the
   map's mean solvent level outside the box (or wrapped around for a map that covers a whole
   crystallographic unit cell), run through the model in batches of `batch_size`, and blended
   with Gaussian weights that are zero within `margin` voxels of a tile's border
   (densitydiff.sharpen.tiling). Only the tile batch, the map and two or three map-sized
   accumulators (weighted sum, weights; running mean and M2 over samples) are ever held.
4. Tiles whose contributing region is all solvent (no normalised voxel above
   `solvent_threshold`, 1.0 by default) are not run: they contribute the normalised input.
   With `exact_tiles` (a local deterministic network: channel norm, no attention) every tile
   is run, the margin is the network's receptive radius and the tile edge four margins, so
   the blend equals one pass of the network over the whole (padded) map.
5. The blend is un-z-scored with the input's statistics and resampled back, so the result has
   the input's grid, voxel size, origin and intensity scale.

Generative models (DDPM, VAE) draw `samples` outputs; the result is their mean and per-voxel
standard deviation (Welford's running update). Overlapping tiles are sampled independently,
so in overlaps the blend averages several draws and the standard deviation there is somewhat
lower than in a tile's centre. DDPM samples are clipped in x0 to `clip_x0` (normalised units)
at every step; the default DEFAULT_CLIP_X0 holds every simulated map we measured (z-scored
2-4 Å maps of the packaged examples span -7.3 to 48.7).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from densitydiff.errors import InputError
from densitydiff.maps import DensityMap
from densitydiff.sharpen.checkpoint import Sharpener, load_sharpener
from densitydiff.sharpen.tiling import (
    accumulate,
    blend_weight,
    count_tiles,
    extract,
    tile_corners,
)

SAMPLERS = {"ddpm": "ddpm", "ddim": "ddim", "dpmpp": "dpmsolver++", "dpmsolver++": "dpmsolver++"}
DEFAULT_CLIP_X0 = (-10.0, 60.0)
SOLVENT_THRESHOLD = 1.0
MIN_EDGE = 8  # voxels per axis on the model's grid


@dataclass
class SharpenResult:
    """The sharpened map (mean over samples) and the per-voxel std, on the input's grid."""

    mean: DensityMap
    std: DensityMap | None
    seconds: float
    n_tiles: int
    n_skipped: int
    info: dict = field(default_factory=dict)


def _check_arguments(density, input_resolution, target_resolution, samples, batch_size, device):
    if not isinstance(density, DensityMap):
        raise InputError("sharpen_map needs a DensityMap")
    for name, r in (("input", input_resolution), ("target", target_resolution)):
        if r is None or not np.isfinite(r) or r <= 0:
            raise InputError(f"the {name} resolution must be a positive number of Å, got {r!r}")
    if target_resolution >= input_resolution:
        raise InputError(
            f"target resolution {target_resolution} Å must be finer (smaller) than the input "
            f"resolution {input_resolution} Å"
        )
    if int(samples) < 1:
        raise InputError(f"--samples must be at least 1, got {samples}")
    if int(batch_size) < 1:
        raise InputError(f"--batch-size must be at least 1, got {batch_size}")
    if not np.all(np.isfinite(density.array)):
        raise InputError("the map holds NaN or infinite values")
    if device not in ("cpu", "cuda") and not str(device).startswith("cuda:"):
        raise InputError(f"unknown device {device!r}: use cpu or cuda")
    if str(device).startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise InputError("--device cuda: no CUDA device is available; use --device cpu")
    density.require_orthogonal("sharpening")


def covers_unit_cell(density: DensityMap) -> bool:
    """True when the map holds exactly one whole unit cell (then it is periodic)."""
    if density.unit_cell is None:
        return False
    cell_zyx = np.asarray(density.unit_cell[:3], float)[::-1]
    return bool(np.allclose(np.asarray(density.extent), cell_zyx, rtol=1e-4, atol=1e-3))


def _tiling(sharpener: Sharpener, tile, overlap, margin) -> tuple[int, int, int]:
    """(tile edge, stride, margin) in voxels; stride a multiple of the U-Net's factor."""
    f = sharpener.downsampling
    tile = int(tile or sharpener.patch)
    if tile <= 0 or tile % f:
        raise InputError(f"tile edge {tile} must be a positive multiple of {f}")
    margin = tile // 8 if margin is None else int(margin)
    overlap = tile // 2 if overlap is None else int(overlap)
    stride = ((tile - overlap) // f) * f
    if margin < 0 or stride < f or stride > tile - 2 * margin:
        raise InputError(
            f"tile overlap {overlap} with margin {margin} does not fit a {tile}-voxel tile: "
            f"need 2 * margin <= overlap < {tile - f + 1}"
        )
    return tile, stride, margin


def _exact_tiling(sharpener: Sharpener, tile) -> tuple[int, int, int]:
    """(tile, stride, margin) with margin >= the network's receptive radius (tiles are exact)."""
    net = getattr(sharpener.model, "net", None)
    if sharpener.is_generative or net is None or not getattr(net, "is_local", False):
        raise InputError(
            f"exact tiles need a deterministic local network (channel norm, no attention); "
            f"model {sharpener.name!r} ({sharpener.kind}) has statistics or attention over the "
            "whole tile"
        )
    f = sharpener.downsampling
    margin = -(-net.receptive_radius() // f) * f
    tile = int(tile) if tile else 4 * margin
    if tile % f or tile - 2 * margin < f:
        raise InputError(
            f"tile edge {tile} must be a multiple of {f} and at least {2 * margin + f} "
            f"(two margins of {margin}, the receptive radius, plus {f})"
        )
    return tile, tile - 2 * margin, margin


def _resample_to(density: DensityMap, voxel: float) -> tuple[np.ndarray, bool]:
    if np.allclose(density.voxel_size, voxel, rtol=1e-4, atol=0):
        return density.array, False
    from densitydiff.filters import resample

    return resample(density, voxel).array, True


def _back_to_input(array: np.ndarray, work_voxel: float, density: DensityMap) -> np.ndarray:
    """Resample from the model grid onto the input's voxel size; fix the box at its far end."""
    from densitydiff.filters import resample

    back = resample(DensityMap(array, work_voxel, density.origin), density.voxel_size).array
    out = np.zeros(density.shape, np.float32)
    n = tuple(min(a, b) for a, b in zip(back.shape, density.shape))
    out[: n[0], : n[1], : n[2]] = back[: n[0], : n[1], : n[2]]
    for axis in range(3):  # a box one voxel short (rounding): repeat the last plane
        if back.shape[axis] < density.shape[axis]:
            last = np.take(out, [n[axis] - 1], axis=axis)
            idx = [slice(None)] * 3
            idx[axis] = slice(n[axis], None)
            out[tuple(idx)] = last
    return out


def _model_kwargs(sharpener: Sharpener, sampler, steps, clip_x0) -> dict:
    if sharpener.kind != "ddpm":
        return {}
    config_clip = sharpener.config.diffusion.clip_x0
    if isinstance(clip_x0, str) and clip_x0 == "auto":
        clip_x0 = tuple(config_clip) if config_clip is not None else DEFAULT_CLIP_X0
    return {
        "sampler": sampler or sharpener.config.diffusion.sampler,
        "steps": int(steps or sharpener.config.diffusion.sample_steps),
        "clip_x0": None if clip_x0 is None else (float(clip_x0[0]), float(clip_x0[1])),
    }


def sharpen_map(
    density: DensityMap,
    sharpener: Sharpener | str | Path | None = None,
    *,
    input_resolution: float,
    target_resolution: float,
    sampler: str | None = None,
    steps: int | None = None,
    samples: int = 1,
    batch_size: int = 4,
    device: str = "cpu",
    seed: int = 0,
    overlap: int | None = None,
    progress: bool = False,
    tile: int | None = None,
    margin: int | None = None,
    solvent_threshold: float | None = SOLVENT_THRESHOLD,
    clip_x0: tuple[float, float] | None | str = "auto",
    exact_tiles: bool = False,
) -> SharpenResult:
    """Sharpen `density` tile by tile; the result lies on the input's grid and scale.

    `exact_tiles` (local deterministic models only) makes the result equal one pass over the
    whole map; it runs every tile (no solvent skipping), ignores `overlap` and `margin`, and
    runs as many of its larger tiles per batch as hold the voxels of `batch_size` patches.
    """
    import torch

    start = time.perf_counter()
    _check_arguments(density, input_resolution, target_resolution, samples, batch_size, device)
    if sampler is not None and sampler not in SAMPLERS:
        raise InputError(f"unknown sampler {sampler!r}: use ddpm, ddim or dpmpp")
    if steps is not None and int(steps) < 1:
        raise InputError(f"--steps must be at least 1, got {steps}")
    sharpener = load_sharpener(sharpener, device=device)
    voxel = float(sharpener.voxel_size)
    if target_resolution < 2 * voxel - 1e-6:
        raise InputError(
            f"target resolution {target_resolution} Å is finer than the model's grid allows "
            f"(Nyquist {2 * voxel:g} Å at {voxel:g} Å voxels)"
        )
    batch_size = int(batch_size)
    if exact_tiles:
        tile, stride, margin = _exact_tiling(sharpener, tile)
        solvent_threshold = None
        # batch_size counts model-patch tiles: hold as many voxels per batch with larger tiles
        batch_size = max(1, batch_size * sharpener.patch**3 // tile**3)
    else:
        tile, stride, margin = _tiling(sharpener, tile, overlap, margin)
    periodic = covers_unit_cell(density)
    work, resampled = _resample_to(density, voxel)
    if min(work.shape) < MIN_EDGE:
        raise InputError(
            f"the map is too small: {work.shape} voxels at {voxel:g} Å (z, y, x); "
            f"sharpening needs at least {MIN_EDGE} voxels per axis"
        )
    from densitydiff.filters import zscore

    z, (mean, std) = zscore(work)
    del work
    fill = float(np.median(z[z < np.percentile(z, 50)])) if not periodic else 0.0
    samples = int(samples)
    draws = samples if sharpener.is_generative else 1
    kwargs = _model_kwargs(sharpener, SAMPLERS.get(sampler) if sampler else None, steps, clip_x0)
    weight = blend_weight(tile, margin)
    shape = z.shape
    n_tiles = count_tiles(shape, tile, stride, margin)

    # which tiles run (not all solvent in their contributing region), and the weight sum
    weight_sum = np.zeros(shape, np.float32)
    skipped: set[tuple[int, int, int]] = set()
    for corner in tile_corners(shape, tile, stride, margin):
        accumulate(weight_sum, np.ones_like(weight), weight, corner, periodic)
        if solvent_threshold is not None:
            block = extract(z, corner, tile, fill, periodic)
            if not np.any(block[weight > 0] > solvent_threshold):
                skipped.add(corner)

    from tqdm import tqdm

    bar = tqdm(total=n_tiles * draws, disable=not progress, unit="tile", desc="sharpen")
    batch_size = max(1, min(batch_size, n_tiles))  # a batch larger than the map holds nothing
    res_in = torch.full((batch_size,), float(input_resolution), device=device)
    res_out = torch.full((batch_size,), float(target_resolution), device=device)
    run_mean = np.zeros(shape, np.float32) if draws > 1 else None
    run_m2 = np.zeros(shape, np.float32) if draws > 1 else None
    total = np.zeros(shape, np.float32)
    for s in range(draws):
        total[...] = 0.0
        batch: list[tuple[int, int, int]] = []
        n_batch = 0

        def flush(batch, n_batch, s=s, total=total):
            blocks = np.stack([extract(z, c, tile, fill, periodic) for c in batch])[:, None]
            x = torch.from_numpy(blocks).to(device)
            g = torch.Generator(device=device).manual_seed(
                (int(seed) * 1_000_003 + s) * 1_000_003 + n_batch
            )
            extra = dict(kwargs, generator=g) if sharpener.is_generative else {}
            with torch.no_grad():
                out = sharpener.model.sharpen(
                    x, res_in[: len(batch)], res_out[: len(batch)], **extra
                )
            out = out.float().cpu().numpy()[:, 0]
            for c, o in zip(batch, out):
                accumulate(total, o, weight, c, periodic)
            bar.update(len(batch))

        for corner in tile_corners(shape, tile, stride, margin):
            if corner in skipped:
                accumulate(
                    total, extract(z, corner, tile, fill, periodic), weight, corner, periodic
                )
                bar.update(1)
                continue
            batch.append(corner)
            if len(batch) == batch_size:
                flush(batch, n_batch)
                batch, n_batch = [], n_batch + 1
        if batch:
            flush(batch, n_batch)
        total /= weight_sum
        if run_mean is not None:  # Welford's update of the mean and M2 over draws
            delta = total - run_mean
            run_mean += delta / (s + 1)
            run_m2 += delta * (total - run_mean)
    bar.close()

    blended = run_mean if run_mean is not None else total
    out = blended * std + mean  # unzscore with the input's statistics
    std_map = None
    if samples > 1:
        spread = np.sqrt(run_m2 / (draws - 1)) * std if run_m2 is not None else np.zeros(shape)
        std_map = spread.astype(np.float32)
    if resampled:
        out = _back_to_input(out.astype(np.float32), voxel, density)
        if std_map is not None:
            std_map = np.maximum(_back_to_input(std_map, voxel, density), 0.0)
    info = {
        "model": sharpener.name,
        "kind": sharpener.kind,
        "model_voxel_size": voxel,
        "resampled": resampled,
        "periodic": periodic,
        "tile": tile,
        "stride": stride,
        "margin": margin,
        "exact_tiles": bool(exact_tiles),
        "batch_size": batch_size,
        "solvent_threshold": solvent_threshold,
        "input_mean": mean,
        "input_std": std,
        "samples": samples,
        "draws": draws,
        **{k: v for k, v in kwargs.items() if k != "generator"},
    }
    if samples > 1 and not sharpener.is_generative:
        info["note"] = f"{sharpener.kind} is deterministic: one pass, std is 0"
    return SharpenResult(
        mean=density.with_array(out.astype(np.float32)),
        std=density.with_array(std_map) if std_map is not None else None,
        seconds=time.perf_counter() - start,
        n_tiles=n_tiles,
        n_skipped=len(skipped),
        info=info,
    )
