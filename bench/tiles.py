"""Exact against fast tiling: how far the default 32^3 tiles are from one pass over the map.

For the packaged regression U-Net (a local network: `--exact-tiles` equals one pass) on the
packaged held-out examples (4 Å input, 2 Å truth, simulated at the model's 1 Å voxels): the
largest and RMS difference between the default tiling and exact tiles (relative to the RMS of
the exact map), FSC-AUC against the truth for both, tiles and seconds for each.

    PYTHONPATH=src python bench/tiles.py [--checkpoint unet] [--threads 2]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="unet")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=2)
    args = parser.parse_args()

    import torch

    from densitydiff import metrics
    from densitydiff.sharpen.checkpoint import load_sharpener
    from densitydiff.sharpen.demo import EXAMPLES
    from densitydiff.sharpen.infer import sharpen_map
    from densitydiff.simulate.density import simulate_map
    from densitydiff.structures import read_structure

    torch.set_num_threads(args.threads)
    sharpener = load_sharpener(args.checkpoint)
    rows = []
    for path in sorted(EXAMPLES.glob("*.gz")):
        structure = read_structure(path)
        truth = simulate_map(structure, 2.0, sharpener.voxel_size, padding=8.0)
        coarse = simulate_map(structure, 4.0, like=truth)
        runs = {}
        for label, exact in (("fast", False), ("exact", True)):
            t0 = time.perf_counter()
            res = sharpen_map(coarse, sharpener, input_resolution=4.0, target_resolution=2.0,
                              batch_size=args.batch_size, exact_tiles=exact)  # fmt: skip
            runs[label] = (res, time.perf_counter() - t0)
        fast, exact = runs["fast"][0].mean.array, runs["exact"][0].mean.array
        scale = float(np.sqrt(np.mean((exact - exact.mean()) ** 2)))
        diff = fast - exact
        auc = {k: metrics.fsc_auc(metrics.fsc(r.mean.array, truth.array, truth.voxel_size))
               for k, (r, _) in runs.items()}  # fmt: skip
        rows.append((path.name.split(".")[0], "x".join(map(str, coarse.shape)),
                     float(np.abs(diff).max() / scale), float(np.sqrt(np.mean(diff**2)) / scale),
                     auc["fast"], auc["exact"], runs["fast"][0].n_tiles, runs["fast"][1],
                     runs["exact"][0].n_tiles, runs["exact"][1], runs["exact"][0].info["tile"],
                     runs["exact"][0].info["margin"]))  # fmt: skip
    print(f"{sharpener.name} ({sharpener.kind}); CPU ({platform.machine()}), torch threads "
          f"{torch.get_num_threads()}, batch {args.batch_size}\n")  # fmt: skip
    print("| map | grid | max diff / RMS | RMS diff / RMS | FSC-AUC fast | FSC-AUC exact "
          "| fast tiles | fast s | exact tiles (edge, margin) | exact s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]:.3f} | {r[3]:.4f} | {r[4]:.3f} | {r[5]:.3f} | {r[6]} "
              f"| {r[7]:.1f} | {r[8]} ({r[10]}, {r[11]}) | {r[9]:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
