"""Shared steps of the heterogeneity benchmarks (bench/hetero*.py): options, `simulate
particles`, `hetero train`, the ground-truth volumes. Not a benchmark itself."""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np

_HERE = Path(__file__).resolve()
# ../shared beside the checkout (/work/main), or beside the folder of worktrees (/work/wt/NAME)
SHARED = next(
    (p for p in (_HERE.parents[2] / "shared", _HERE.parents[3] / "shared") if p.is_dir()),
    _HERE.parents[2] / "shared",
)
DATA = SHARED / "data"

# the issue's benchmark set (#12): 10,000 images of 64^2 at 2 Å, 25 epochs, zdim 8, 256 x 3
ISSUE_SCALE = dict(n_images=10000, box=64, pixel_size=2.0, epochs=25)


def add_options(ap: argparse.ArgumentParser, **defaults) -> argparse.ArgumentParser:
    """The simulation and training options every hetero bench takes (defaults overridable)."""
    d = {**ISSUE_SCALE, **defaults}
    ap.add_argument("--n-images", type=int, default=d["n_images"])
    ap.add_argument("--box", type=int, default=d["box"])
    ap.add_argument("--pixel-size", type=float, default=d["pixel_size"])
    ap.add_argument("--snr", type=float, default=0.1)
    ap.add_argument("--epochs", type=int, default=d["epochs"])
    ap.add_argument("--zdim", type=int, default=8)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0, help="Seed of the simulation and training.")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--precision", default="32", help="32 or bf16-mixed (CPU autocast)")
    ap.add_argument("--keep", type=Path, default=None, help="Keep the data and run here.")
    ap.add_argument(
        "--reuse-run",
        action="store_true",
        help="With --keep: use KEEP/run when it holds a finished run of these --epochs "
        "(another bench's, on the same KEEP/data) instead of training again.",
    )
    return ap


def simulate(data: Path, source: list[str], args) -> float:
    """`densitydiff simulate particles` into DATA (skipped when DATA holds a set); seconds."""
    from densitydiff.cli import main as cli

    t0 = time.perf_counter()
    if (data / "dataset.json").is_file():
        return 0.0
    argv = ["simulate", "particles", "-o", str(data), *source, "--n-images", str(args.n_images),
            "--box", str(args.box), "--pixel-size", str(args.pixel_size), "--snr", str(args.snr),
            "--defocus", "10000", "25000", "--seed", str(args.seed)]  # 1-2.5 um, in Å  # fmt: skip
    assert cli(argv) == 0, "simulate particles failed"
    return time.perf_counter() - t0


def invert_data(data: Path) -> bool:
    """--invert-data for this stack: stacks from before `--contrast` hold CTF * (P V)."""
    info = json.loads((data / "dataset.json").read_text())
    return info.get("contrast", "positive") == "cryodrgn"


def train(data: Path, run: Path, args) -> float:
    """`hetero train` of the set in DATA into RUN (replaced), with the bench's options; seconds
    (0 when --reuse-run found RUN finished)."""
    from densitydiff.hetero.config import read_config
    from densitydiff.hetero.data import open_particles
    from densitydiff.hetero.train import train_hetero

    config = read_config(
        None,
        zdim=args.zdim,
        epochs=args.epochs,
        enc_dim=args.width,
        enc_layers=args.layers,
        dec_dim=args.width,
        dec_layers=args.layers,
        invert_data=invert_data(data),
        lr=args.lr,
        batch_size=args.batch_size,
        seed=args.seed,
        precision=args.precision,
    )
    if getattr(args, "reuse_run", False) and (run / "weights.pt").is_file():
        import yaml

        done = yaml.safe_load((run / "run.yaml").read_text()).get("epochs_trained")
        if done == args.epochs:
            return 0.0
    shutil.rmtree(run, ignore_errors=True)
    particles = open_particles(data / "particles.mrcs", data / "poses.pkl", data / "ctf.pkl")
    t0 = time.perf_counter()
    train_hetero(particles, run, config, progress=False)
    return time.perf_counter() - t0


def states(data: Path) -> np.ndarray:
    """The ground-truth state of each image (ground_truth.npy's first column)."""
    return np.load(data / "ground_truth.npy")[:, 0].astype(int)


def truth_volumes(data: Path) -> list[np.ndarray]:
    """Every state's ground-truth volume (volumes/state_000.mrc, ...), in state order."""
    from densitydiff.formats.maps import read_map

    files = sorted((data / "volumes").glob("state_*.mrc"))
    return [read_map(f).array for f in files]


def settings(args) -> dict:
    """The bench's simulation and training settings, for its JSON line."""
    keys = ("n_images", "box", "pixel_size", "snr", "epochs", "lr", "batch_size", "zdim",
            "seed", "threads", "precision")  # fmt: skip
    return {**{k: getattr(args, k) for k in keys}, "network": f"{args.width}x{args.layers}"}
