"""Evaluate sharpening models and classical baselines on simulated maps against the truth.

For each structure: the truth is simulated at the target resolution (B = 0) and the input at the
input resolution on the same grid (by default also B = 0 and no noise, as in the clean training
data; `simulate_input` can blur it with the atoms' B-factors and a global B and add half-map-FSC
noise, as real maps look); each model sharpens the input, each baseline
(densitydiff.sharpen.baselines) filters it, and every result is compared with the truth by
densitydiff.metrics.compare_maps (CC_mask inside 3 Å of an atom). A generative model with several
samples also gets uncertainty_metrics of its std map in its row.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from densitydiff.errors import InputError
from densitydiff.maps import DensityMap, voxel_triple
from densitydiff.sharpen.baselines import BASELINES
from densitydiff.structures import structure_id

if TYPE_CHECKING:
    from densitydiff.data.build import Realism

METRICS = ("fsc_0.5", "fsc_0.143", "fsc_auc", "psnr", "ssim", "cc_box", "cc_mask")
# uncertainty_metrics of a generative model's std map (samples > 1), None in every other row
UNCERTAINTY = ("spearman_box", "spearman_mask", "coverage_1", "coverage_2")
ROW_KEYS = ("structure", "method", *METRICS, "seconds", "b_factor", *UNCERTAINTY)
MASK_RADIUS = 3.0  # Å, CC_mask's atom mask


@dataclass
class StructureEvaluation:
    """One structure's results: metric rows, FSC curves and volumes per method (truth included)."""

    structure: str
    rows: list[dict]
    curves: dict = field(default_factory=dict)  # method -> FSCCurve against the truth
    volumes: dict = field(default_factory=dict)  # "truth", "input" and each method -> array
    maps: dict = field(default_factory=dict)  # method -> DensityMap (the std map as "<m> std")
    mask: np.ndarray | None = None  # the evaluation mask (3 Å of an atom): CC_mask, uncertainty
    input_info: dict = field(default_factory=dict)  # how the input was simulated (B, SNR drawn)


def check_resolutions(input_resolution: float, target_resolution: float) -> tuple[float, float]:
    """Both resolutions positive and finite, the target finer than the input."""
    try:
        r_in, r_out = float(input_resolution), float(target_resolution)
    except (TypeError, ValueError) as exc:
        raise InputError("resolutions must be numbers (Å)") from exc
    for name, r in (("input", r_in), ("target", r_out)):
        if not np.isfinite(r) or r <= 0:
            raise InputError(f"the {name} resolution must be positive and finite, got {r:g} Å")
    if r_out >= r_in:
        raise InputError(
            f"the target resolution ({r_out:g} Å) must be finer (smaller) than the input "
            f"resolution ({r_in:g} Å)"
        )
    return r_in, r_out


def check_sampling(sampler: str | None, steps: int | None) -> None:
    """A known sampler name and a positive number of steps (None: the model's own)."""
    from densitydiff.diffusion.sampling import check_steps, sampler_name

    if sampler is not None:
        sampler_name(sampler)
    check_steps(steps)


def check_samples(samples) -> int:
    """A whole number of samples, at least 1."""
    try:
        ok = not isinstance(samples, bool) and int(samples) == samples and samples >= 1
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InputError(f"samples must be a whole number >= 1, got {samples!r}")
    return int(samples)


def check_padding(padding) -> float:
    """The simulated box's padding around the atoms (Å): a finite number >= 0."""
    try:
        value = float(padding)
    except (TypeError, ValueError):
        raise InputError(f"the padding must be a number of Å, got {padding!r}") from None
    if not np.isfinite(value) or value < 0:
        raise InputError(f"the padding must be >= 0 Å, got {padding!r}")
    return value


def resolve_sharpeners(sharpeners: Sequence, device: str = "cpu") -> list:
    """Load every name or path (densitydiff.sharpen.checkpoint.load_sharpener); names unique."""
    from densitydiff.sharpen.checkpoint import load_sharpener

    out = [load_sharpener(s, device=device) for s in sharpeners]
    seen: dict[str, int] = {}
    for s in out:  # two checkpoints both called "last" must stay apart in the table
        n = seen.get(s.name, 0)
        seen[s.name] = n + 1
        if n:
            s.name = f"{s.name}-{n + 1}"
    return out


