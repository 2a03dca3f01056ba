"""Sharpen a whole map with a trained model: resample, z-score, tile, run, blend, map back.

1. The map is Fourier-resampled onto the model's voxel size (skipped when it already has it).
2. It is z-scored with the mean and std over its molecule's box (`filters.molecule_box`: the
   density's bounding box plus 9 Å), the box the training store z-scores each simulated map
   over, so a molecule in a large solvent box is seen at the scale the model was trained on.
3. Cubic tiles of the model's patch edge (overlap patch/2 by default) are cut lazily, with the
   map's mean solvent level outside the box (or wrapped around for a map that covers a whole
   crystallographic unit cell), run through the model in batches of `batch_size`, and blended
   with Gaussian weights that are zero within `margin` voxels of a tile's border
   (densitydiff.sharpen.tiling). All draws of a tile batch run together (refine computes its
   prediction once for them). Only the tile batch, the map and map-sized accumulators (the
   weights' sum, one weighted sum per draw, the mean and M2 over draws) are ever held: memory
   grows with the map and the number of samples, not beyond.
4. Tiles whose contributing region is all solvent (no normalised voxel above
   `solvent_threshold`, 1.0 by default) are not run: they contribute the normalised input
   through the model's response to solvent, a x z + b fitted on one skipped tile that is run
   (`solvent_response`), so they give what running them would (the level, and how much of
   the solvent's noise the model keeps) and nothing steps where run and skipped tiles meet.
   With `exact_tiles` (a local deterministic network: channel norm, no attention) every tile
   is run, the margin is the network's receptive radius and the tile edge four margins, so
   the blend equals one pass of the network over the whole (padded) map.
5. The blend is un-z-scored with the input's statistics and resampled back, so the result has
   the input's grid, voxel size, origin and intensity scale.

The steps are separate functions, in the manner of nnU-Net's sliding-window inference:
`to_model_grid` and `normalise` (1-2), `choose_tiling` and `plan_tiles` (3-4: a TilePlan of
corners, weights and skipped tiles), `tile_predictor` and `blend_draws` (run the tiles in
batches, blend every draw), `accumulate_draws` (mean and spread over draws), `restore_grid` (5).
`sharpen_map` calls them in that order; `sharpen_file` wraps it for files and the run record.

Generative models (DDPM, VAE) draw `samples` outputs; the result is their mean and per-voxel
standard deviation (Welford's running update). Overlapping tiles are sampled independently,
so in overlaps the blend averages several draws and the standard deviation there is somewhat
lower than in a tile's centre. DDPM samples are clipped in x0 to `clip_x0` (normalised units)
at every step; the default DEFAULT_CLIP_X0 holds every simulated map we measured (z-scored
2-4 Å maps of the packaged examples span -7.3 to 48.7).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from densitydiff.devices import check_device
from densitydiff.diffusion.sampling import Sampling, check_steps, sampler_name
from densitydiff.errors import InputError
from densitydiff.maps import DensityMap
from densitydiff.sharpen.checkpoint import SharpenCheckpoint, load_sharpener
from densitydiff.sharpen.tiling import (
    accumulate,
    blend_weight,
    extract,
    tile_corners,
)

DEFAULT_CLIP_X0 = (-10.0, 60.0)
SOLVENT_THRESHOLD = 1.0
MIN_EDGE = 8  # voxels per axis on the model's grid
SOLVENT_PROBE = -1  # the batch index (noise seed) of the solvent_response tile
LOCAL_TILE = 64  # default tile edge of local networks (voxels)
# tiles per model call when not given: on CPU one 64^3 tile per call is the fastest per tile
# (0.55 s against 0.65 s in calls of 4 for refine's network on 2 cores, bench/tile_batch.py);
# a GPU wants batches
CPU_BATCH, GPU_BATCH = 1, 4
Corner = tuple[int, int, int]


@dataclass
class SharpenResult:
    """The sharpened map (mean over samples) and the per-voxel std, on the input's grid."""

    mean: DensityMap
    std: DensityMap | None
    seconds: float
    n_tiles: int
    n_skipped: int
    info: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Tiling:
    """Tile edge, stride and blend margin (voxels), tiles per batch, the solvent threshold."""

    tile: int
    stride: int
    margin: int
    batch_size: int
    solvent_threshold: float | None


