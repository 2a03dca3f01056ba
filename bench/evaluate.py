"""The project's held-out list, 4 Å -> 2 Å: FSC-AUC, SSIM and FSC-0.5 per model and baseline.

Structures: src/densitydiff/models/heldout.txt, read from /work/shared/data/structures (or
--structures-dir). Prints markdown tables (means over structures, then per structure) and
writes every row as JSON (--out). Models default to the packaged DDPM and regression U-Net.

  PYTHONPATH=src python bench/evaluate.py [--checkpoint default --checkpoint unet]
      [--sampler dpmpp --steps 20] [--device cuda] [--limit 3] [--out bench_evaluate.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

DATA = Path("/work/shared/data/structures")


def find_structure(folder: Path, sid: str) -> Path:
    for suffix in (".pdb.gz", ".cif.gz", ".pdb", ".cif", ".ent.gz"):
        p = folder / f"{sid}{suffix}"
        if p.is_file():
            return p
    raise SystemExit(f"held-out structure {sid} not found in {folder}")


def markdown(rows: list[dict], summary: dict) -> str:
    """Means per method (FSC-AUC, SSIM, FSC 0.5, CC_mask, seconds), then per structure."""
    out = [
        "| method | FSC-AUC | SSIM | FSC 0.5 (Å) | FSC 0.143 (Å) | CC mask | PSNR (dB) | s / map |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def f(v, fmt):
        return "–" if v is None else fmt.format(v)

    for m, s in summary.items():
        out.append(
            f"| {m} | {f(s['fsc_auc'], '{:.3f}')} | {f(s['ssim'], '{:.3f}')} | "
            f"{f(s['fsc_0.5'], '{:.2f}')} | {f(s['fsc_0.143'], '{:.2f}')} | "
            f"{f(s['cc_mask'], '{:.3f}')} | {f(s['psnr'], '{:.2f}')} | "
            f"{f(s['seconds'], '{:.1f}')} |"
        )
    out += ["", "| structure | method | FSC-AUC | SSIM | FSC 0.5 (Å) |", "|---|---|---|---|---|"]
    for r in rows:
        out.append(
            f"| {r['structure']} | {r['method']} | {r['fsc_auc']:.3f} | {r['ssim']:.3f} | "
            f"{r['fsc_0.5']:.2f} |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", action="append", help="model (repeatable)")
    ap.add_argument("--no-models", action="store_true", help="the classical baselines only")
    ap.add_argument("--structures-dir", type=Path, default=DATA)
    ap.add_argument("--input-resolution", type=float, default=4.0)
    ap.add_argument("--target-resolution", type=float, default=2.0)
    ap.add_argument("--sampler", default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (CPU)")
    ap.add_argument("--limit", type=int, default=None, help="first N held-out structures only")
    ap.add_argument("--out", type=Path, default=None, help="rows as JSON")
    args = ap.parse_args(argv)

    import torch

    from densitydiff.sharpen.demo import heldout_ids
    from densitydiff.sharpen.evaluate import evaluate_structures, format_table, summarise
    from densitydiff.sharpen.report import results_json

    if args.threads:
        torch.set_num_threads(args.threads)
    ids = heldout_ids()[: args.limit]
    paths = [find_structure(args.structures_dir, s) for s in ids]
    models = [] if args.no_models else (args.checkpoint or ["default", "unet"])
    t0 = time.perf_counter()

    def progress(ev) -> None:
        print(f"# {ev.structure} done ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)

    rows = evaluate_structures(
        paths,
        models,
        input_resolution=args.input_resolution,
        target_resolution=args.target_resolution,
        sampler=args.sampler,
        steps=args.steps,
        device=args.device,
        batch_size=args.batch_size,
        on_result=progress,
        fix_elements=True,
    )
    summary = summarise(rows)
    print(format_table(rows, summary), file=sys.stderr)
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    print(
        f"held-out list ({len(ids)} structures), {args.input_resolution:g} Å -> "
        f"{args.target_resolution:g} Å; models {', '.join(models) or 'none'}; sampler "
        f"{args.sampler or 'model default'}, steps {args.steps or 'model default'}; "
        f"{device}, {platform.processor() or platform.machine()}, "
        f"torch threads {torch.get_num_threads()}; total {time.perf_counter() - t0:.0f} s\n"
    )
    print(markdown(rows, summary))
    if args.out:
        args.out.write_text(json.dumps(results_json(rows, summary), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