def _row(structure: str, method: str, metrics: dict, seconds: float, b=None) -> dict:
    row = {"structure": structure, "method": method, **metrics, "seconds": seconds}
    row["b_factor"] = b
    row.update(dict.fromkeys(UNCERTAINTY))
    return row


def parse_range(value, name: str) -> tuple[float, float]:
    """A number x (the range x:x), a "lo:hi" string or a (lo, hi) pair, as (lo, hi) floats."""
    if isinstance(value, str):
        parts = value.split(":")
    elif isinstance(value, int | float):
        parts = [value]
    else:
        parts = list(value)
    try:
        values = [float(v) for v in parts]
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number or a range LO:HI, got {value!r}") from None
    if len(values) not in (1, 2):
        raise InputError(f"{name} must be a number or a range LO:HI, got {value!r}")
    return values[0], values[-1]


def input_realism(b_factors: bool = False, global_b=0.0, snr=None, postprocess=None) -> Realism:
    """The data build's Realism (data.build) holding the input's knobs, checked by it:
    atomic_b, global_b (Å^2, a number or range), noise_snr (None: no noise), postprocess (None:
    none; a number or range: the scale of the Guinier B a deposited map is sharpened by)."""
    from densitydiff.data.build import Realism

    noise = (0.0, 0.0) if snr is None else parse_range(snr, "the input SNR")
    scale = (1.0, 1.0) if postprocess is None else parse_range(postprocess, "the sharpening scale")
    return Realism(
        atomic_b=bool(b_factors), global_b=parse_range(global_b, "the input global B"),
        noise_snr=noise, postprocess=0.0 if postprocess is None else 1.0, postprocess_scale=scale,
    )  # fmt: skip


def simulate_input(
    structure, resolution: float, like: DensityMap, knobs: Realism, seed: int, name: str
) -> tuple[DensityMap, dict]:
    """(input DensityMap, {"b_factors", "global_b", "snr0", "postprocess_b"}): the atoms at
    `resolution` on `like`'s grid, blurred, noised and post-processed as `knobs` (a Realism:
    atomic_b, global_b, noise_snr, postprocess) say.

    The global B, the SNR and the sharpening scale are drawn from a generator seeded by (seed,
    name), with the data build's own draws (simulate.realism.draw_global_b, draw_snr0), noise
    (fsc_noise) and post-processing (`postprocessed`, every input when postprocess > 0)."""
    from densitydiff.data.splits import stable_hash
    from densitydiff.simulate.density import simulate_map
    from densitydiff.simulate.realism import draw_global_b, draw_snr0, fsc_noise, postprocessed

    rng = np.random.default_rng(stable_hash(seed, name))
    b = draw_global_b(rng, knobs.global_b)
    inp = simulate_map(structure, resolution, like=like, use_b_factors=knobs.atomic_b, extra_b=b)
    snr0 = draw_snr0(rng, knobs.noise_snr)
    if snr0 is not None:
        noise = fsc_noise(inp.array, inp.voxel_size, resolution, snr0, rng)
        inp = inp.with_array((inp.array + noise).astype(np.float32))
    sharpening = None
    if knobs.postprocess:
        a, sharpening = postprocessed(inp.array, inp.voxel_size, resolution,
                                      knobs.postprocess_scale, rng)  # fmt: skip
        inp = inp.with_array(a.astype(np.float32))
    return inp, {"b_factors": knobs.atomic_b, "global_b": b, "snr0": snr0,
                 "postprocess_b": sharpening}  # fmt: skip


