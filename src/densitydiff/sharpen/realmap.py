"""Evaluate sharpening on a real map against its deposited atomic model (no truth map exists).

The reference is the model simulated on the map's grid; each method (the input, truth-free
Guinier B sharpening, each model) is measured by the map-model FSC (0.5 crossing, FSC-AUC)
inside a soft mask from the model, CC over the box and CC inside the mask. With half maps the
input resolution is their FSC's 0.143 crossing and the noise their difference (docs/evaluate.md).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from densitydiff.errors import InputError
from densitydiff.maps import DensityMap

REAL_METRICS = ("fsc_0.5", "fsc_auc", "cc_box", "cc_mask")
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
# the packaged real map (the tests' and the training monitor's real check): EMD-5168 cropped
# around one actin subunit, ~6.6 Å, and its deposited model 3MFP
# the map as deposited around one subunit (neighbours, solvent noise); the monomer crop is
# zoned (92 % of its voxels set to 0), which no sharpener sees in practice
EXAMPLE_MAP = EXAMPLES / "emd_5168_subunit_box.mrc"
EXAMPLE_MODEL = EXAMPLES / "3mfp.pdb.gz"
EXAMPLE_RESOLUTION = 6.6  # Å
MASK_THRESHOLD = 0.1  # of the model map's maximum, at the input resolution
MASK_EDGE = 3.0  # Å, soft edge of the model mask


@dataclass
class RealMapEvaluation:
    """Rows per method, the settings found (resolution, noise), warnings, maps per method."""

    name: str
    rows: list[dict]
    info: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    maps: dict = field(default_factory=dict)


def half_map_estimates(half_a: DensityMap, half_b: DensityMap) -> dict:
    """{"resolution": FSC 0.143 crossing (Å), "noise_std": std((A - B) / 2), the noise of their
    mean, "fsc": the curve}. The halves must share one grid."""
    from densitydiff import metrics

    if not half_a.same_grid(half_b):
        raise InputError("the two half maps must have the same grid (shape, voxel size, origin)")
    a, b = (np.asarray(h.array, dtype=np.float64) for h in (half_a, half_b))
    curve = metrics.fsc(a, b, half_a.voxel_size)
    return {
        "resolution": float(metrics.resolution_at(curve, 0.143)),
        "noise_std": float(np.std(a - b) / 2.0),
        "fsc": curve,
    }


def model_mask(model_map: np.ndarray, voxel_size) -> np.ndarray:
    """The model map thresholded at MASK_THRESHOLD of its maximum, with a MASK_EDGE Å soft edge."""
    from densitydiff.filters import soft_edge

    binary = model_map > MASK_THRESHOLD * float(model_map.max())
    return soft_edge(binary, voxel_size, MASK_EDGE)


def default_target(density: DensityMap) -> float:
    """The finest resolution the map's grid holds (2 x voxel size), at least 2 Å: the output of
    `sharpen` keeps the input's grid."""
    return max(2.0, 2.0 * float(max(density.voxel_size)))


def reference_and_mask(
    density: DensityMap, structure, input_resolution: float, target_resolution: float
) -> tuple[np.ndarray, np.ndarray]:
    """(reference, soft mask) on the map's grid: the model simulated at the target (never finer
    than the grid holds) and, at the input resolution, thresholded into `model_mask`."""
    from densitydiff.simulate.density import simulate_map

    nyquist = 2.0 * float(max(density.voxel_size))
    reference = simulate_map(structure, max(target_resolution, nyquist), like=density).array
    envelope = simulate_map(structure, input_resolution, like=density).array
    if not np.any(envelope > 0):
        raise InputError("the model does not overlap the map's box")
    return reference, model_mask(envelope, density.voxel_size)


def measure(estimate: np.ndarray, reference: np.ndarray, voxel_size, mask: np.ndarray) -> dict:
    """Map-model FSC in the soft mask (0.5 crossing, FSC-AUC), CC over the box and in the mask."""
    from densitydiff import metrics

    est, ref = (np.asarray(x, dtype=np.float64) for x in (estimate, reference))
    curve = metrics.fsc(est, ref, voxel_size, mask=mask)
    return {
        "fsc_0.5": float(metrics.resolution_at(curve, 0.5)),
        "fsc_auc": float(metrics.fsc_auc(curve)),
        "cc_box": metrics.cc(est, ref),
        "cc_mask": metrics.cc(est, ref, mask > 0),
    }


