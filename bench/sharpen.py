"""Time and peak memory (RSS) of whole-map sharpening for 128^3 and 256^3 maps on CPU.

Each size runs in a fresh subprocess (peak RSS from resource.getrusage, which never goes
down, so one process per size). The model is a randomly initialised regression U-Net of
--preset with 32^3 tiles (tiny by default: memory is the point and time per tile is the
network's cost; `small`, the lead's model shape, costs 0.22 s per 32^3 tile on one core), and
with --ddpm a DDPM of the same preset with --steps DPM-Solver++ steps. Maps are Gaussian noise
(every tile has voxels above the solvent threshold, so none is skipped).

    PYTHONPATH=src python bench/sharpen.py [--sizes 128 256] [--ddpm --steps 2]
    PYTHONPATH=src python bench/sharpen.py --sizes 128 --packaged unet default --threads 2
    PYTHONPATH=src python bench/sharpen.py --sizes 128 --packaged unet --exact --threads 2
    PYTHONPATH=src python bench/sharpen.py --sizes 128 --packaged default --samples 4 --threads 2
    PYTHONPATH=src python bench/sharpen.py --sizes 128 --packaged refine --samples 4 --threads 2 \
        --batch-size 4
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import numpy as np, torch
torch.set_num_threads(int(sys.argv[4]))
n, kind, steps = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
from densitydiff.maps import DensityMap
from densitydiff.sharpen.checkpoint import SharpenCheckpoint
from densitydiff.sharpen.config import load_config
from densitydiff.sharpen.infer import sharpen_map
from densitydiff.sharpen.models import build_model
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
packaged = sys.argv[6]
exact = sys.argv[7] == "exact"
samples = int(sys.argv[8])
batch = int(sys.argv[9]) if sys.argv[9] != "auto" else None
if packaged:  # a model shipped in the package, with its own default sampler and steps
    from densitydiff.sharpen.checkpoint import load_sharpener
    sharpener = load_sharpener(packaged)
    kind, steps = sharpener.kind, None
else:
    config = load_config(sys.argv[5], {"model": kind})
    torch.manual_seed(0)
    model = build_model(config).eval()
    sharpener = SharpenCheckpoint(model, config, 1.0, 32, sys.argv[5] + "-" + kind)
rng = np.random.default_rng(0)
array = rng.normal(size=(n, n, n)).astype(np.float32)
density = DensityMap(array, 1.0)
loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
res = sharpen_map(density, sharpener, input_resolution=4.0, target_resolution=2.0,
                  steps=steps, sampler=None if packaged else "dpmpp", batch_size=batch,
                  exact_tiles=exact, samples=samples)
seconds = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"n": n, "kind": kind, "packaged": packaged or None,
  "steps": res.info.get("steps"), "exact_tiles": exact, "tile": res.info["tile"],
  "samples": samples, "draws": res.info["draws"], "batch_size": res.info["batch_size"],
  "map_mb": array.nbytes / 2**20, "tiles": res.n_tiles, "skipped": res.n_skipped,
  "preset": sys.argv[5], "seconds": round(seconds, 1),
  "s_per_tile": round(seconds / res.n_tiles, 3),
  "rss_before_mb": round(base / 1024), "rss_with_map_mb": round(loaded / 1024),
  "peak_rss_mb": round(peak / 1024), "peak_minus_start_mb": round((peak - base) / 1024)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--ddpm", action="store_true", help="also a small DDPM (--steps)")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--preset", default="tiny", help="tiny (fast) or small (the lead's)")
    parser.add_argument(
        "--packaged", nargs="+", default=None, help="packaged models instead (default, unet)"
    )
    parser.add_argument("--exact", action="store_true", help="--exact-tiles (local models)")
    parser.add_argument("--samples", type=int, default=1, help="draws (mean + std for S >= 2)")
    parser.add_argument(
        "--batch-size", type=int, default=None, help="tiles per call (default: sharpen_map's)"
    )
    args = parser.parse_args()
    kinds = args.packaged or (["unet"] + (["ddpm"] if args.ddpm else []))
    rows = []
    for kind in kinds:
        for n in args.sizes:
            cmd = [sys.executable, "-c", CHILD, str(n), kind, str(args.steps)]
            cmd += [str(args.threads), args.preset, kind if args.packaged else ""]
            cmd += ["exact" if args.exact else "fast", str(args.samples)]
            cmd += [str(args.batch_size) if args.batch_size else "auto"]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)


if __name__ == "__main__":
    main()