def evaluate_structure(
    path: str | os.PathLike,
    sharpeners: Sequence,
    *,
    input_resolution: float = 4.0,
    target_resolution: float = 2.0,
    voxel_size: float | None = None,
    sampler: str | None = None,
    steps: int | None = None,
    seed: int = 0,
    samples: int = 1,
    baselines: Sequence[str] = BASELINES,
    padding: float = 10.0,
    device: str = "cpu",
    batch_size: int | None = None,
    fix_elements: bool = False,
    strict_elements: bool = False,
    progress: bool = False,
    input_b_factors: bool = False,
    input_global_b: float | tuple[float, float] | str = 0.0,
    input_snr: float | tuple[float, float] | str | None = None,
    input_postprocess: float | tuple[float, float] | str | None = None,
) -> StructureEvaluation:
    """Simulate truth and input for one structure, run the models and baselines, measure each.

    `sharpeners` must already be loaded (resolve_sharpeners). `samples` > 1 draws several
    samples from generative models (their mean is measured; the std map is kept in `maps`, and
    uncertainty_metrics of it, the model's std_scale applied, inside the mask go in its row).
    The input (`simulate_input`): the atoms' B-factors when `input_b_factors`, plus a global B
    (Å^2, a number or a range drawn from `seed`), plus noise at a low-frequency SNR (`input_snr`,
    a number or a log-uniform range) whose half-map FSC crosses 0.143 at the input resolution,
    then, with `input_postprocess` (a scale or range), sharpened as a deposited map is: that
    scale times its Guinier B removed, low-passed at the input resolution.
    The truth is always B = 0 at the target resolution.
    """
    from densitydiff import metrics
    from densitydiff.sharpen import baselines as bl
    from densitydiff.simulate.density import atom_mask, simulate_map
    from densitydiff.structures import read_structure

    r_in, r_out = check_resolutions(input_resolution, target_resolution)
    check_sampling(sampler, steps)
    check_samples(samples)
    check_padding(padding)
    knobs = input_realism(input_b_factors, input_global_b, input_snr, input_postprocess)
    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        raise InputError(f"unknown baseline(s) {unknown}; expected some of {BASELINES}")
    p = Path(path)
    if not p.is_file():
        raise InputError(f"structure file not found: {p}")
    if voxel_size is None:
        voxel_size = float(sharpeners[0].voxel_size) if sharpeners else 1.0
    voxel_triple(voxel_size, "voxel size")
    if voxel_size > r_out / 2:
        raise InputError(
            f"voxel size {voxel_size:g} Å cannot hold the target resolution {r_out:g} Å "
            f"(needs <= {r_out / 2:g} Å)"
        )

    # keep the gemmi structure alive while simulating: the maps reference its atoms
    structure = read_structure(p, fix_elements=fix_elements, strict_elements=strict_elements)
    name = structure_id(p)
    truth = simulate_map(structure, r_out, voxel_size, padding=padding)
    inp, input_info = simulate_input(structure, r_in, truth, knobs, seed, name)
    mask = atom_mask(structure, like=truth, radius=MASK_RADIUS)
    voxel = truth.voxel_size
    ev = StructureEvaluation(name, [], volumes={"truth": truth.array}, mask=mask,
                             input_info=input_info)  # fmt: skip
    ev.maps["truth"] = truth
    ev.maps["input"] = inp

    def measure(method: str, array: np.ndarray, seconds: float, b=None) -> None:
        ev.rows.append(
            _row(name, method, metrics.compare_maps(array, truth.array, voxel, mask), seconds, b)
        )
        ev.curves[method] = metrics.fsc(array, truth.array, voxel)
        ev.volumes[method] = array

    for method in baselines:
        t0 = time.perf_counter()
        if method == "input":
            measure("input", inp.array, 0.0)
        elif method == "lowpass":
            out = bl.lowpass_baseline(inp.array, voxel, r_in)
            measure("lowpass", out, time.perf_counter() - t0)
        else:
            out, b = bl.bfactor_baseline(inp.array, truth.array, voxel)
            measure("bfactor", out, time.perf_counter() - t0, b)
    if "input" not in ev.volumes:
        ev.volumes["input"] = inp.array

    if sharpeners:
        from densitydiff.sharpen.infer import sharpen_map

    for s in sharpeners:
        n = samples if s.is_generative else 1
        t0 = time.perf_counter()
        result = sharpen_map(
            inp,
            s,
            input_resolution=r_in,
            target_resolution=r_out,
            sampler=sampler,
            steps=steps,
            samples=n,
            seed=seed,
            device=device,
            batch_size=batch_size,
            progress=progress,
        )
        seconds = time.perf_counter() - t0
        measure(s.name, result.mean.array, seconds)
        ev.maps[s.name] = result.mean
        if result.std is not None:  # already c x std: sharpen_map applies the std_scale
            ev.maps[f"{s.name} std"] = result.std
            ev.rows[-1].update(
                uncertainty_metrics(result.mean.array, result.std.array, truth.array, mask)
            )
    return ev


