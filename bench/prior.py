"""Bench for the latent diffusion prior: the issue's bars with the default 16 x 128 MLP.

For each latent set (ring, curve, 4-mode mixture in 8-D, and cryoDRGN's zvals_het-8_4k.pkl):
train, then MMD / energy / SW2 of learned and N(0, I) samples against the two-halves noise floor;
for the mixture the fraction of samples outside every mode; and the time and NFE to draw 10,000
latents with the dopri5 ODE on this CPU.

    PYTHONPATH=src python bench/prior.py [--epochs 300] [--sets circular,linear,compositional,het8]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from densitydiff.prior import synthetic
from densitydiff.prior.checkpoint import load_prior
from densitydiff.prior.config import PriorConfig
from densitydiff.prior.evaluate import evaluate_prior
from densitydiff.prior.latents import Latents, load_latents
from densitydiff.prior.sample import sample_prior
from densitydiff.prior.train import train_prior

REPO = Path(__file__).resolve().parents[1]


def latent_set(name: str, n: int):
    if name == "circular":
        return synthetic.circular(n), None
    if name == "linear":
        return synthetic.linear(n), None
    if name == "compositional":
        mix = synthetic.compositional(n)
        return mix.z, mix
    if name == "het8":
        return load_latents(REPO / "tests" / "data" / "zvals_het-8_4k.pkl").mu, None
    raise SystemExit(f"unknown set {name}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", default="circular,linear,compositional,het8")
    p.add_argument("--n", type=int, default=10000, help="synthetic latents per set")
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--depth", type=int, default=16)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help="write all results as JSON here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    results = {}
    for name in args.sets.split(","):
        z, mix = latent_set(name, args.n)
        cfg = PriorConfig(epochs=args.epochs, width=args.width, depth=args.depth)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            train_prior(Latents(z), Path(tmp) / "run", cfg, progress=False)
            train_s = time.perf_counter() - t0
            prior = load_prior(Path(tmp) / "run")
        ev = evaluate_prior(prior, z, seed=0)
        r = {
            "n": len(z),
            "train_seconds": train_s,
            "steps": args.epochs * int(np.ceil(len(z) / cfg.batch_size)),
            "mmd_floor": ev["floor"]["mmd"],
            "mmd_learned": ev["learned"]["mmd"],
            "mmd_gaussian": ev["gaussian"]["mmd"],
            "learned_over_floor": ev["mmd_learned_over_floor"],
            "learned_over_gaussian": ev["mmd_learned_over_gaussian"],
            "mmd_learned_all": ev["learned_all"]["mmd"],
            "mmd_gaussian_all": ev["gaussian_all"]["mmd"],
            "learned_over_gaussian_all": ev["mmd_learned_over_gaussian_all"],
            "energy": {k: ev[k]["energy"] for k in ("floor", "learned", "gaussian")},
            "sw2": {k: ev[k]["sw2"] for k in ("floor", "learned", "gaussian")},
        }
        big, info = sample_prior(prior, 10000, "ode", seed=11)
        r["ode_10k_seconds"], r["ode_10k_nfe"] = info["seconds"], info["nfe"]
        heun, hinfo = sample_prior(prior, 10000, "heun", steps=32, seed=11)
        r["heun32_10k_seconds"], r["heun32_10k_nfe"] = hinfo["seconds"], hinfo["nfe"]
        if mix is not None:
            radius = synthetic.chi_radius(z.shape[1])
            r["outside_radius_sd"] = radius
            r["outside_learned"] = synthetic.outside_modes(big, mix.means, mix.sd, radius)
            r["outside_data"] = synthetic.outside_modes(mix.z, mix.means, mix.sd, radius)
            r["outside_literal3sd_learned"] = synthetic.outside_modes(big, mix.means, mix.sd, 3.0)
            r["outside_literal3sd_data"] = synthetic.outside_modes(mix.z, mix.means, mix.sd, 3.0)
            gauss, _ = sample_prior(prior, 10000, "gaussian", seed=11)
            r["outside_gaussian"] = synthetic.outside_modes(gauss, mix.means, mix.sd, radius)
        results[name] = r
        print(name, json.dumps(r), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
