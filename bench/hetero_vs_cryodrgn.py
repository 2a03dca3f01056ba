"""The heterogeneity VAE side by side with cryoDRGN 4.3.1's train_vae (issue #12; not a test).

    PYTHONPATH=src python bench/hetero_vs_cryodrgn.py [--n-images 10000] [--box 64]
        [--pixel-size 2] [--snr 0.1] [--defocus 1 2.5] [--epochs 25] [--zdim 8] [--width 256]
        [--layers 3] [--batch-size 8] [--lr 1e-4] [--pe-type geom_lowf] [--seed 0]
        [--threads 1] [--profile-images 256] [--cryodrgn /work/venv-cryodrgn/bin/cryodrgn]
        [--keep DIR] [--densitydiff-run RUN]

cryoDRGN is called through its CLI only (`cryodrgn train_vae`, `cryodrgn eval_vol`), installed
in its own venv; it is no dependency of densitydiff. One data set from `densitydiff simulate
particles --trajectory` (ADK, 98 frames); both tools train on the same particles.mrcs, poses.pkl
and ctf.pkl with the same zdim, network sizes, epochs, seed, batch size, lr and positional
encoding, one after the other, each in a child process with the same thread count. Prints one
JSON line: per frame (0/24/48/72/97) the FSC-AUC against the frame's truth of each tool's volume
at the median latent of the frame's images, the population-average floor, |corr(PC1 of z,
frame)|, seconds per epoch, peak RSS, and (with --profile-images) where one epoch's time goes.
--densitydiff-run RUN uses a finished `hetero train` run of the same data (KEEP/data) and
settings instead of training densitydiff again (cryoDRGN's 25 epochs take hours here); its epoch
times then come from RUN's z.N.pkl stamps, measured in its own run, not this one.
Latents: densitydiff's z.pkl (the means as each image was encoded in the last epoch's training
pass); cryoDRGN 4.3.1's z.pkl (the means of an eval pass over all images after training).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

_HERE = Path(__file__).resolve()
# ../shared beside the checkout (/work/main), or beside the folder of worktrees (/work/wt/NAME)
TRAJECTORY = (
    next(
        (p for p in (_HERE.parents[2] / "shared", _HERE.parents[3] / "shared") if p.is_dir()),
        _HERE.parents[2] / "shared",
    )
    / "data/trajectories/adk_closed_to_open.pdb.gz"
)
FRAMES = (0, 24, 48, 72, 97)
CRYODRGN = "/work/venv-cryodrgn/bin/cryodrgn"


def child(argv: list[str], log: Path, threads: int) -> dict:
    """Run argv to completion (output to log); its wall seconds and peak RSS (os.wait4)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    t0 = time.time()
    with open(log, "w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.time() - t0
    if proc.returncode != 0:
        tail = log.read_text()[-3000:]
        raise SystemExit(f"{argv[:4]} failed ({proc.returncode}); the end of {log}:\n{tail}")
    return {"start": t0, "wall_s": wall, "peak_rss_mib": usage.ru_maxrss / 1024.0}


def epoch_times(run: Path, first: int, epochs: int, start: float) -> dict:
    """Seconds per epoch from the per-epoch z.N.pkl write times (N from `first`)."""
    stamps = [(run / f"z.{first + e}.pkl").stat().st_mtime for e in range(epochs)]
    steps = np.diff(stamps)
    return {
        "first_epoch_s": stamps[0] - start,  # includes start-up, loading, the first epoch
        "per_epoch_s": [round(float(s), 3) for s in steps],
        "steady_s": float(np.median(steps)) if len(steps) else None,
    }


def cryodrgn_loop_times(run: Path) -> list[float]:
    """cryoDRGN's own per-epoch figure from run.log (the training loop, no eval pass)."""
    pat = re.compile(r"=====> Epoch: \d+ .*Finished in (\d+):(\d+):([\d.]+)")
    out = []
    for line in (run / "run.log").read_text().splitlines():
        m = pat.search(line)
        if m:
            h, mi, s = m.groups()
            out.append(round(3600 * int(h) + 60 * int(mi) + float(s), 3))
    return out


def mirror(v: np.ndarray, axis: int) -> np.ndarray:
    """Index i -> (D - i) mod D: a mirror about the centred grid's origin D // 2."""
    return np.roll(np.flip(v, axis), 1, axis)


def grid_check(volumes: list[np.ndarray], truths: list[np.ndarray], pixel: float) -> dict:
    """Mean FSC-AUC of the volumes as read against the best of the 47 other axis
    permutations and mirrors: as read should win, and correlate positively."""
    from densitydiff.hetero.evaluate import volume_fsc_auc

    scores = {}
    for perm in itertools.permutations(range(3)):
        for flips in itertools.product((0, 1), repeat=3):
            vals = []
            for v, t in zip(volumes, truths):
                w = np.transpose(v, perm)
                for ax in range(3):
                    w = mirror(w, ax) if flips[ax] else w
                vals.append(volume_fsc_auc(np.ascontiguousarray(w), t, pixel))
            scores[(perm, flips)] = float(np.mean(vals))
    ident = scores.pop(((0, 1, 2), (0, 0, 0)))
    best = max(scores, key=scores.get)
    corr = float(
        np.mean([np.corrcoef(v.ravel(), t.ravel())[0, 1] for v, t in zip(volumes, truths)])
    )
    return {
        "as_read": ident,
        "best_other": scores[best],
        "best_other_is": f"transpose {best[0]}, mirror {best[1]}",
        "ok": ident > scores[best] and corr > 0,
        "real_space_corr": corr,
    }


def profile_parts(path: Path, parts: dict) -> dict:
    """Seconds in named parts of a cProfile file: {name: [(file, func, caller, per_call), ...]}.

    A part sums its entries' cumulative times; of same-named functions (nested methods) the
    largest counts; with a caller, only the time under calls from that function; per_call:
    divided by the number of calls."""
    stats = pstats.Stats(str(path)).stats
    out = {}
    for name, specs in parts.items():
        total = 0.0
        for fname, func, caller, per_call in specs:
            best = 0.0
            for (f, _, fn), (_, nc, _, ct, callers) in stats.items():
                if fn != func or not f.replace(os.sep, "/").endswith(fname):
                    continue
                if caller is not None:
                    ct = sum(
                        c[3]
                        for k, c in callers.items()
                        if k[2] == caller[1] and k[0].replace(os.sep, "/").endswith(caller[0])
                    )
                best = max(best, ct / nc if per_call and nc else ct)
            total += best
        out[name] = round(total, 3)
    known = ("data_loader", "data_prep", "encoder_forward", "decoder_forward", "backward", "adam")
    out["other_in_steps"] = round(out["steps_total"] - sum(out[k] for k in known), 3)
    return out


_LOADER = ("torch/utils/data/dataloader.py", "__next__")
_ADAM = ("torch/optim/adam.py", "adam", None, False)
_BACKWARD = ("torch/_tensor.py", "backward", None, False)
DD_PARTS = {
    "steps_total": [("lightning/pytorch/loops/training_epoch_loop.py", "advance", None, False)],
    "data_loader": [(*_LOADER, None, False)],
    "data_prep": [
        ("densitydiff/hetero/module.py", "observed_half", None, False),
        ("densitydiff/hetero/module.py", "ctf_half", None, False),
    ],
    "encoder_forward": [("densitydiff/hetero/model.py", "encode", None, False)],
    "decoder_forward": [("densitydiff/hetero/model.py", "slices", None, False)],
    "backward": [_BACKWARD],
    "adam": [_ADAM],
    "epoch_end": [
        ("densitydiff/hetero/train.py", "on_train_epoch_end", None, False),
        ("lightning/pytorch/callbacks/model_checkpoint.py", "on_train_epoch_end", None, False),
    ],
}
_TRAIN = ("train_vae.py", "main")
_BATCH = ("train_vae.py", "run_batch")
CD_PARTS = {
    "steps_total": [
        ("cryodrgn/commands/train_vae.py", "train_batch", None, False),
        (*_LOADER, _TRAIN, False),
    ],
    "data_loader": [(*_LOADER, _TRAIN, False)],
    "data_prep": [
        ("cryodrgn/commands/train_vae.py", "preprocess_input", None, False),
        ("cryodrgn/ctf.py", "compute_ctf", _BATCH, False),
    ],
    "encoder_forward": [("cryodrgn/models.py", "encode", _BATCH, False)],
    "decoder_forward": [("cryodrgn/models.py", "decode", None, False)],
    "backward": [_BACKWARD],
    "adam": [_ADAM],
    "epoch_end": [
        ("cryodrgn/commands/train_vae.py", "eval_z", None, True),
        ("cryodrgn/commands/train_vae.py", "save_checkpoint", None, True),
    ],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-images", type=int, default=10000)
    ap.add_argument("--box", type=int, default=64)
    ap.add_argument("--pixel-size", type=float, default=2.0)
    ap.add_argument("--snr", type=float, default=0.1)
    ap.add_argument("--defocus", type=float, nargs=2, default=(1.0, 2.5), help="MIN MAX in um.")
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--zdim", type=int, default=8)
    ap.add_argument("--width", type=int, default=256, help="Encoder and decoder width.")
    ap.add_argument("--layers", type=int, default=3, help="Encoder and decoder depth.")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--pe-type", default="geom_lowf", choices=("geom_lowf", "gaussian"))
    ap.add_argument("--phase-flip", action="store_true", help="densitydiff encodes phase-flipped")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--precision", default="32", help="densitydiff's: 32 or bf16-mixed (CPU AMP)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--profile-images", type=int, default=256, help="0: no profile epoch.")
    ap.add_argument("--cryodrgn", default=CRYODRGN, help="The cryodrgn executable.")
    ap.add_argument("--trajectory", type=Path, default=TRAJECTORY)
    ap.add_argument("--keep", type=Path, default=None, help="Keep the data and runs here.")
    ap.add_argument(
        "--densitydiff-run",
        type=Path,
        default=None,
        help="A finished densitydiff run of KEEP/data with these settings: reuse, don't train.",
    )
    args = ap.parse_args()

    import torch
    import yaml

    torch.set_num_threads(args.threads)
    from densitydiff.formats.latents import read_latents
    from densitydiff.formats.maps import read_map
    from densitydiff.formats.pkl import save_pickles
    from densitydiff.hetero.checkpoint import load_hetero
    from densitydiff.hetero.evaluate import abs_corr, pca, volume_fsc_auc
    from densitydiff.hetero.volume import decode_volume

    if not Path(args.cryodrgn).is_file():
        raise SystemExit(f"no cryodrgn at {args.cryodrgn} (see docs/benchmarks.md to install)")
    work = (args.keep or Path(tempfile.mkdtemp(prefix="bench_hcmp_"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    data = work / "data"
    dd = [sys.executable, "-m", "densitydiff"]
    if not (data / "dataset.json").is_file():
        sim = [*dd, "simulate", "particles", "-o", str(data), "--trajectory", str(args.trajectory)]
        sim += ["--n-images", str(args.n_images), "--box", str(args.box)]
        sim += ["--pixel-size", str(args.pixel_size), "--snr", str(args.snr), "--seed", "0"]
        sim += ["--defocus", *(str(d * 1e4) for d in args.defocus), "--threads", str(args.threads)]
        child(sim, work / "simulate.log", args.threads)
    info = json.loads((data / "dataset.json").read_text())
    invert = info.get("contrast", "positive") == "cryodrgn"
    particles, poses, ctf = (str(data / n) for n in ("particles.mrcs", "poses.pkl", "ctf.pkl"))

    shared = ["--zdim", str(args.zdim), "--enc-dim", str(args.width)]
    shared += ["--enc-layers", str(args.layers), "--dec-dim", str(args.width)]
    shared += ["--dec-layers", str(args.layers), "--lr", str(args.lr), "--seed", str(args.seed)]
    shared += ["--pe-type", args.pe_type, "--poses", poses, "--ctf", ctf]
    dd_argv = [*dd, "hetero", "train", particles, *shared, "--batch-size", str(args.batch_size)]
    dd_argv += ["--invert-data" if invert else "--uninvert-data", "--no-progress"]
    dd_argv += ["--threads", str(args.threads)] + (["--phase-flip"] if args.phase_flip else [])
    dd_argv += ["--precision", args.precision]
    # cryoDRGN's defaults besides: encode-mode resid, domain fourier, window 0.85, beta 1/zdim
    cd_argv = [args.cryodrgn, "train_vae", particles, *shared, "-b", str(args.batch_size)]
    cd_argv += ["--no-amp", "--no-analysis", "--max-threads", str(args.threads)]
    cd_argv += [] if invert else ["--uninvert-data"]

    runs = {"densitydiff": work / "run_densitydiff", "cryodrgn": work / "run_cryodrgn"}
    n_ep = ["--epochs", str(args.epochs)]
    if args.densitydiff_run is not None:
        runs["densitydiff"] = reused = args.densitydiff_run.resolve()
        if not (reused / f"z.{args.epochs - 1}.pkl").is_file():
            raise SystemExit(f"{reused} holds no finished run of {args.epochs} epochs")
        start = (reused / "config.yaml").stat().st_mtime
        end = (reused / "z.pkl").stat().st_mtime
        t_dd = {"start": start, "wall_s": end - start, "peak_rss_mib": None, "reused": str(reused)}
        dd_argv = [
            sys.executable,
            *yaml.safe_load((reused / "run.yaml").read_text())["command"]["argv"],
        ]
    for tool, r in runs.items():
        if tool == "cryodrgn" or args.densitydiff_run is None:
            shutil.rmtree(r, ignore_errors=True)
    if args.densitydiff_run is None:
        t_dd = child(
            [*dd_argv, *n_ep, "-o", str(runs["densitydiff"])], work / "dd.log", args.threads
        )
    t_cd = child(
        [*cd_argv, "-n", str(args.epochs), "-o", str(runs["cryodrgn"])],
        work / "cd.log",
        args.threads,
    )
    timing = {
        "densitydiff": {**t_dd, **epoch_times(runs["densitydiff"], 0, args.epochs, t_dd["start"])},
        "cryodrgn": {**t_cd, **epoch_times(runs["cryodrgn"], 1, args.epochs, t_cd["start"])},
    }
    timing["cryodrgn"]["training_loop_s"] = cryodrgn_loop_times(runs["cryodrgn"])
    for t in timing.values():
        t["seconds_per_epoch"] = t["steady_s"] if t["steady_s"] else t["wall_s"] / args.epochs
        del t["start"]

    truth_state = np.load(data / "ground_truth.npy")[:, 0].astype(int)
    truths = {
        k: read_map(data / "volumes" / f"state_{k:03d}.mrc").array for k in sorted(set(truth_state))
    }
    frames = [f for f in FRAMES if f in truths and (truth_state == f).any()]
    counts = np.bincount(truth_state, minlength=max(truths) + 1)
    average = sum(counts[k] * truths[k] for k in truths) / counts.sum()

    mu_dd, _ = read_latents(runs["densitydiff"] / "z.pkl")
    mu_cd, _ = read_latents(runs["cryodrgn"] / "z.pkl")  # the restricted unpickler: means first
    model = load_hetero(runs["densitydiff"])
    vols_dd = [decode_volume(model, np.median(mu_dd[truth_state == f], axis=0)) for f in frames]
    zfile = work / "z_frames_cryodrgn.txt"
    np.savetxt(zfile, np.stack([np.median(mu_cd[truth_state == f], axis=0) for f in frames]))
    vol_dir = work / "vols_cryodrgn"
    shutil.rmtree(vol_dir, ignore_errors=True)
    ev = [args.cryodrgn, "eval_vol", str(runs["cryodrgn"] / "weights.pkl")]
    ev += ["-c", str(runs["cryodrgn"] / "config.yaml"), "--zfile", str(zfile), "-o", str(vol_dir)]
    ev += ["--Apix", str(args.pixel_size)]
    child(ev, work / "eval_vol.log", args.threads)
    vols_cd = []
    for i in range(len(frames)):  # vol_001.mrc ... (cryoDRGN's --vol-start-index 1)
        v = read_map(vol_dir / f"vol_{i + 1:03d}.mrc").array.astype(np.float32)
        if v.shape[0] == args.box + 1:  # a D+1 lattice volume: drop the repeated +k edge
            v = v[:-1, :-1, :-1]
        if v.shape != (args.box,) * 3:
            raise SystemExit(f"cryoDRGN's volume has shape {v.shape}, not {args.box}^3")
        vols_cd.append(np.ascontiguousarray(v))

    px = args.pixel_size
    rows = []
    for f, vd, vc in zip(frames, vols_dd, vols_cd):
        rows.append(
            {
                "frame": f,
                "n": int((truth_state == f).sum()),
                "densitydiff": volume_fsc_auc(vd, truths[f], px),
                "cryodrgn": volume_fsc_auc(vc, truths[f], px),
                "floor": volume_fsc_auc(average, truths[f], px),
            }
        )
    tv = [truths[f] for f in frames]

    profile = None
    if args.profile_images > 0:
        n = min(args.profile_images, args.n_images)
        ind = work / "profile_ind.pkl"
        save_pickles(ind, np.arange(n, dtype=np.int64))
        profile = {"images": n, "epochs": 1}
        one = ["--ind", str(ind)]
        for r in ("prof_densitydiff", "prof_cryodrgn"):
            shutil.rmtree(work / r, ignore_errors=True)
        p_dd, p_cd = work / "densitydiff.prof", work / "cryodrgn.prof"
        argv = [sys.executable, "-m", "cProfile", "-o", str(p_dd), *dd_argv[1:], *one]
        child(
            [*argv, "--epochs", "1", "-o", str(work / "prof_densitydiff")],
            work / "pdd.log",
            args.threads,
        )
        py = str(Path(args.cryodrgn).parent / "python")
        argv = [py, "-m", "cProfile", "-o", str(p_cd), *cd_argv, *one, "-n", "1"]
        child([*argv, "-o", str(work / "prof_cryodrgn")], work / "pcd.log", args.threads)
        profile["densitydiff_s"] = profile_parts(p_dd, DD_PARTS)
        profile["cryodrgn_s"] = profile_parts(p_cd, CD_PARTS)

    pc_dd, ratio_dd = pca(mu_dd, 1)
    pc_cd, ratio_cd = pca(mu_cd, 1)
    dd_s, cd_s = (timing[k]["seconds_per_epoch"] for k in ("densitydiff", "cryodrgn"))
    out = {
        "date": time.strftime("%Y-%m-%d"),
        "data": {
            "n_images": args.n_images,
            "box": args.box,
            "pixel_size": px,
            "snr": args.snr,
            "defocus_um": list(args.defocus),
            "contrast": info.get("contrast"),
        },
        "settings": {
            "zdim": args.zdim,
            "encoder": f"{args.width}x{args.layers} residual MLP (cryoDRGN --encode-mode resid)",
            "decoder": f"{args.width}x{args.layers} residual MLP, Fourier domain",
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "pe_type": args.pe_type,
            "pe_dim": "D/2 (both defaults)",
            "beta": "1/zdim (both defaults)",
            "window_r": "0.85 (both defaults)",
            "invert_data": invert,
            "seed": args.seed,
            "threads": args.threads,
            "amp": "off (cryoDRGN --no-amp; CPU)",
            "densitydiff_precision": args.precision,
            "encoder_input": {
                "densitydiff": "real-space image x window"
                + (", phase-flipped" if args.phase_flip else "")
                + ", D^2 pixels, not shifted",
                "cryodrgn": "Hartley transform of image x window, shifted back by the pose, "
                "phase-flipped (sign of CTF), pixels inside radius D/2",
            },
            "latents": {
                "densitydiff": "z.pkl: means from the last epoch's training pass",
                "cryodrgn": "z.pkl: means from an eval pass after training",
            },
            "densitydiff_argv": " ".join(dd_argv[1:]),
            "cryodrgn_argv": " ".join(cd_argv),
        },
        "frames": rows,
        "mean_fsc_auc": {
            "densitydiff": float(np.mean([r["densitydiff"] for r in rows])),
            "cryodrgn": float(np.mean([r["cryodrgn"] for r in rows])),
            "floor": float(np.mean([r["floor"] for r in rows])),
        },
        "abs_corr_pc1_frame": {
            "densitydiff": abs_corr(pc_dd[:, 0], truth_state),
            "cryodrgn": abs_corr(pc_cd[:, 0], truth_state),
        },
        "pc1_explained": {"densitydiff": float(ratio_dd[0]), "cryodrgn": float(ratio_cd[0])},
        "grid_check": {
            "densitydiff": grid_check(vols_dd, tv, px),
            "cryodrgn": grid_check(vols_cd, tv, px),
        },
        "timing": timing,
        "seconds_per_epoch_ratio": None if args.densitydiff_run else dd_s / cd_s,
        "peak_rss_mib": {k: timing[k]["peak_rss_mib"] for k in timing},
        "profile": profile,
        "work": str(work) if args.keep else None,
    }
    print(json.dumps(out))
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
