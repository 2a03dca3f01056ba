"""Fit a sharpening model's std scale on validation maps, simulated as the held-out evaluation
simulates them, and write the model with it.

Each validation structure of a store (its split, densitydiff.data.layout.split_structures; the
source files under /work/shared/data/structures or --structures-dir) is simulated as in
bench/evaluate.py (truth B = 0 at the target; input at the input resolution, with its atomic B
under --b-factors, --global-b, --snr), sharpened with S samples of the model, and the voxels
inside 3 Å of an atom are pooled. The scale c is sharpen.evaluate.fit_std_scale's: c x std
covers 68.3 % (--level 1) or 95.4 % (--level 2, the default: issue #11's bar is the 2-std
coverage) of them. Prints c and the coverage and Spearman(std, |truth - mean|) with the model's
current std_scale and with c; `--export OUT.pt` writes the model with std_scale = c (weights
unchanged, float16 kept; other extra fields kept).

  PYTHONPATH=src python bench/calibrate.py --split val --store STORE.zarr --checkpoint default
      --samples 8 --b-factors [--limit 5] [--export default_calibrated.pt] [--out calib.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np


def _bench_evaluate():
    """bench/evaluate.py (structure lists and the input options, so both simulate alike)."""
    spec = importlib.util.spec_from_file_location("bench_evaluate", Path(__file__).with_name(
        "evaluate.py"))  # fmt: skip
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def calibrate(pairs, current_scale: float = 1.0, level: int = 2) -> dict:
    """{"scale": c, "before": ..., "after": ...} from (mean, std, truth) per map, the std as the
    network gives it (no std_scale): c from fit_std_scale, the metrics (uncertainty_metrics over
    all voxels pooled) with `current_scale` x std and with c x std. "zero_std": the fraction of
    voxels whose std is 0 (tiles skipped as solvent): no scale covers them, nor is c fitted on
    them, so the coverage after is the target times (1 - zero_std)."""
    from densitydiff.sharpen.evaluate import fit_std_scale, uncertainty_metrics

    pairs = [tuple(np.ravel(a) for a in p[:3]) for p in pairs]
    c = fit_std_scale(pairs, level=level)
    mean, std, truth = (np.concatenate([p[k] for p in pairs]) for k in range(3))
    return {
        "scale": c,
        "level": level,
        "voxels": int(mean.size),
        "zero_std": float(np.mean(std == 0)),
        "current_scale": float(current_scale),
        "before": uncertainty_metrics(mean, current_scale * std, truth),
        "after": uncertainty_metrics(mean, c * std, truth),
    }


def validation_pairs(paths, sharpener, args, on_result=None) -> list[tuple]:
    """(mean, std / std_scale, truth) inside the evaluation mask, one per structure."""
    from densitydiff.sharpen.evaluate import evaluate_structure

    out = []
    for path in paths:
        ev = evaluate_structure(
            path,
            [sharpener],
            input_resolution=args.input_resolution,
            target_resolution=args.target_resolution,
            sampler=args.sampler,
            steps=args.steps,
            seed=args.seed,
            samples=args.samples,
            baselines=(),
            device=args.device,
            batch_size=args.batch_size,
            fix_elements=True,
            input_b_factors=args.b_factors,
            input_global_b=args.global_b,
            input_snr=args.snr,
            input_postprocess=args.postprocess,
            padding=args.padding,
        )
        m = ev.mask
        std = ev.maps[f"{sharpener.name} std"].array / sharpener.std_scale
        out.append((ev.maps[sharpener.name].array[m], std[m], ev.maps["truth"].array[m]))
        if on_result is not None:
            on_result(ev)
    return out


def export_with_scale(
    sharpener,
    source,
    out: Path,
    scale: float,
    sampler: str | None = None,
    steps: int | None = None,
    antithetic: bool | None = None,
) -> Path:
    """The loaded model written again with std_scale = `scale`: same weights (float16 when the
    source file holds them so), config, geometry, name and other extra fields. A scale holds for
    the sampling recipe it was fitted with, so `sampler`/`steps`/`antithetic` (when given) become
    the file's default recipe."""
    from densitydiff.sharpen.checkpoint import export_sharpener, stored_in_half

    return export_sharpener(
        sharpener,
        out,
        voxel_size=sharpener.voxel_size,
        patch=sharpener.patch,
        training_structures=sharpener.training_structures,
        extra=sharpener.extra,
        half=stored_in_half(source),
        name=sharpener.name,
        std_scale=scale,
        sampler=sampler,
        steps=steps,
        antithetic=antithetic,
    )