@dataclass
class TilePlan:
    """Where the tiles go on the model's grid and how they blend back.

    `weight` is one tile's blend weight, `weight_sum` their sum over the map, `skipped` the
    corners of all-solvent tiles (they contribute the normalised input), `fill` the value
    outside the box (0 for a periodic map, whose tiles wrap around).
    """

    tiling: Tiling
    shape: tuple[int, int, int]
    periodic: bool
    fill: float
    weight: np.ndarray
    weight_sum: np.ndarray
    corners: list[Corner]
    skipped: set[Corner]

    @property
    def n_tiles(self) -> int:
        return len(self.corners)

    @property
    def tile(self) -> int:
        return self.tiling.tile


def default_batch_size(device: str, batch_size: int | None) -> int:
    """`batch_size` as given, else CPU_BATCH on the CPU and GPU_BATCH on an accelerator."""
    if batch_size is not None:
        return int(batch_size)
    return CPU_BATCH if str(device).startswith("cpu") else GPU_BATCH


def _check_arguments(density, input_resolution, target_resolution, samples, batch_size):
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
    density.require_orthogonal("sharpening")


def guard_warnings(
    checkpoint: SharpenCheckpoint, input_resolution: float, target_resolution: float,
    density: DensityMap,
) -> list[str]:  # fmt: skip
    """What the user should know before trusting the output (docs/sharpen.md, "Guards"): a
    target finer than the output grid holds (2 x its voxel size), resolutions outside the
    model's training range (SharpenCheckpoint.training_range)."""
    out = []
    nyquist = 2.0 * float(max(density.voxel_size))
    if target_resolution < nyquist - 1e-6:
        out.append(
            f"target resolution {target_resolution:g} Å is finer than the output grid holds "
            f"(2 x voxel size = {nyquist:g} Å): the output keeps the input's grid, so it holds "
            f"{nyquist:g} Å at best; resample the map to a finer voxel size first "
            "(densitydiff.filters.resample) to keep more"
        )
    known = checkpoint.training_range
    if known is not None:
        for what, r in (("input", input_resolution), ("target", target_resolution)):
            lo, hi = known[what]
            if not lo - 1e-6 <= r <= hi + 1e-6:
                out.append(
                    f"{what} resolution {r:g} Å lies outside the model's training range "
                    f"({lo:g}-{hi:g} Å): the output is an extrapolation"
                )
    return out


def covers_unit_cell(density: DensityMap) -> bool:
    """True when the map holds exactly one whole unit cell (then it is periodic)."""
    if density.unit_cell is None:
        return False
    cell_zyx = np.asarray(density.unit_cell[:3], float)[::-1]
    return bool(np.allclose(np.asarray(density.extent), cell_zyx, rtol=1e-4, atol=1e-3))


def resolve_sampling(
    model,
    sampler: str | None,
    steps: int | None,
    clip_x0: tuple[float, float] | None | str,
    antithetic: bool | None = None,
) -> Sampling | None:
    """The model's default Sampling with the caller's choices on top (None: not a diffusion).

    clip_x0: "auto" (the model's bounds, else DEFAULT_CLIP_X0), None (the model's bounds, if
    any) or (lo, hi). antithetic: None keeps the model's.
    """
    default = model.sampling
    if default is None:
        return None
    if isinstance(clip_x0, str) and clip_x0 == "auto":
        clip_x0 = default.clip_x0 if default.clip_x0 is not None else DEFAULT_CLIP_X0
    elif clip_x0 is None:
        clip_x0 = default.clip_x0
    pairs = default.antithetic if antithetic is None else bool(antithetic)
    return Sampling(sampler or default.sampler, steps or default.steps, clip_x0, pairs)


