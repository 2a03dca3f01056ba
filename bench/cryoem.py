"""Benchmarks for cryo-EM image formation and synthetic data sets (not tests).

    PYTHONPATH=src python bench/cryoem.py [--quick] [--skip-memory] [--cryodrgn]
    PYTHONPATH=src python bench/cryoem.py --skip-throughput --memory-images 1000 100000

1. images/s for projection + CTF + noise at 128^2 (CPU; GPU too when there is one);
2. peak resident memory of `simulate_particles` at several data set sizes (128^2 images, synthetic
   volumes), run in subprocesses, to show memory does not grow with N;
3. `cryodrgn backproject_voxel` on a data set written here, FSC against our ground truth
   (runs only where cryodrgn is installed; it is not a dependency of densitydiff).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def blob_volume(D: int, seed: int = 0, n: int = 40) -> np.ndarray:
    """A smooth test volume: Gaussian blobs inside the inscribed sphere."""
    rng = np.random.default_rng(seed)
    c = np.arange(D) - D // 2
    z, y, x = np.meshgrid(c, c, c, indexing="ij")
    vol = np.zeros((D, D, D), np.float32)
    for _ in range(n):
        p = rng.uniform(-D / 4, D / 4, 3)
        s = rng.uniform(1.5, 3.0) * D / 64
        r2 = (x - p[0]) ** 2 + (y - p[1]) ** 2 + (z - p[2]) ** 2
        vol += np.float32(rng.uniform(0.5, 1.0)) * np.exp(-r2 / (2 * s * s)).astype(np.float32)
    return vol


def throughput(device: str, D: int = 128, n: int = 1024, batch: int = 256) -> dict:
    import torch

    from densitydiff.rotations import random_rotations
    from densitydiff.simulate.cryoem import Projector, add_noise, form_images

    rng = np.random.default_rng(0)
    vol = blob_volume(D)
    t0 = time.perf_counter()
    projector = Projector(vol, device=device)
    setup = time.perf_counter() - t0
    rot = random_rotations(n, rng)
    shifts = rng.uniform(-3, 3, (n, 2))
    ctf = np.zeros((n, 9), np.float32)
    ctf[:, 0], ctf[:, 1] = D, 1.5
    ctf[:, 2] = rng.uniform(1e4, 2.5e4, n)
    ctf[:, 3] = ctf[:, 2] - 100
    ctf[:, 5:8] = 300, 2.7, 0.1
    gen = torch.Generator().manual_seed(0)
    form_images(projector, rot[:8], shifts[:8], ctf[:8])  # warm up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for s in range(0, n, batch):
        img = form_images(projector, rot[s : s + batch], shifts[s : s + batch], ctf[s : s + batch])
        img = add_noise(img, 1.0, gen).cpu()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    return {"device": device, "D": D, "n": n, "batch": batch, "projector_setup_s": setup,
            "seconds": dt, "images_per_s": n / dt,
            "torch_threads": torch.get_num_threads()}  # fmt: skip


_MEMORY_CHILD = """
import json, resource, sys, time
import numpy as np
sys.path.insert(0, "bench")
from cryoem import blob_volume
from densitydiff.simulate.hetero import VolumeSource, simulate_particles
n, D, states, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
vols = [blob_volume(D, seed=k) for k in range(states)]
src = VolumeSource(kind="volumes", coordinates=np.arange(states, dtype=float),
                   weights=np.full(states, 1 / states), volumes=vols)
