"""Benchmark: does the learned latent prior close the loop on a simulated trajectory (not a test)?

    PYTHONPATH=src python bench/hetero_prior.py [--n-images 10000] [--box 64] [--pixel-size 2]
        [--epochs 25] [--lr 1e-4] [--prior-epochs 400] [--samples 20] [--points 10]
        [--seed 0] [--threads 1] [--keep DIR [--reuse-run]] [--precision bf16-mixed]

With --keep DIR --reuse-run it scores DIR/run when that is a finished run of --epochs on
DIR/data (e.g. `bench/hetero.py --keep DIR`'s, same options), instead of training again.

Issue #12, item 3. Simulates the ADK closed->open trajectory (98 frames, `simulate particles
--trajectory`), trains `hetero train` (zdim 8, 256 x 3), trains `prior train` on its z.pkl
(the default 16 x 128 EDM prior), then, each volume decoded with the run's decoder and scored by
its nearest ground-truth frame (`hetero.evaluate.nearest_state`, FSC-AUC to Nyquist):
- `--samples` latents from the prior (ODE) and as many from N(0, I) (the VAE's own prior): mean
  nearest-state FSC-AUC, and as references the same for as many encoded training latents
  (their off_manifold left-one-out) and for the population-average volume;
- off_manifold of each sampled latent (`hetero.evaluate.off_manifold`: distance to the nearest
  training latent over the training latents' median nearest-neighbour distance): median, max,
  and how many exceed the 99th percentile of the training latents' own leave-one-out ratios;
- `--points` latents from the median latent of frame 0's images to that of the last frame's,
  through noise space (`prior.interpolate`, spherical) and, for reference, on the straight line:
  the nearest frame per point, whether it moves monotonically, and its span (last minus
  first nearest frame; a monotone path that spans a few frames has not moved).
One JSON line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import _hetero_common as common
import numpy as np

TRAJECTORY = common.DATA / "trajectories/adk_closed_to_open.pdb.gz"


def scored(model, zs, truths, pixel_size) -> tuple[list[int], list[float]]:
    """(nearest frame, its FSC-AUC) of the volume decoded at each latent."""
    from densitydiff.hetero.evaluate import nearest_state
    from densitydiff.hetero.volume import decode_volume

    pairs = [nearest_state(decode_volume(model, z), truths, pixel_size) for z in zs]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_options(ap)
    ap.add_argument("--trajectory", type=Path, default=TRAJECTORY)
    ap.add_argument("--prior-epochs", type=int, default=400)
    ap.add_argument("--samples", type=int, default=20, help="Latents from each prior.")
    ap.add_argument("--points", type=int, default=10, help="Points on the interpolation path.")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from densitydiff.formats.latents import read_latents
    from densitydiff.hetero.checkpoint import load_hetero
    from densitydiff.hetero.evaluate import (
        is_monotone,
        nearest_distances,
        nearest_state,
        off_manifold,
    )
    from densitydiff.prior.checkpoint import load_prior
    from densitydiff.prior.config import PriorConfig
    from densitydiff.prior.interpolate import interpolate
    from densitydiff.prior.sample import sample_prior
    from densitydiff.prior.train import train_prior

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_hetero_prior_"))
    data, run, prior_dir = work / "data", work / "run", work / "prior"
    t_sim = common.simulate(data, ["--trajectory", str(args.trajectory)], args)
    frame = common.states(data)
    t_train = common.train(data, run, args)
    shutil.rmtree(prior_dir, ignore_errors=True)
    t0 = time.perf_counter()
    pconfig = PriorConfig(epochs=args.prior_epochs, seed=args.seed)
    train_prior(run / "z.pkl", prior_dir, pconfig, progress=False)
    t_prior = time.perf_counter() - t0

    mu, _ = read_latents(run / "z.pkl")
    model, prior = load_hetero(run), load_prior(prior_dir)
    truths = common.truth_volumes(data)
    px = args.pixel_size
    z_prior, info = sample_prior(prior, args.samples, "ode", seed=args.seed)
    z_gauss, _ = sample_prior(prior, args.samples, "gaussian", seed=args.seed + 1)
    pick = np.random.default_rng(args.seed).choice(len(mu), args.samples, replace=False)
    z_encoded = mu[pick]

    own = nearest_distances(mu, mu, leave_one_out=True)
    threshold = float(np.percentile(own / np.median(own), 99))
    counts = np.bincount(frame, minlength=len(truths))
    average = sum(c * t for c, t in zip(counts, truths) if c) / counts.sum()
    sets = {}
    for name, zs in (("prior", z_prior), ("gaussian", z_gauss), ("encoded", z_encoded)):
        nearest, auc = scored(model, zs, truths, px)
        # training latents lie on the reference: their own leave-one-out ratio, not 0
        ratio = own[pick] / np.median(own) if name == "encoded" else off_manifold(zs, mu)
        sets[name] = {
            "mean_nearest_fsc_auc": float(np.mean(auc)),
            "nearest_frames": nearest,
            "off_manifold_median": float(np.median(ratio)),
            "off_manifold_max": float(ratio.max()),
            "n_off_manifold": int((ratio > threshold).sum()),
        }
    present = np.flatnonzero(counts)  # the end states: first and last frame with images
    ends = [np.median(mu[frame == f], axis=0) for f in (present[0], present[-1])]
    paths = {}
    for through in ("noise", "latent"):
        zs = interpolate(prior, ends[0], ends[1], steps=args.points, through=through)
        nearest, auc = scored(model, zs, truths, px)
        # monotone alone is empty when the frame hardly moves: the span says how far it went
        paths[through] = {"nearest_frames": nearest, "monotone": is_monotone(nearest),
                          "span": nearest[-1] - nearest[0],
                          "mean_fsc_auc": float(np.mean(auc))}  # fmt: skip
    out = {
        **common.settings(args),
        "invert_data": common.invert_data(data),
        "n_frames": len(truths),
        "prior_epochs": args.prior_epochs,
        "prior_network": f"{pconfig.width}x{pconfig.depth}",
        "samples": args.samples,
        **{f"{k}_{m}": v[m] for k, v in sets.items() for m in v},
        "off_manifold_threshold_p99": threshold,
        "average_volume_nearest_fsc_auc": nearest_state(average, truths, px)[1],
        "end_frames": [int(present[0]), int(present[-1])],
        **{f"interpolation_{k}_{m}": v[m] for k, v in paths.items() for m in v},
        "prior_sample_nfe": info["nfe"],
        "simulate_seconds": t_sim,
        "seconds_per_epoch": t_train / args.epochs,
        "prior_train_seconds": t_prior,
    }
    print(json.dumps(out))
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
