"""The project's held-out list, 4 Å -> 2 Å: FSC-AUC, SSIM and FSC-0.5 per model and baseline.

Structures: src/densitydiff/models/heldout.txt (or --structures ID,ID, or the --split of a --store),
read from /work/shared/data/structures (or --structures-dir). Prints markdown tables (means over
structures, then per structure) and writes every row as JSON (--out). Models default to the packaged
refine model and regression U-Net (the default). `--b-factors` simulates the inputs with their
atomic B-factors (issue #11's "as real maps look"; the truth stays B = 0), `--global-b` and `--snr`
add a global B and half-map-FSC noise; `--samples S` (>= 2) adds the std map's Spearman and 1/2-std
coverage (the model's std_scale applied) to the generative models' rows.

  PYTHONPATH=src python bench/evaluate.py [--checkpoint default --checkpoint unet]
      [--sampler dpmpp --steps 20] [--device cuda] [--limit 3] [--out bench_evaluate.json]
      [--b-factors] [--samples 8] [--structures 1orc,1aki | --split val --store STORE.zarr]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

DATA = Path("/work/shared/data/structures")
SUFFIXES = (".pdb.gz", ".cif.gz", ".pdb", ".cif", ".ent.gz")


def find_structure(folder: Path, sid: str, source: str = "") -> Path:
    """The file of structure `sid` in `folder`: its store source name, else ID + a suffix."""
    for name in ([source] if source else []) + [f"{sid}{suffix}" for suffix in SUFFIXES]:
        p = folder / name
        if p.is_file():
            return p
    raise SystemExit(f"structure {sid} not found in {folder}")


def structure_paths(
    folder: Path,
    ids: str | None = None,
    store: Path | None = None,
    split: str | None = None,
    limit: int | None = None,
) -> tuple[str, list[Path]]:
    """(what they are, paths): the listed ids, a store's split, or the held-out list."""
    from densitydiff.data.layout import split_structures
    from densitydiff.sharpen.demo import heldout_ids

    if ids and (store or split):
        raise SystemExit("give --structures or --split/--store, not both")
    if ids:
        wanted = {s.strip(): "" for s in ids.split(",") if s.strip()}
        label = "listed structures"
    elif store or split:
        if not (store and split):
            raise SystemExit("--split and --store go together")
        wanted = split_structures(store, split)
        label = f"{split} structures of {store}"
    else:
        wanted = {s: "" for s in heldout_ids()}
        label = "held-out list"
    chosen = list(wanted.items())[:limit]
    if not chosen:
        raise SystemExit(f"no structures: the {label} is empty")
    return f"{label} ({len(chosen)} structures)", [find_structure(folder, s, f) for s, f in chosen]


def add_input_options(ap: argparse.ArgumentParser) -> None:
    """How the inputs are simulated (shared with bench/calibrate.py, which must match)."""
    ap.add_argument("--b-factors", action="store_true", help="inputs with their atomic B")
    ap.add_argument("--global-b", default="0", help="extra input B (Å^2): B or LO:HI")
    ap.add_argument("--snr", default=None, help="input noise: low-frequency SNR or LO:HI")
    ap.add_argument("--postprocess", default=None,
                    help="sharpen inputs as deposited maps: Guinier-B scale or LO:HI")
    ap.add_argument("--input-resolution", type=float, default=4.0)
    ap.add_argument("--target-resolution", type=float, default=2.0)
    ap.add_argument("--padding", type=float, default=10.0, help="Å of solvent around the atoms")


def input_words(args) -> str:
    parts = ["atomic B" if args.b_factors else "B = 0"]
    if args.global_b not in ("0", "0:0"):
        parts.append(f"global B {args.global_b} Å^2")
    parts.append(f"SNR {args.snr}" if args.snr else "no noise")
    if args.postprocess:
        parts.append(f"post-processed (Guinier B x {args.postprocess})")
    parts.append(f"{args.padding:g} Å padding")
    return ", ".join(parts)


