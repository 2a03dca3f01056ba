"""Quality against speed of the DDPM samplers: DPM-Solver++ and DDIM at 10/20/50 steps against
ancestral DDPM at all T steps, on 32^3 tiles of held-out structures, 4 Å -> 2 Å.

Tiles: for the first --structures held-out structures (src/densitydiff/models/heldout.txt, files
from /work/shared/data/structures), the truth and input are simulated on one grid at the
model's voxel size and z-scored over the whole map (as in training); --tiles-per-structure
tiles of the model's patch size are cut at random positions with protein in them (same tiles for
every sampler). Quality: mean FSC-AUC of each sampled tile against its truth tile; speed:
wall-clock seconds per tile (batches of --batch-size). Prints a markdown table.

  PYTHONPATH=src python bench/samplers.py [--checkpoint refine] [--steps 10 20 50]
      [--structures 3] [--tiles-per-structure 2] [--device cuda] [--skip-ddpm] [--tile 64]

--tile 64 times 64^3 tiles (the U-Net is convolutional; its GroupNorm statistics then span the
larger tile, so quality there is not the packaged default's).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

DATA = Path("/work/shared/data/structures")


def find_structure(folder: Path, sid: str) -> Path:
    for suffix in (".pdb.gz", ".cif.gz", ".pdb", ".cif", ".ent.gz"):
        if (folder / f"{sid}{suffix}").is_file():
            return folder / f"{sid}{suffix}"
    raise SystemExit(f"held-out structure {sid} not found in {folder}")


def tiles(ids, folder: Path, voxel: float, patch: int, per: int, r_in: float, r_out: float, rng):
    """(inputs, truths): (n, patch, patch, patch) z-scored tiles from simulated maps."""
    from densitydiff.filters import pad_or_crop, zscore
    from densitydiff.simulate.density import simulate_map
    from densitydiff.structures import read_structure

    xs, ys = [], []
    for sid in ids:
        st = read_structure(find_structure(folder, sid))
        truth = simulate_map(st, r_out, voxel)
        inp = simulate_map(st, r_in, like=truth)
        t, _ = zscore(truth.array)
        x, _ = zscore(inp.array)
        shape = tuple(max(s, patch) for s in t.shape)
        t, x = pad_or_crop(t, shape, float(t.min())), pad_or_crop(x, shape, float(x.min()))
        found = 0
        for _ in range(200):
            if found == per:
                break
            c = [int(rng.integers(0, s - patch + 1)) for s in shape]
            sl = tuple(slice(a, a + patch) for a in c)
            if t[sl].std() < 0.5:  # mostly solvent
                continue
            xs.append(x[sl])
            ys.append(t[sl])
            found += 1
    return np.stack(xs).astype(np.float32), np.stack(ys).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default="refine")
    ap.add_argument("--structures-dir", type=Path, default=DATA)
    ap.add_argument("--structures", type=int, default=3, help="first N held-out structures")
    ap.add_argument("--tiles-per-structure", type=int, default=2)
    ap.add_argument("--steps", type=int, nargs="+", default=[10, 20, 50])
    ap.add_argument("--samplers", nargs="+", default=["dpmsolver++", "ddim"])
    ap.add_argument("--skip-ddpm", action="store_true", help="no ancestral run (T steps)")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tile", type=int, default=None, help="tile edge (default: model's patch)")
    args = ap.parse_args(argv)

    import torch

    from densitydiff import metrics
    from densitydiff.diffusion.sampling import Sampling
    from densitydiff.sharpen.checkpoint import load_sharpener
    from densitydiff.sharpen.demo import heldout_ids

    if args.threads:
        torch.set_num_threads(args.threads)
    sh = load_sharpener(args.checkpoint, device=args.device)
    if sh.kind != "ddpm":
        raise SystemExit(f"{args.checkpoint} is a {sh.kind} model, not a DDPM")
    rng = np.random.default_rng(args.seed)
    ids = heldout_ids()[: args.structures]
    patch = args.tile or sh.patch
    if patch % sh.downsampling:
        raise SystemExit(f"--tile must be a multiple of {sh.downsampling}")
    x, y = tiles(
        ids, args.structures_dir, sh.voxel_size, patch, args.tiles_per_structure, 4.0, 2.0, rng
    )
    n = len(x)
    T = sh.model.ddpm.timesteps

    def auc(a: np.ndarray) -> float:
        return float(
            np.mean([metrics.fsc_auc(metrics.fsc(a[i], y[i], sh.voxel_size)) for i in range(n)])
        )

    def run(sampler: str, steps: int | None) -> tuple[float, float]:
        g = torch.Generator(device=args.device).manual_seed(args.seed)
        outs = []
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for i in range(0, n, args.batch_size):
            xb = torch.from_numpy(x[i : i + args.batch_size])[:, None].to(args.device)
            r_in = torch.full((len(xb),), 4.0, device=args.device)
            r_out = torch.full((len(xb),), 2.0, device=args.device)
            default = sh.model.sampling
            sampling = Sampling(sampler, steps or default.steps, default.clip_x0)
            out = sh.model.sharpen(xb, r_in, r_out, generator=g, sampling=sampling)
            outs.append(out[:, 0].float().cpu().numpy())
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = (time.perf_counter() - t0) / n
        return auc(np.concatenate(outs)), seconds

    with torch.no_grad():  # warm-up, untimed: first-call allocations and kernel choices
        xb = torch.from_numpy(x[: args.batch_size])[:, None].to(args.device)
        r = torch.full((len(xb),), 4.0, device=args.device)
        for name in args.samplers:
            sh.model.sharpen(xb, r, r / 2, sampling=Sampling(name, 2))
    results = [("input (no model)", "–", auc(x), 0.0)]
    for sampler in args.samplers:
        for steps in args.steps:
            q, s = run(sampler, steps)
            results.append((sampler, str(steps), q, s))
            print(f"# {sampler} {steps}: FSC-AUC {q:.3f}, {s:.2f} s/tile", file=sys.stderr)
    if not args.skip_ddpm:
        q, s = run("ddpm", None)
        results.append(("ddpm (ancestral)", str(T), q, s))
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    print(
        f"{sh.name} ({sh.kind}, T = {T}); {n} tiles of {patch}^3 from {', '.join(ids)}; "
        f"4 Å -> 2 Å; {device} ({platform.machine()}), torch threads "
        f"{torch.get_num_threads()}, batch {args.batch_size}\n"
    )
    print(f"| sampler | steps | FSC-AUC (mean over tiles) | seconds per {patch}^3 tile |")
    print("|---|---|---|---|")
    for sampler, steps, q, s in results:
        print(f"| {sampler} | {steps} | {q:.3f} | {s:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