def evaluate_structures(
    structures: Sequence[str | os.PathLike],
    sharpeners: Sequence,
    *,
    input_resolution: float = 4.0,
    target_resolution: float = 2.0,
    voxel_size: float | None = None,
    sampler: str | None = None,
    steps: int | None = None,
    seed: int = 0,
    samples: int = 1,
    baselines: Sequence[str] = BASELINES,
    on_result: Callable[[StructureEvaluation], None] | None = None,
    padding: float = 10.0,
    device: str = "cpu",
    batch_size: int | None = None,
    fix_elements: bool = False,
    strict_elements: bool = False,
    progress: bool = False,
    input_b_factors: bool = False,
    input_global_b: float | tuple[float, float] | str = 0.0,
    input_snr: float | tuple[float, float] | str | None = None,
    input_postprocess: float | tuple[float, float] | str | None = None,
) -> list[dict]:
    """One row per (structure, method): the metrics of compare_maps, seconds and b_factor, and
    the UNCERTAINTY keys (None except for a generative model with `samples` > 1).

    Inputs are checked before any work. `on_result` sees each structure's full evaluation
    (curves, volumes) as it finishes, e.g. to draw figures without keeping every volume.
    `progress` draws a bar over the structures on stderr. The input options: evaluate_structure.
    """
    from tqdm import tqdm

    check_resolutions(input_resolution, target_resolution)
    check_sampling(sampler, steps)
    check_samples(samples)
    check_padding(padding)
    input_realism(input_b_factors, input_global_b, input_snr, input_postprocess)
    if not structures:
        raise InputError("no structures given")
    missing = [str(p) for p in structures if not Path(p).is_file()]
    if missing:
        raise InputError(f"structure file not found: {', '.join(missing)}")
    loaded = resolve_sharpeners(sharpeners, device)
    rows: list[dict] = []
    bar = tqdm(structures, desc="evaluate", unit="structure", disable=not progress)
    for path in bar:
        bar.set_postfix_str(Path(path).name)
        ev = evaluate_structure(
            path,
            loaded,
            input_resolution=input_resolution,
            target_resolution=target_resolution,
            voxel_size=voxel_size,
            sampler=sampler,
            steps=steps,
            seed=seed,
            samples=samples,
            baselines=baselines,
            padding=padding,
            device=device,
            batch_size=batch_size,
            fix_elements=fix_elements,
            strict_elements=strict_elements,
            input_b_factors=input_b_factors,
            input_global_b=input_global_b,
            input_snr=input_snr,
            input_postprocess=input_postprocess,
        )
        rows.extend(ev.rows)
        if on_result is not None:
            on_result(ev)
    return rows


def summarise(rows: Sequence[dict]) -> dict[str, dict[str, float | None]]:
    """Mean of each metric (and seconds) per method over structures, methods in row order."""
    out: dict[str, dict[str, float | None]] = {}
    methods = list(dict.fromkeys(r["method"] for r in rows))
    for m in methods:
        sel = [r for r in rows if r["method"] == m]
        means: dict[str, float | None] = {"n": len(sel)}
        for key in (*METRICS, "seconds", *UNCERTAINTY):
            vals = [r[key] for r in sel if r.get(key) is not None and np.isfinite(r[key])]
            means[key] = float(np.mean(vals)) if vals else None
        out[m] = means
    return out