t = time.perf_counter()
simulate_particles(out, src, n_images=n, box=D, pixel_size=1.5, snr=0.1, seed=0, progress=False)
dt = time.perf_counter() - t
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"n_images": n, "box": D, "states": states, "seconds": dt, "peak_rss_mb": rss}))
"""


def memory(n_values=(1000, 4000), D: int = 128, states: int = 4) -> list[dict]:
    results = []
    for n in n_values:
        with tempfile.TemporaryDirectory() as tmp:
            out = subprocess.run(
                [sys.executable, "-c", _MEMORY_CHILD, str(n), str(D), str(states), tmp],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return results


def fsc(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    D = a.shape[0]
    fa, fb = np.fft.fftshift(np.fft.fftn(a)), np.fft.fftshift(np.fft.fftn(b))
    c = np.arange(D) - D // 2
    z, y, x = np.meshgrid(c, c, c, indexing="ij")
    shell = np.round(np.sqrt(x**2 + y**2 + z**2)).astype(int).ravel()
    n = D // 2 + 1
    num = np.bincount(shell, (fa * fb.conj()).real.ravel())[:n]
    den = np.sqrt(np.bincount(shell, (np.abs(fa) ** 2).ravel())[:n]
                  * np.bincount(shell, (np.abs(fb) ** 2).ravel())[:n])  # fmt: skip
    return num / den


def cryodrgn_backproject(D: int = 64, n: int = 5000) -> dict:
    """Run `cryodrgn backproject_voxel` on our files; FSC of its map against our ground truth."""
    exe = shutil.which("cryodrgn")
    if exe is None:
        return {
            "skipped": "cryodrgn is not installed here (not a densitydiff dependency); "
            "install it (pip install cryodrgn) in another environment and rerun --cryodrgn"
        }
    from densitydiff.formats.maps import read_map
    from densitydiff.simulate.hetero import VolumeSource, simulate_particles

    vol = blob_volume(D)
    with tempfile.TemporaryDirectory() as tmp:
        src = VolumeSource(kind="volumes", coordinates=np.zeros(1), weights=np.ones(1),
                           volumes=[vol])  # fmt: skip
        simulate_particles(tmp, src, n_images=n, box=D, pixel_size=2.0, snr=float("inf"),
                           seed=0, progress=False)  # fmt: skip
        truth = read_map(Path(tmp) / "volumes" / "state_000.mrc").array
        report: dict = {}
        # Our stacks are protein dark by default (-(CTF * P V), "contrast": "cryodrgn"), as
        # experimental stacks are, so cryoDRGN's default (which inverts the data sign) is the
        # matching setting and --uninvert-data gives -V. Both are reported.
        for label, extra in (("default", []), ("uninvert_data", ["--uninvert-data"])):
            outdir = Path(tmp) / f"backproject_{label}"
            cmd = [exe, "backproject_voxel", f"{tmp}/particles.mrcs", "--poses",
                   f"{tmp}/poses.pkl", "--ctf", f"{tmp}/ctf.pkl", "-o", str(outdir),
                   "--no-half-maps", *extra]  # fmt: skip
            run = subprocess.run(cmd, capture_output=True, text=True)
            if run.returncode != 0:
                report[label] = {"error": run.stderr[-2000:], "command": " ".join(cmd)}
                continue
            rec = read_map(outdir / "backproject.mrc").array
            curve = fsc(rec, truth)
            flipped = fsc(rec[::-1].copy(), truth)  # a handedness mismatch would show here
            below = np.flatnonzero(curve < 0.5)
            report[label] = {"command": " ".join(cmd), "fsc": curve.round(3).tolist(),
                             "fsc_0.5_shell": int(below[0]) if len(below) else D // 2,
                             "nyquist_shell": D // 2,
                             "fsc_flipped_mean": float(flipped.mean())}  # fmt: skip
        return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer images")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--memory-images", type=int, nargs="+", metavar="N",
                    help="data-set sizes for the peak-memory build (default 1000 4000; the "
                    "issue's figure is 100000)")  # fmt: skip
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--cryodrgn", action="store_true", help="also run cryodrgn backproject_voxel")
    args = ap.parse_args()
    import torch

    n = 256 if args.quick else 1024
    report: dict = {}
    if not args.skip_throughput:
        report["throughput"] = [throughput("cpu", n=n)]
        if torch.cuda.is_available():
            report["throughput"].append(throughput("cuda", n=8 * n))
    if not args.skip_memory:
        default = (500, 2000) if args.quick else (1000, 4000)
        report["memory"] = memory(args.memory_images or default)
    report["cryodrgn_backproject_voxel"] = (
        cryodrgn_backproject() if args.cryodrgn or shutil.which("cryodrgn") else
        {"skipped": "cryodrgn is not installed here; rerun with it installed"}
    )  # fmt: skip
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