def evaluate_real_map(
    map_path: str | os.PathLike,
    model_path: str | os.PathLike,
    sharpeners: Sequence = (),
    *,
    input_resolution: float | None = None,
    half_maps: tuple[str | os.PathLike, str | os.PathLike] | None = None,
    target_resolution: float | None = None,
    sampler: str | None = None,
    steps: int | None = None,
    samples: int = 1,
    seed: int = 0,
    device: str = "cpu",
    batch_size: int | None = None,
) -> RealMapEvaluation:
    """Measure the map, its Guinier-sharpened version and each model's output against the model.

    `sharpeners`: names/paths or loaded models (sharpen.evaluate.resolve_sharpeners). The input
    resolution is `input_resolution`, else the half maps' FSC 0.143 crossing. The target is
    `target_resolution`, else the finest the map's grid holds (2 x voxel size, at least 2 Å).
    """
    from densitydiff.formats.maps import read_volume
    from densitydiff.sharpen.baselines import guinier_baseline
    from densitydiff.sharpen.evaluate import check_sampling, resolve_sharpeners
    from densitydiff.structures import read_structure, structure_id

    map_path, model_path = Path(map_path), Path(model_path)
    for p, what in ((map_path, "map"), (model_path, "model")):
        if not p.is_file():
            raise InputError(f"{what} file not found: {p}")
    if half_maps is not None:
        if len(half_maps) != 2:
            raise InputError("--half-maps takes two maps")
        for p in half_maps:
            if not Path(p).is_file():
                raise InputError(f"half map not found: {p}")
    if input_resolution is None and half_maps is None:
        raise InputError("give --input-resolution or --half-maps (to measure it)")
    check_sampling(sampler, steps)
    density = read_volume(map_path)
    density.require_orthogonal("real-map evaluation")
    if not np.all(np.isfinite(density.array)):
        raise InputError(f"{map_path} holds NaN or infinite values")
    info: dict = {"map": str(map_path), "model": str(model_path)}
    if half_maps is not None:
        halves = [read_volume(p) for p in half_maps]
        est = half_map_estimates(*halves)
        if not halves[0].same_grid(density):
            raise InputError("the half maps must lie on the map's grid")
        info["half_map_resolution"] = est["resolution"]
        info["noise_std"] = est["noise_std"]
        info["map_std"] = float(np.std(density.array))
        if input_resolution is None:
            input_resolution = est["resolution"]
    r_in = float(input_resolution)
    if not np.isfinite(r_in) or r_in <= 0:
        raise InputError(f"the input resolution must be positive, got {r_in}")
    r_out = float(target_resolution) if target_resolution is not None else default_target(density)
    if r_out >= r_in:
        raise InputError(
            f"the target resolution {r_out:g} Å must be finer than the input {r_in:g} Å"
        )
    info.update(input_resolution=r_in, target_resolution=r_out)

    structure = read_structure(model_path)
    voxel = density.voxel_size
    try:
        reference, mask = reference_and_mask(density, structure, r_in, r_out)
    except InputError:
        raise InputError(f"the model {model_path.name} does not overlap the map's box") from None
    info["mask_voxels"] = int(np.count_nonzero(mask > 0))
    name = structure_id(model_path)
    ev = RealMapEvaluation(name, [], info)

    def row(method: str, array: np.ndarray, seconds: float, **extra) -> None:
        ev.rows.append(
            {
                "map": map_path.name,
                "method": method,
                **measure(array, reference, voxel, mask),
                "seconds": seconds,
                **extra,
            }  # fmt: skip
        )
        ev.maps[method] = density.with_array(np.asarray(array, dtype=np.float32))

    row("input", density.array, 0.0)
    t0 = time.perf_counter()
    sharpened, b = guinier_baseline(density.array, voxel, r_in)
    row("guinier", sharpened, time.perf_counter() - t0, b_factor=-b)
    info["guinier_b"] = b

    if sharpeners:
        from densitydiff.sharpen.infer import guard_warnings, sharpen_map

    for s in resolve_sharpeners(list(sharpeners), device):
        for w in guard_warnings(s, r_in, r_out, density):
            if w not in ev.warnings:
                ev.warnings.append(f"{s.name}: {w}")
        t0 = time.perf_counter()
        result = sharpen_map(density, s, input_resolution=r_in, target_resolution=r_out,
                             sampler=sampler, steps=steps, seed=seed, device=device,
                             batch_size=batch_size,
                             samples=samples if s.is_generative else 1)  # fmt: skip
        row(s.name, result.mean.array, time.perf_counter() - t0)
    return ev


def format_real_table(ev: RealMapEvaluation) -> str:
    """Aligned text: one row per method, the settings above it."""
    head = (
        f"{ev.info['map']} against {ev.info['model']}: input {ev.info['input_resolution']:.2f} Å"
        f" -> target {ev.info['target_resolution']:.2f} Å; Guinier B {ev.info['guinier_b']:.0f}"
        " Å^2"
    )
    if "half_map_resolution" in ev.info:
        head += (
            f"; half maps: FSC 0.143 at {ev.info['half_map_resolution']:.2f} Å, noise std "
            f"{ev.info['noise_std']:.3g} (map std {ev.info['map_std']:.3g})"
        )
    cols = [("method", "method", "{}"), ("fsc_0.5", "FSC0.5(Å)", "{:.2f}"),
            ("fsc_auc", "FSC-AUC", "{:.3f}"), ("cc_box", "CC_box", "{:.3f}"),
            ("cc_mask", "CC_mask", "{:.3f}"), ("seconds", "seconds", "{:.1f}")]  # fmt: skip
    lines = [[h for _, h, _ in cols]]
    lines += [
        [f.format(r[k]) if r.get(k) is not None else "-" for k, _, f in cols] for r in ev.rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(cols))]
    out = [head]
    for j, line in enumerate(lines):
        cells = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths))]
        out.append("  ".join(cells).rstrip())
        if j == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)
