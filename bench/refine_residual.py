"""Where a refine model's sample mean loses to its own predictor: the residual DDPM on patches.

On the validation patches of a store (one pair, no augmentation) it measures, per sampling
recipe, the MSE of the prediction alone, of prediction + one residual draw and of prediction +
the mean of S draws against the target, and splits the sampled residual r into what helps and
what hurts: its correlation with the true residual (target - prediction) and its rms against
the true residual's. A residual model that has learned the posterior has corr > 0 and the MSE
of the mean below the prediction's; one that has not adds error.

  PYTHONPATH=src python bench/refine_residual.py --store real32.zarr --checkpoint refine \
      [--pair 4:2] [--patches 32] [--samples 4] [--recipe ddim:10 --recipe ddim:4:anti]

A recipe SAMPLER:STEPS draws independently; SAMPLER:STEPS:anti in antithetic pairs
(densitydiff.diffusion.sampling.antithetic_noise), whose mean cancels the part odd in the noise.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", required=True)
    ap.add_argument("--checkpoint", default="refine")
    ap.add_argument("--split", default="val")
    ap.add_argument("--pair", default="4:2")
    ap.add_argument("--patches", type=int, default=32)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--recipe", action="append", help="SAMPLER:STEPS[:anti] (repeatable)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from densitydiff.data.dataset import PatchDataset
    from densitydiff.diffusion.sampling import Sampling, antithetic_noise
    from densitydiff.sharpen.checkpoint import load_sharpener

    pair = tuple(float(v) for v in args.pair.split(":"))
    ds = PatchDataset(args.store, args.split, pairs=[pair], augment=False)
    n = min(args.patches, len(ds))
    idx = np.linspace(0, len(ds) - 1, n).round().astype(int)
    items = [ds[int(i)] for i in idx]
    ckpt = load_sharpener(args.checkpoint)
    model = ckpt.model.eval()
    clip = model.sampling.clip_x0
    recipes = args.recipe or [f"{model.sampling.sampler}:{model.sampling.steps}"]
    rows = []
    for recipe in recipes:
        name, steps, *pairing = recipe.split(":")
        if pairing not in ([], ["anti"]):
            raise SystemExit(f"--recipe {recipe}: use SAMPLER:STEPS or SAMPLER:STEPS:anti")
        sampling = Sampling(name, int(steps), clip, antithetic=pairing == ["anti"])
        keys = ("pred", "one", "mean", "draw_rms", "mean_rms", "spread")
        acc = {k: 0.0 for k in keys}
        dots, norms_r, norms_t = 0.0, 0.0, 0.0
        t0 = time.perf_counter()
        for b in range(0, n, args.batch):
            chunk = items[b : b + args.batch]
            inp = torch.stack([c["input"] for c in chunk])
            tgt = torch.stack([c["target"] for c in chunk])
            r_in = torch.tensor([c["input_resolution"] for c in chunk], dtype=torch.float32)
            r_out = torch.tensor([c["target_resolution"] for c in chunk], dtype=torch.float32)
            with torch.no_grad():
                pred = model.predictor(inp, r_in, r_out)
                gens = [torch.Generator().manual_seed((1000 + b) * 1000 + s)
                        for s in range(args.samples)]  # fmt: skip
                draws = torch.stack(
                    [
                        model.sample_residual(inp, pred, r_in, r_out, generator=g,
                                              sampling=sampling, noise_sign=sign)
                        for g, sign in antithetic_noise(gens, sampling.antithetic)
                    ]
                )  # fmt: skip
            true_r = tgt - pred
            mean_r = draws.mean(0)
            k = len(chunk) / n
            acc["pred"] += k * float((true_r**2).mean())
            acc["one"] += k * float(((true_r - draws[0]) ** 2).mean())
            acc["mean"] += k * float(((true_r - mean_r) ** 2).mean())
            acc["draw_rms"] += k * float((draws**2).mean())
            acc["mean_rms"] += k * float((mean_r**2).mean())
            acc["spread"] += k * float(draws.var(0, unbiased=True).mean())
            dots += float((mean_r * true_r).sum())
            norms_r += float((mean_r**2).sum())
            norms_t += float((true_r**2).sum())
        row = {
            "recipe": recipe,
            "mse_prediction": acc["pred"],
            "mse_one_draw": acc["one"],
            f"mse_mean_of_{args.samples}": acc["mean"],
            "corr_mean_residual_true_residual": dots / max(np.sqrt(norms_r * norms_t), 1e-12),
            "rms_true_residual": float(np.sqrt(acc["pred"])),
            "rms_draw": float(np.sqrt(acc["draw_rms"])),
            "rms_mean_residual": float(np.sqrt(acc["mean_rms"])),
            "std_over_draws": float(np.sqrt(acc["spread"])),
            "seconds": round(time.perf_counter() - t0, 1),
        }
        rows.append(row)
        print(json.dumps(row))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"args": vars(args), "patches": n, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
