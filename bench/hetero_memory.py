"""Memory of `densitydiff hetero train` against the stack size N (issue #12: 100k x 128^2).

For each N it writes a stack of N noise images of D^2 (float32 .mrcs, written in chunks, so the
writer's memory is one chunk), random poses and a ctf.pkl, starts `hetero train` on them in a
subprocess and samples /proc/PID/status every 0.2 s for --seconds: VmHWM (peak resident set),
RssAnon (the process's own memory: arrays, weights, optimiser) and RssFile (pages of the
memory-mapped stack that are resident, which the kernel may drop at any time). Then it stops the
run (SIGKILL: no epoch of 100k images fits a bench). Memory flat in N means RssAnon's peak does
not grow with N; RssFile and VmHWM grow with what was read so far (the NaN scan touches every
image once) and are page cache, not allocations.

  PYTHONPATH=src python bench/hetero_memory.py [--sizes 10000 100000] [--box 128]
      [--seconds 180] [--precision bf16-mixed] [--dir /tmp/hetmem] [--out mem.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def write_inputs(folder: Path, n: int, D: int, pixel: float, seed: int = 0) -> dict[str, Path]:
    """particles.mrcs (noise), poses.pkl (random rotations, zero shifts), ctf.pkl."""
    from densitydiff.formats.ctf import CTFParams, save_ctf
    from densitydiff.formats.mrcs import ParticleWriter
    from densitydiff.formats.particles import save_poses
    from densitydiff.rotations import random_rotations

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = {
        k: folder / f
        for k, f in (("mrcs", "particles.mrcs"), ("poses", "poses.pkl"), ("ctf", "ctf.pkl"))
    }
    with ParticleWriter(paths["mrcs"], n, D, pixel) as w:
        for start in range(0, n, 2048):
            w.write(rng.standard_normal((min(2048, n - start), D, D), dtype=np.float32))
    rot = random_rotations(n, rng)
    save_poses(paths["poses"], rot.astype(np.float32), np.zeros((n, 2), np.float32))
    df = rng.uniform(10000, 25000, n)
    ones = np.ones(n)
    save_ctf(
        paths["ctf"],
        CTFParams(
            D * ones, pixel * ones, df, df, 0 * ones, 300 * ones, 2.7 * ones, 0.1 * ones, 0 * ones
        ),
    )
    return paths


def _status(pid: int) -> dict[str, int]:
    """VmHWM, VmRSS, RssAnon, RssFile of a process, MiB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
                out[key] = int(value.split()[0]) // 1024
    return out


def measure(paths: dict[str, Path], run: Path, seconds: float, precision: str) -> dict:
    """Run `hetero train` for `seconds`; the peaks of the /proc counters and how far it got."""
    argv = [
        sys.executable,
        "-m",
        "densitydiff",
        "hetero",
        "train",
        str(paths["mrcs"]),
        "--poses",
        str(paths["poses"]),
        "--ctf",
        str(paths["ctf"]),
        "-o",
        str(run),
        "--zdim",
        "8",
        "--epochs",
        "1",
        "--no-progress",
        "--threads",
        "1",
        "--precision",
        precision,
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak: dict[str, int] = {}
    t0 = time.perf_counter()
    while proc.poll() is None and time.perf_counter() - t0 < seconds:
        try:
            for k, v in _status(proc.pid).items():
                peak[k] = max(peak.get(k, 0), v)
        except (FileNotFoundError, ProcessLookupError):
            break
        time.sleep(0.2)
    finished = proc.poll() is not None
    if not finished:
        proc.send_signal(signal.SIGKILL)
    err = proc.communicate()[1]
    started = (run / "config.yaml").exists()  # written after the NaN scan, before step 1
    return {
        "peak_mib": peak,
        "seconds": round(time.perf_counter() - t0, 1),
        "training_started": started,
        "finished": finished,
        "stderr_tail": err.strip().splitlines()[-1:] if finished else [],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10000, 100000])
    ap.add_argument("--box", type=int, default=128)
    ap.add_argument("--pixel-size", type=float, default=2.0)
    ap.add_argument("--seconds", type=float, default=180.0)
    ap.add_argument("--precision", default="32")
    ap.add_argument("--dir", type=Path, default=Path("/tmp/hetmem"))
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    rows = []
    for n in args.sizes:
        folder = args.dir / f"n{n}"
        shutil.rmtree(folder, ignore_errors=True)
        t = time.perf_counter()
        paths = write_inputs(folder, n, args.box, args.pixel_size)
        write_s = time.perf_counter() - t
        row = {
            "n": n,
            "D": args.box,
            "stack_gib": round(os.path.getsize(paths["mrcs"]) / 2**30, 2),
            "write_s": round(write_s, 1),
            **measure(paths, folder / "run", args.seconds, args.precision),
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
        shutil.rmtree(folder, ignore_errors=True)
    if args.out:
        args.out.write_text(
            json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows}, indent=1)
        )


if __name__ == "__main__":
    main()
