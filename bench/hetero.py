"""Benchmark of the heterogeneity VAE on a simulated trajectory (not a test).

    PYTHONPATH=src python bench/hetero.py [--n-images 2000] [--box 32] [--pixel-size 3]
        [--epochs 5] [--snr 0.1] [--lr 1e-4] [--batch-size 8] [--seed 0] [--threads 1]
        [--keep DIR]

Simulates the ADK closed->open trajectory (../shared/data/trajectories, 98 frames) with
`densitydiff simulate particles --trajectory`, trains `hetero train` (zdim 8, 256 x 3 networks
by default), then prints: for frames 0/24/48/72/97 the FSC-AUC of the volume decoded at the
median latent of that frame's images against the frame's ground-truth volume; the floor no
heterogeneity model beats (the population-average volume: the images' mean of the truth
volumes, against each frame); a homogeneous backprojection of all images (what any
reconstruction from these images should reach); |corr(PC1 of z, frame)|; seconds per epoch.
One JSON line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import _hetero_common as common
import numpy as np

TRAJECTORY = common.DATA / "trajectories/adk_closed_to_open.pdb.gz"
FRAMES = (0, 24, 48, 72, 97)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_options(ap, n_images=2000, box=32, pixel_size=3.0, epochs=5)
    ap.add_argument("--trajectory", type=Path, default=TRAJECTORY)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from densitydiff.formats.latents import read_latents
    from densitydiff.hetero.checkpoint import load_hetero
    from densitydiff.hetero.evaluate import abs_corr, pca, volume_fsc_auc
    from densitydiff.hetero.volume import decode_volume

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_hetero_"))
    data = work / "data"
    t_sim = common.simulate(data, ["--trajectory", str(args.trajectory)], args)
    invert = common.invert_data(data)
    truth_state = common.states(data)
    run = work / "run"
    t_train = common.train(data, run, args)
    mu, _ = read_latents(run / "z.pkl")
    model = load_hetero(run)
    truths = dict(enumerate(common.truth_volumes(data)))
    counts = np.bincount(truth_state, minlength=max(truths) + 1)
    average = sum(counts[k] * truths[k] for k in truths) / counts.sum()
    rows = []
    for f in FRAMES:
        sel = truth_state == f
        if not sel.any() or f not in truths:
            continue
        vol = decode_volume(model, np.median(mu[sel], axis=0))
        rows.append(
            {
                "frame": f,
                "n": int(sel.sum()),
                "fsc_auc": volume_fsc_auc(vol, truths[f], args.pixel_size),
                "floor": volume_fsc_auc(average, truths[f], args.pixel_size),
            }
        )
    # a reference any reconstruction should reach: one homogeneous backprojection of all images
    from densitydiff.formats.ctf import load_ctf
    from densitydiff.formats.particles import load_poses, read_particles
    from densitydiff.simulate.reconstruct import backproject

    rot, trans = load_poses(data / "poses.pkl")
    images = read_particles(data / "particles.mrcs") * (-1.0 if invert else 1.0)
    homogeneous = backproject(images, rot, trans * args.box, load_ctf(data / "ctf.pkl"))
    for r in rows:
        r["backprojection"] = volume_fsc_auc(homogeneous, truths[r["frame"]], args.pixel_size)
    pc, ratio = pca(mu, 1)
    out = {
        "n_images": args.n_images,
        "box": args.box,
        "pixel_size": args.pixel_size,
        "snr": args.snr,
        "epochs": args.epochs,
        "lr": args.lr,
        "batch_size": args.batch_size,
        "zdim": args.zdim,
        "network": f"{args.width}x{args.layers}",
        "threads": args.threads,
        "invert_data": invert,
        "frames": rows,
        "mean_fsc_auc": float(np.mean([r["fsc_auc"] for r in rows])),
        "mean_floor": float(np.mean([r["floor"] for r in rows])),
        "mean_backprojection": float(np.mean([r["backprojection"] for r in rows])),
        "abs_corr_pc1_frame": abs_corr(pc[:, 0], truth_state),
        "pc1_explained": float(ratio[0]),
        "seconds_per_epoch": t_train / args.epochs,
        "simulate_seconds": t_sim,
    }
    print(json.dumps(out))
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