def format_table(rows: Sequence[dict], summary: dict | None = None) -> str:
    """Aligned text table of the rows, then the per-method means when several structures."""
    cols = [
        ("structure", "structure", "{}"),
        ("method", "method", "{}"),
        ("fsc_0.5", "FSC0.5(Å)", "{:.2f}"),
        ("fsc_0.143", "FSC0.143(Å)", "{:.2f}"),
        ("fsc_auc", "FSC-AUC", "{:.3f}"),
        ("psnr", "PSNR(dB)", "{:.2f}"),
        ("ssim", "SSIM", "{:.3f}"),
        ("cc_box", "CC_box", "{:.3f}"),
        ("cc_mask", "CC_mask", "{:.3f}"),
        ("seconds", "seconds", "{:.1f}"),
    ]
    if any(r.get("coverage_2") is not None for r in rows):  # a generative model's std map
        cols += [("spearman_mask", "rho(std,err)", "{:.3f}"), ("coverage_2", "cover2std", "{:.3f}")]

    def cell(row: dict, key: str, fmt: str) -> str:
        v = row.get(key)
        return "-" if v is None else fmt.format(v)

    lines = [[head for _, head, _ in cols]]
    for r in rows:
        lines.append([cell(r, k, f) for k, _, f in cols])
    n_structures = len({r["structure"] for r in rows})
    if summary and n_structures > 1:
        for m, means in summary.items():
            lines.append([f"mean ({means['n']})", m] + [cell(means, k, f) for k, _, f in cols[2:]])
    widths = [max(len(line[i]) for line in lines) for i in range(len(cols))]
    text = []
    for j, line in enumerate(lines):
        cells = [c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths))]
        text.append("  ".join(cells).rstrip())
        if j == 0:
            text.append("  ".join("-" * w for w in widths))
    return "\n".join(text)


# --- uncertainty: does the samples' std predict the error of their mean? ---------------------

COVERAGE_TARGETS = {1: 0.6827, 2: 0.9545}  # P(|z| <= k) of a standard normal


def uncertainty_metrics(mean, std, truth, mask=None) -> dict[str, float]:
    """How the per-voxel std of samples predicts |truth - mean|.

    spearman_box / spearman_mask: Spearman rank correlation of std and |error| over the box and
    inside `mask`; coverage_1 / coverage_2: the fraction of voxels (inside `mask` when given,
    else the box) whose truth lies within 1 / 2 std of the mean (68.3 % / 95.4 % when calibrated).
    """
    from scipy.stats import spearmanr

    mean, std, truth = (np.asarray(a, dtype=np.float64) for a in (mean, std, truth))
    if not (mean.shape == std.shape == truth.shape):
        raise InputError(f"shape mismatch: mean {mean.shape}, std {std.shape}, truth {truth.shape}")
    if np.any(std < 0) or not np.all(np.isfinite(std)):
        raise InputError("the std map must be finite and non-negative")
    err = np.abs(truth - mean)
    inside = np.ones(mean.shape, bool) if mask is None else np.asarray(mask, dtype=bool)
    if inside.shape != mean.shape or not inside.any():
        raise InputError("the mask must have the map's shape and select voxels")

    def rho(sel) -> float:
        s, e = std[sel], err[sel]
        if np.ptp(s) == 0 or np.ptp(e) == 0:
            return float("nan")
        return float(spearmanr(s, e).statistic)

    box = np.ones(mean.shape, bool)
    out = {"spearman_box": rho(box), "spearman_mask": rho(inside)}
    for k in COVERAGE_TARGETS:
        out[f"coverage_{k}"] = float(np.mean(err[inside] <= k * std[inside]))
    return out


def fit_std_scale(pairs, level: int = 1) -> float:
    """The factor c for which `level`-std coverage of c * std is its normal value (68.3 % for 1).

    `pairs`: (mean, std, truth[, mask]) per validation map. Coverage(c) = P(|error| <= c std)
    rises with c, so c is the matching quantile of |error| / std over every voxel pooled.
    """
    if level not in COVERAGE_TARGETS:
        raise InputError(f"level must be one of {sorted(COVERAGE_TARGETS)}, got {level!r}")
    ratios = []
    for item in pairs:
        mean, std, truth = (np.asarray(a, dtype=np.float64) for a in item[:3])
        sel = np.ones(mean.shape, bool) if len(item) < 4 else np.asarray(item[3], dtype=bool)
        sel = sel & (std > 0)
        ratios.append(np.abs(truth - mean)[sel] / std[sel])
    if not ratios or not sum(r.size for r in ratios):
        raise InputError("fit_std_scale: no voxels with a positive std")
    return float(np.quantile(np.concatenate(ratios), COVERAGE_TARGETS[level]) / level)
