"""The packaged models on a real map against its deposited model (docs/model.md, "Real map").

Default: EMD-5168 (actin filament, ~6.6 Å), a box of the deposited map around one subunit,
src/densitydiff/examples/emd_5168_subunit_box.mrc, against its model 3MFP; the DDPM with 1 and 4
samples, the regression U-Net, the input and Guinier B sharpening, and the oracle shell filter
(the per-shell filter fitted to the model map: the best CC any isotropic linear sharpening can
reach, a ceiling to read the rows against, not a method). Prints a markdown table and writes
the rows as JSON (--out).

  PYTHONPATH=src python bench/realmap.py [--map M --model PDB] [--input-resolution 6.6]
      [--samples 1 --samples 4] [--threads 2] [--batch-size 4] [--out bench_realmap.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "src" / "densitydiff" / "examples"


def oracle_row(map_path: str, model_path: str, info: dict) -> dict:
    """The oracle shell filter's row: the map through the per-shell filter fitted to the
    reference (sharpen.baselines.shell_filter_oracle), measured as every other row."""
    from densitydiff.formats.maps import read_volume
    from densitydiff.sharpen.baselines import shell_filter_oracle
    from densitydiff.sharpen.realmap import measure, reference_and_mask
    from densitydiff.structures import read_structure

    density = read_volume(map_path)
    ref, mask = reference_and_mask(density, read_structure(model_path),
                                   info["input_resolution"], info["target_resolution"])  # fmt: skip
    out = shell_filter_oracle(density.array, ref, density.voxel_size, mask)
    return {"method": "oracle shell filter (fitted to the model: a ceiling)", "seconds": 0.0,
            **measure(out, ref, density.voxel_size, mask)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--map", default=str(EXAMPLES / "emd_5168_subunit_box.mrc"))
    parser.add_argument("--model", default=str(EXAMPLES / "3mfp.pdb.gz"))
    parser.add_argument("--input-resolution", type=float, default=6.6)
    parser.add_argument("--target-resolution", type=float, default=None)
    parser.add_argument("--checkpoint", action="append", default=None)
    parser.add_argument("--samples", type=int, action="append", default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=4, help="tiles per call (the runs' 4)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from densitydiff.sharpen.evaluate import resolve_sharpeners
    from densitydiff.sharpen.realmap import evaluate_real_map

    models = resolve_sharpeners(args.checkpoint or ["refine", "regression"], args.device)
    rows, info, warnings = [], None, []
    t0 = time.perf_counter()
    for i, samples in enumerate(args.samples or [1, 4]):
        generative = [m for m in models if m.is_generative]
        chosen = models if i == 0 else generative  # deterministic models run once
        if not chosen:
            continue
        ev = evaluate_real_map(args.map, args.model, chosen, input_resolution=args.input_resolution,
                               target_resolution=args.target_resolution, samples=samples,
                               device=args.device, batch_size=args.batch_size)  # fmt: skip
        info = ev.info
        warnings += [w for w in ev.warnings if w not in warnings]
        for r in ev.rows:
            if i and r["method"] in ("input", "guinier"):
                continue
            if any(r["method"] == m.name and m.is_generative for m in models):
                r["method"] = f"{r['method']} ({samples} sample{'s' if samples > 1 else ''})"
            rows.append(r)
    print(f"{info['map']} vs {info['model']}: {info['input_resolution']:g} Å -> "
          f"{info['target_resolution']:.2f} Å, Guinier B {info['guinier_b']:.0f} Å^2, "
          f"{time.perf_counter() - t0:.0f} s, {platform.processor() or platform.machine()}, "
          f"{args.threads} threads")  # fmt: skip
    rows.append(oracle_row(args.map, args.model, info))
    for w in warnings:
        print(f"warning: {w}")
    print("| method | FSC 0.5 (Å) | FSC-AUC | CC box | CC mask | s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['fsc_0.5']:.2f} | {r['fsc_auc']:.3f} | {r['cc_box']:.3f} | "
              f"{r['cc_mask']:.3f} | {r['seconds']:.1f} |")  # fmt: skip
    if args.out:
        Path(args.out).write_text(json.dumps({"rows": rows, "settings": info,
                                              "warnings": warnings}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