def _tiling(checkpoint: SharpenCheckpoint, tile, overlap, margin) -> tuple[int, int, int]:
    """(tile edge, stride, margin) in voxels; stride a multiple of the U-Net's factor.

    Defaults: the training patch, half of it overlapping. A local network (no tile-wide
    statistics or attention) sees the same thing in a larger tile, so it gets LOCAL_TILE with
    only its two margins overlapping: each voxel is computed ~2.4x instead of 8x.
    """
    f = checkpoint.downsampling
    local = bool(getattr(checkpoint.model, "is_local", False))
    default = max(int(checkpoint.patch), LOCAL_TILE) if local else int(checkpoint.patch)
    tile = int(tile or default)
    if tile <= 0 or tile % f:
        raise InputError(f"tile edge {tile} must be a positive multiple of {f}")
    margin = tile // 8 if margin is None else int(margin)
    if overlap is None:
        overlap = max(2 * margin, f) if local else tile // 2
    overlap = int(overlap)
    stride = ((tile - overlap) // f) * f
    if margin < 0 or stride < f or stride > tile - 2 * margin:
        raise InputError(
            f"tile overlap {overlap} with margin {margin} does not fit a {tile}-voxel tile: "
            f"need 2 * margin <= overlap < {tile - f + 1}"
        )
    return tile, stride, margin


def _exact_tiling(checkpoint: SharpenCheckpoint, tile) -> tuple[int, int, int]:
    """(tile, stride, margin) with margin >= the network's receptive radius (tiles are exact)."""
    model = checkpoint.model
    if model.is_generative or not model.is_local:
        raise InputError(
            f"exact tiles need a deterministic local network (channel norm, no attention); "
            f"model {checkpoint.name!r} ({checkpoint.kind}) has statistics or attention over "
            "the whole tile"
        )
    f = checkpoint.downsampling
    margin = -(-model.receptive_radius() // f) * f
    tile = int(tile) if tile else 4 * margin
    if tile % f or tile - 2 * margin < f:
        raise InputError(
            f"tile edge {tile} must be a multiple of {f} and at least {2 * margin + f} "
            f"(two margins of {margin}, the receptive radius, plus {f})"
        )
    return tile, tile - 2 * margin, margin


def to_model_grid(density: DensityMap, voxel: float) -> tuple[DensityMap, bool]:
    """The map Fourier-resampled onto the model's voxel size (as is when it already has it)."""
    if np.allclose(density.voxel_size, voxel, rtol=1e-4, atol=0):
        work, resampled = density, False
    else:
        from densitydiff.filters import resample

        work, resampled = resample(density, voxel), True
    if min(work.shape) < MIN_EDGE:
        raise InputError(
            f"the map is too small: {work.shape} voxels at {voxel:g} Å (z, y, x); "
            f"sharpening needs at least {MIN_EDGE} voxels per axis"
        )
    return work, resampled


def normalise(
    density: DensityMap, periodic: bool = False
) -> tuple[DensityMap, tuple[float, float]]:
    """The map z-scored with the mean and std of its molecule's box, and (mean, std).

    The training store z-scores each map over its box, the atoms plus a few Å; the mean and std
    here come from the same box found in the map (filters.molecule_box), so a molecule in a
    box of mostly solvent gets the scale its training counterparts had. A map that covers a
    whole unit cell (`periodic`) has no solvent box: its whole grid is used.
    """
    from densitydiff.filters import molecule_box, zscore

    box = None if periodic else molecule_box(density.array, density.voxel_size)
    z, stats = zscore(density.array, box)
    return density.with_array(z), stats


def choose_tiling(
    checkpoint: SharpenCheckpoint,
    *,
    tile: int | None = None,
    overlap: int | None = None,
    margin: int | None = None,
    batch_size: int = 4,
    solvent_threshold: float | None = SOLVENT_THRESHOLD,
    exact_tiles: bool = False,
) -> Tiling:
    """The tiling for this model: its patch with overlap and margin, or exact tiles."""
    batch_size = int(batch_size)
    if not exact_tiles:
        return Tiling(*_tiling(checkpoint, tile, overlap, margin), batch_size, solvent_threshold)
    tile, stride, margin = _exact_tiling(checkpoint, tile)
    # batch_size counts model-patch tiles: hold as many voxels per batch with larger tiles
    batch_size = max(1, batch_size * checkpoint.patch**3 // tile**3)
    return Tiling(tile, stride, margin, batch_size, None)


def plan_tiles(z: np.ndarray, tiling: Tiling, periodic: bool) -> TilePlan:
    """Tile corners, blend weights and the all-solvent tiles to skip, on the normalised map."""
    tile, threshold = tiling.tile, tiling.solvent_threshold
    fill = float(np.median(z[z < np.percentile(z, 50)])) if not periodic else 0.0
    weight = blend_weight(tile, tiling.margin)
    shape = tuple(z.shape)
    corners = list(tile_corners(shape, tile, tiling.stride, tiling.margin))
    weight_sum = np.zeros(shape, np.float32)
    skipped: set[Corner] = set()
    for corner in corners:
        accumulate(weight_sum, np.ones_like(weight), weight, corner, periodic)
        if threshold is not None:
            block = extract(z, corner, tile, fill, periodic)
            if not np.any(block[weight > 0] > threshold):
                skipped.add(corner)
    return TilePlan(tiling, shape, periodic, fill, weight, weight_sum, corners, skipped)


Predict = Callable[[np.ndarray, int], np.ndarray]
"""predict(blocks (B, P, P, P), batch index) -> draws (S, B, P, P, P), normalised space."""


def tile_predictor(
    checkpoint: SharpenCheckpoint,
    sampling: Sampling | None,
    input_resolution: float,
    target_resolution: float,
    *,
    draws: int,
    seed: int,
    device: str,
) -> Predict:
    """Run the model on a batch of tiles, `draws` times; each batch of each draw has its own
    seeded noise (draw s of a batch is the same whatever `draws` is)."""
    import torch

    def predict(blocks: np.ndarray, n_batch: int) -> np.ndarray:
        x = torch.from_numpy(blocks[:, None]).to(device)
        b = x.shape[0]
        res_in = torch.full((b,), float(input_resolution), device=device)
        res_out = torch.full((b,), float(target_resolution), device=device)
        gens = [
            torch.Generator(device=device).manual_seed(
                (int(seed) * 1_000_003 + s) * 1_000_003 + n_batch
            )
            for s in range(draws)
        ]
        with torch.no_grad():
            out = checkpoint.model.sharpen_draws(x, res_in, res_out, generators=gens,
                                                 sampling=sampling)  # fmt: skip
        return out.float().cpu().numpy()[:, :, 0]

    return predict


def solvent_response(plan: TilePlan, z: np.ndarray, predict: Predict) -> tuple[float, float]:
    """(a, b): the model's response to solvent, out ~ a z + b by least squares (means over the
    draws, where the blend weight is non-zero), on one skipped tile that is run (the middle one
    of the sorted skipped corners): an affine model's skipped tiles come out exact, and a
    network that flattens noise in solvent gets a ~ 0, its solvent level."""
    corners = sorted(plan.skipped)
    block = extract(z, corners[len(corners) // 2], plan.tile, plan.fill, plan.periodic)
    out = predict(block[None], SOLVENT_PROBE)[:, 0].mean(axis=0)
    keep = plan.weight > 0
    x, y = block[keep].astype(np.float64), out[keep].astype(np.float64)
    var = float(x.var())
    a = float(((x - x.mean()) * (y - y.mean())).mean() / var) if var > 1e-12 else 0.0
    return a, float(y.mean() - a * x.mean())


def blend_draws(
    plan: TilePlan, z: np.ndarray, predict: Predict, draws: int, on_tiles=None
) -> list[np.ndarray]:
    """Every draw over the whole map, tile batch by tile batch (all draws of a batch at once,
    so work they share is done once): run, blend, divide by the weight sum.

    Skipped (all-solvent) tiles contribute a z + b (`solvent_response`): the network moves the
    solvent level and flattens the noise in it, so the input's own solvent, even shifted to
    the model's level, would leave a step and its noise around the run tiles."""
    totals = [np.zeros(plan.shape, np.float32) for _ in range(draws)]
    a, b = solvent_response(plan, z, predict) if plan.skipped else (1.0, 0.0)
    batch: list[Corner] = []
    n_batch = 0

    def flush() -> None:
        blocks = np.stack([extract(z, c, plan.tile, plan.fill, plan.periodic) for c in batch])
        for total, outs in zip(totals, predict(blocks, n_batch)):
            for c, o in zip(batch, outs):
                accumulate(total, o, plan.weight, c, plan.periodic)
        if on_tiles is not None:
            on_tiles(len(batch) * draws)

    for corner in plan.corners:
        if corner in plan.skipped:
            block = a * extract(z, corner, plan.tile, plan.fill, plan.periodic) + b
            for total in totals:
                accumulate(total, block, plan.weight, corner, plan.periodic)
            if on_tiles is not None:
                on_tiles(draws)
            continue
        batch.append(corner)
        if len(batch) == plan.tiling.batch_size:
            flush()
            batch, n_batch = [], n_batch + 1
    if batch:
        flush()
    for total in totals:
        total /= plan.weight_sum
    return totals


def accumulate_draws(draws: int, blend: Callable[[int], np.ndarray]):
    """(mean, M2) over `draws` blends by Welford's update; M2 is None for a single draw."""
    if draws == 1:
        return blend(0), None
    mean = np.zeros((), np.float32)
    m2 = np.zeros((), np.float32)
    for s in range(draws):
        total = blend(s)
        if s == 0:
            mean, m2 = np.zeros_like(total), np.zeros_like(total)
        delta = total - mean
        mean += delta / (s + 1)
        m2 += delta * (total - mean)
    return mean, m2


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


def restore_grid(
    mean: np.ndarray,
    m2: np.ndarray | None,
    draws: int,
    samples: int,
    stats: tuple[float, float],
    density: DensityMap,
    work_voxel: float,
    resampled: bool,
) -> tuple[DensityMap, DensityMap | None]:
    """Un-z-score with the input's statistics and resample back onto the input's grid."""
    mu, sd = stats
    out = mean * sd + mu
    std_map = None
    if samples > 1:
        spread = np.sqrt(m2 / (draws - 1)) * sd if m2 is not None else np.zeros(mean.shape)
        std_map = spread.astype(np.float32)
    if resampled:
        out = _back_to_input(out.astype(np.float32), work_voxel, density)
        if std_map is not None:
            std_map = np.maximum(_back_to_input(std_map, work_voxel, density), 0.0)
    mean_map = density.with_array(out.astype(np.float32))
    return mean_map, density.with_array(std_map) if std_map is not None else None


def sharpen_map(
    density: DensityMap,
    sharpener: SharpenCheckpoint | str | Path | None = None,
    *,
    input_resolution: float,
    target_resolution: float,
    sampler: str | None = None,
    steps: int | None = None,
    samples: int = 1,
    batch_size: int | None = None,
    device: str = "cpu",
    seed: int = 0,
    overlap: int | None = None,
    progress: bool = False,
    tile: int | None = None,
    margin: int | None = None,
    solvent_threshold: float | None = SOLVENT_THRESHOLD,
    clip_x0: tuple[float, float] | None | str = "auto",
    exact_tiles: bool = False,
    antithetic: bool | None = None,
) -> SharpenResult:
    """Sharpen `density` tile by tile; the result lies on the input's grid and scale.

    `antithetic` (diffusion models; None: the model's recipe) draws the samples in antithetic
    pairs (`diffusion.sampling.antithetic_noise`): their mean keeps less sampling noise.

    `exact_tiles` (local deterministic models only) makes the result equal one pass over the
    whole map; it runs every tile (no solvent skipping), ignores `overlap` and `margin`, and
    runs as many of its larger tiles per batch as hold the voxels of `batch_size` patches.
    """
    start = time.perf_counter()
    device = check_device(device)
    batch_size = default_batch_size(device, batch_size)
    _check_arguments(density, input_resolution, target_resolution, samples, batch_size)
    sampler = sampler_name(sampler) if sampler is not None else None
    steps = check_steps(steps)
    checkpoint = load_sharpener(sharpener, device=device)
    sampling = resolve_sampling(checkpoint.model, sampler, steps, clip_x0, antithetic)
    voxel = float(checkpoint.voxel_size)
    if target_resolution < 2 * voxel - 1e-6:
        raise InputError(
            f"target resolution {target_resolution} Å is finer than the model's grid allows "
            f"(Nyquist {2 * voxel:g} Å at {voxel:g} Å voxels)"
        )
    tiling = choose_tiling(checkpoint, tile=tile, overlap=overlap, margin=margin,
                           batch_size=batch_size, solvent_threshold=solvent_threshold,
                           exact_tiles=exact_tiles)  # fmt: skip
    periodic = covers_unit_cell(density)
    work, resampled = to_model_grid(density, voxel)
    z, stats = normalise(work, periodic)
    del work
    plan = plan_tiles(z.array, tiling, periodic)
    samples = int(samples)
    draws = samples if checkpoint.is_generative else 1

    from tqdm import tqdm

    bar = tqdm(total=plan.n_tiles * draws, disable=not progress, unit="tile", desc="sharpen")

    predict = tile_predictor(checkpoint, sampling, input_resolution, target_resolution,
                             draws=draws, seed=seed, device=device)  # fmt: skip
    totals = blend_draws(plan, z.array, predict, draws, on_tiles=bar.update)
    mean, m2 = accumulate_draws(draws, totals.__getitem__)
    del totals
    bar.close()
    mean_map, std_map = restore_grid(mean, m2, draws, samples, stats, density, voxel, resampled)
    if std_map is not None and checkpoint.std_scale != 1.0:  # the model's calibration
        std_map = std_map.with_array((std_map.array * checkpoint.std_scale).astype(np.float32))
    info = {
        "model": checkpoint.name,
        "kind": checkpoint.kind,
        "model_voxel_size": voxel,
        "resampled": resampled,
        "periodic": periodic,
        "tile": tiling.tile,
        "stride": tiling.stride,
        "margin": tiling.margin,
        "exact_tiles": bool(exact_tiles),
        "batch_size": tiling.batch_size,
        "solvent_threshold": tiling.solvent_threshold,
        "input_mean": stats[0],
        "input_std": stats[1],
        "samples": samples,
        "draws": draws,
        "std_scale": checkpoint.std_scale,
        **(sampling.as_dict() if sampling is not None else {}),
    }
    if samples > 1 and not checkpoint.is_generative:
        info["note"] = f"{checkpoint.kind} is deterministic: one pass, std is 0"
    info["warnings"] = guard_warnings(checkpoint, input_resolution, target_resolution, density)
    fitted = getattr(checkpoint.model, "sampling", None)
    if (samples > 1 and checkpoint.std_scale != 1.0 and sampling is not None
            and sampling.describe() != fitted.describe()):  # fmt: skip
        info["warnings"].append(
            f"the std map's scale {checkpoint.std_scale:g} was fitted for {fitted.describe()}, "
            f"not {sampling.describe()}: its coverage "
            "is not calibrated (bench/calibrate.py fits a scale for a recipe)"
        )
    return SharpenResult(
        mean=mean_map,
        std=std_map,
        seconds=time.perf_counter() - start,
        n_tiles=plan.n_tiles,
        n_skipped=len(plan.skipped),
        info=info,
    )


def sharpen_file(
    inp: str | Path,
    out: str | Path,
    *,
    checkpoint: SharpenCheckpoint | str | Path | None = None,
    input_resolution: float | None,
    target_resolution: float = 2.0,
    std_out: str | Path | None = None,
    samples: int = 1,
    device: str = "cpu",
    seed: int = 0,
    argv: list[str] | None = None,
    **options,
) -> tuple[SharpenResult, dict]:
    """Read IN, sharpen it (`options` as for sharpen_map), write OUT, STD_OUT and OUT.json.

    OUT.json is the run record (densitydiff.runrecord) with the model, its config, the
    inference settings, tile counts and timings. Returns (result, record).
    """
    from densitydiff.formats.maps import MAP_SUFFIXES, read_volume, write_map
    from densitydiff.outputs import check_record_path, output_lock
    from densitydiff.runrecord import run_record, write_record
    from densitydiff.sharpen.config import to_dict

    start = time.perf_counter()
    inp, out = Path(inp), Path(out)
    std_out = Path(std_out) if std_out is not None else None
    if input_resolution is None:
        raise InputError("give --input-resolution: the resolution of the input map in Å")
    if samples < 1:
        raise InputError(f"--samples must be at least 1, got {samples}")
    if std_out is not None and samples < 2:
        raise InputError("--std-out needs --samples 2 or more")
    for path in [out] + ([std_out] if std_out is not None else []):
        if path.suffix.lower() not in MAP_SUFFIXES:
            raise InputError(f"{path}: write a map with one of {', '.join(MAP_SUFFIXES)}")
        if not path.parent.is_dir():
            raise InputError(f"no such directory for {path}")
    if std_out is not None and std_out.resolve() == out.resolve():
        raise InputError("--std-out must differ from -o")
    if inp.resolve() in {p.resolve() for p in [out, std_out] if p is not None}:
        raise InputError(f"the output would overwrite the input {inp}; choose another -o")
    sidecar = out.with_suffix(".json")
    check_record_path(sidecar)
    device = check_device(device)
    density = read_volume(inp)
    t_read = time.perf_counter() - start
    model = load_sharpener(checkpoint, device=device)
    result = sharpen_map(
        density,
        model,
        input_resolution=input_resolution,
        target_resolution=target_resolution,
        samples=samples,
        device=device,
        seed=seed,
        **options,
    )
    note = result.info.get("note")
    record = run_record(
        config=to_dict(model.config),
        seed=seed,
        inputs=[inp],
        warnings=result.info["warnings"] + ([note] if note else []),
        argv=argv,
        input=str(inp),
        output=str(out),
        std_output=str(std_out) if std_out is not None else None,
        model=model.name,
        kind=model.kind,
        input_resolution=input_resolution,
        target_resolution=target_resolution,
        inference=result.info,
        tiles=result.n_tiles,
        tiles_skipped=result.n_skipped,
        seconds={"read": round(t_read, 3), "sharpen": round(result.seconds, 3)},
    )
    record["seconds"]["total"] = record["wall_seconds"] = round(time.perf_counter() - start, 3)
    # one run at a time per OUT (never one run's map with another's record); the map goes last,
    # so a map on disk always has its std map and record beside it
    with output_lock(out):
        if std_out is not None and result.std is not None:
            write_map(std_out, result.std)
        write_record(sidecar, record)
        write_map(out, result.mean)
    return result, record