def markdown(rows: list[dict], summary: dict) -> str:
    """Means per method (FSC-AUC, SSIM, FSC 0.5, CC_mask, seconds, and the std map's Spearman
    and coverage when measured), then per structure."""

    def f(v, fmt):
        return "–" if v is None else fmt.format(v)

    unc = any(r.get("coverage_2") is not None for r in rows)
    head = (
        "| method | FSC-AUC | SSIM | FSC 0.5 (Å) | FSC 0.143 (Å) | CC mask | PSNR (dB) | s / map |"
    )
    if unc:
        head += " Spearman(std, err) mask | 1-std cover | 2-std cover |"
    out = [head, "|---" * head.count(" | ") + "|---|"]
    for m, s in summary.items():
        line = (
            f"| {m} | {f(s['fsc_auc'], '{:.3f}')} | {f(s['ssim'], '{:.3f}')} | "
            f"{f(s['fsc_0.5'], '{:.2f}')} | {f(s['fsc_0.143'], '{:.2f}')} | "
            f"{f(s['cc_mask'], '{:.3f}')} | {f(s['psnr'], '{:.2f}')} | "
            f"{f(s['seconds'], '{:.1f}')} |"
        )
        if unc:
            line += (
                f" {f(s['spearman_mask'], '{:.3f}')} | {f(s['coverage_1'], '{:.3f}')} | "
                f"{f(s['coverage_2'], '{:.3f}')} |"
            )
        out.append(line)
    head = "| structure | method | FSC-AUC | SSIM | FSC 0.5 (Å) |"
    out += ["", head + (" Spearman mask | 2-std cover |" if unc else "")]
    out.append("|---" * (head.count(" | ") + 1 + (2 if unc else 0)) + "|")
    for r in rows:
        line = (
            f"| {r['structure']} | {r['method']} | {r['fsc_auc']:.3f} | {r['ssim']:.3f} | "
            f"{r['fsc_0.5']:.2f} |"
        )
        if unc:
            line += f" {f(r.get('spearman_mask'), '{:.3f}')} | {f(r.get('coverage_2'), '{:.3f}')} |"
        out.append(line)
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", action="append", help="model (repeatable)")
    ap.add_argument("--no-models", action="store_true", help="the classical baselines only")
    ap.add_argument("--structures-dir", type=Path, default=DATA)
    ap.add_argument("--structures", default=None, help="ID,ID instead of the held-out list")
    ap.add_argument("--store", type=Path, default=None, help="a training store (with --split)")
    ap.add_argument("--split", default=None, choices=("train", "val", "test"))
    add_input_options(ap)
    ap.add_argument("--samples", type=int, default=1, help="samples per generative model")
    ap.add_argument("--sampler", default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (CPU)")
    ap.add_argument("--limit", type=int, default=None, help="first N structures only")
    ap.add_argument("--out", type=Path, default=None, help="rows as JSON")
    args = ap.parse_args(argv)

    import torch

    from densitydiff.sharpen.evaluate import evaluate_structures, format_table, summarise
    from densitydiff.sharpen.report import results_json

    if args.threads:
        torch.set_num_threads(args.threads)
    label, paths = structure_paths(
        args.structures_dir, args.structures, args.store, args.split, args.limit
    )
    models = [] if args.no_models else (args.checkpoint or ["refine", "regression"])
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
        seed=args.seed,
        samples=args.samples,
        device=args.device,
        batch_size=args.batch_size,
        on_result=progress,
        fix_elements=True,
        input_b_factors=args.b_factors,
        input_global_b=args.global_b,
        input_snr=args.snr,
        input_postprocess=args.postprocess,
        padding=args.padding,
    )
    summary = summarise(rows)
    print(format_table(rows, summary), file=sys.stderr)
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    print(
        f"{label}, {args.input_resolution:g} Å -> {args.target_resolution:g} Å; input "
        f"{input_words(args)}; models {', '.join(models) or 'none'}; samples {args.samples}; "
        f"sampler {args.sampler or 'model default'}, steps {args.steps or 'model default'}; "
        f"{device}, {platform.processor() or platform.machine()}, "
        f"torch threads {torch.get_num_threads()}; total {time.perf_counter() - t0:.0f} s\n"
    )
    print(markdown(rows, summary))
    if args.out:
        args.out.write_text(json.dumps(results_json(rows, summary), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