def main(argv: list[str] | None = None) -> int:
    bench = _bench_evaluate()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default="refine", help="a generative model")
    ap.add_argument("--store", type=Path, default=None, help="the store whose split to use")
    ap.add_argument("--split", default="val", choices=("train", "val", "test"))
    ap.add_argument("--structures", default=None, help="ID,ID instead of a store's split")
    ap.add_argument("--structures-dir", type=Path, default=bench.DATA)
    bench.add_input_options(ap)
    ap.add_argument("--samples", type=int, default=8, help="samples per map (>= 2)")
    ap.add_argument("--level", type=int, default=2, choices=(1, 2), help="coverage to match")
    ap.add_argument("--sampler", default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--antithetic", action=argparse.BooleanOptionalAction, default=None,
                    help="draws in antithetic pairs or independent (default: the model's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (CPU)")
    ap.add_argument("--limit", type=int, default=None, help="first N structures only")
    ap.add_argument("--export", type=Path, default=None, help="write the model with the scale")
    ap.add_argument("--out", type=Path, default=None, help="the result as JSON")
    args = ap.parse_args(argv)
    if args.samples < 2:
        raise SystemExit("--samples must be at least 2: the std of one sample is 0")

    import torch

    from densitydiff.sharpen.checkpoint import load_sharpener

    if args.threads:
        torch.set_num_threads(args.threads)
    store = None if args.structures else args.store
    if not args.structures and store is None:
        raise SystemExit("give --store STORE.zarr (its --split) or --structures ID,ID")
    label, paths = bench.structure_paths(
        args.structures_dir, args.structures, store, args.split if store else None, args.limit
    )
    sharpener = load_sharpener(args.checkpoint, device=args.device)
    if not sharpener.is_generative:
        raise SystemExit(f"{sharpener.name} is deterministic: it has no std map to calibrate")
    if args.antithetic is not None:  # the recipe the scale is fitted for
        sampling = dataclasses.replace(sharpener.model.sampling, antithetic=args.antithetic)
        sharpener.model.sampling = sampling
    t0 = time.perf_counter()

    def progress(ev) -> None:
        print(f"# {ev.structure} done ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)

    pairs = validation_pairs(paths, sharpener, args, on_result=progress)
    result = calibrate(pairs, sharpener.std_scale, args.level)
    print(
        f"{sharpener.name} on the {label}, {args.input_resolution:g} Å -> "
        f"{args.target_resolution:g} Å; input {bench.input_words(args)}; {args.samples} samples; "
        f"{result['voxels']} voxels within 3 Å of an atom; {time.perf_counter() - t0:.0f} s\n"
    )
    print(
        f"std_scale = {result['scale']:.4g} (fitted for {args.level}-std coverage; std 0 in "
        f"{100 * result['zero_std']:.1f} % of the voxels)\n"
    )
    print("| std scale | 1-std cover | 2-std cover | Spearman(std, err) |")
    print("|---|---|---|---|")
    for key, c in (("before", result["current_scale"]), ("after", result["scale"])):
        m = result[key]
        print(
            f"| {c:.4g} ({key}) | {m['coverage_1']:.3f} | {m['coverage_2']:.3f} | "
            f"{m['spearman_box']:.3f} |"
        )
    if args.export:
        export_with_scale(sharpener, args.checkpoint, args.export, result["scale"],
                          args.sampler, args.steps, args.antithetic)  # fmt: skip
        print(f"\nwrote {args.export} (std_scale {result['scale']:.4g})")
    if args.out:
        record = {**result, "model": sharpener.name, "structures": [str(p) for p in paths],
                  "samples": args.samples, "input": bench.input_words(args)}  # fmt: skip
        args.out.write_text(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
