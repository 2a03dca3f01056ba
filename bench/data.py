"""Benchmark the training store: build throughput, disk bytes per epoch, loader throughput.

Run: PYTHONPATH=src python bench/data.py [--structures N] [--keep DIR]

1. Build a store at 1 Å voxels, 64^3 patches, resolutions 2, 3, 4 Å (2 build workers):
   structures per minute.
2. Drop the page cache (needs root; otherwise says so), run one epoch over the training split
   with a DataLoader of 2 workers, and sum /proc/<pid>/io read_bytes over the main process
   and its worker processes: bytes read from disk / the store's size on disk (target <= 1.1),
   and / the bytes of the chunks the epoch asked for (1.0 = nothing read twice).
3. Loader throughput with 2 workers, 64^3 pairs: the cold epoch (worker start-up included) and
   steady state with persistent workers and a warm cache (target >= 200 patches/s).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "src" / "densitydiff" / "examples"
SHARED = Path("/work/shared/data/structures")


def pick_structures(n: int) -> list[Path]:
    """The packaged examples, plus mid-sized PDB entries from the shared set when present."""
    out = sorted(p for p in EXAMPLES.iterdir() if p.name.endswith((".pdb.gz", ".cif.gz")))
    if SHARED.is_dir() and len(out) < n:
        with open(SHARED / "manifest.csv") as f:
            rows = sorted(csv.DictReader(f), key=lambda r: r["id"])
        have = {p.name.split(".")[0] for p in out}
        for r in rows:
            if len(out) >= n:
                break
            if 1500 <= int(r["n_atoms"]) <= 6000 and r["id"] not in have:
                out.append(SHARED / r["file"])
    return out[:n]


def read_bytes(pid: int | str = "self") -> int:
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            if line.startswith("read_bytes:"):
                return int(line.split()[1])
    raise RuntimeError("no read_bytes in /proc/<pid>/io")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (from /proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drop_caches() -> bool:
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def chunk_bytes(store: Path, sid: str, res: float, patch: int) -> int:
    from densitydiff.data.layout import array_name

    path = store / "structures" / sid / array_name(res) / "c" / str(patch) / "0" / "0" / "0"
    return path.stat().st_blocks * 512


def epoch(ds, workers: int, batch: int, store: Path) -> dict:
    """One pass over `ds`; bytes read by this process and its workers, chunks requested."""
    from torch.utils.data import DataLoader

    loader = DataLoader(ds, batch_size=batch, num_workers=workers, shuffle=True)
    before_main = read_bytes()
    t0 = time.perf_counter()
    it = iter(loader)
    worker_pids = [w.pid for w in getattr(it, "_workers", [])]
    n, requested = 0, 0
    for _ in range(len(loader)):
        b = next(it)
        n += len(b["patch"])
        for sid, p, r_in, r_out in zip(
            b["structure_id"],
            b["patch"].tolist(),
            b["input_resolution"].tolist(),
            b["target_resolution"].tolist(),
        ):
            requested += chunk_bytes(store, sid, r_in, p)
            if r_out != r_in:
                requested += chunk_bytes(store, sid, r_out, p)
    seconds = time.perf_counter() - t0
    worker_bytes = sum(read_bytes(pid) for pid in worker_pids)  # before the workers exit
    main_bytes = read_bytes() - before_main
    del it
    return {
        "patches": n,
        "seconds": seconds,
        "patches_per_s": n / seconds,
        "read_bytes": main_bytes + worker_bytes,
        "requested_chunk_bytes": requested,
    }


def steady(ds, workers: int, batch: int, epochs: int) -> dict:
    """Patches/s with persistent workers, after one warm-up epoch (no worker start-up)."""
    from torch.utils.data import DataLoader

    loader = DataLoader(
        ds, batch_size=batch, num_workers=workers, shuffle=True, persistent_workers=True
    )
    for _ in loader:  # warm-up: workers start, page cache filled
        pass
    pids = [w.pid for w in loader._iterator._workers]
    w0 = sum(cpu_seconds(p) for p in pids)
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    for _ in range(epochs):
        for b in loader:
            n += len(b["patch"])
    seconds = time.perf_counter() - t0
    worker_cpu = sum(cpu_seconds(p) for p in pids) - w0
    return {
        "worker_cpu_s": worker_cpu,
        "patches_per_worker_cpu_s": n / worker_cpu,
        "patches": n,
        "seconds": seconds,
        "patches_per_s": n / seconds,
        "main_cpu_s": time.process_time() - c0,
        "load_average_1min": os.getloadavg()[0],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--structures", type=int, default=10)
    ap.add_argument("--patches-per-structure", type=int, default=48)
    ap.add_argument("--rotations", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--keep", type=Path, default=None, help="Build the store here and keep it.")
    ap.add_argument("--store", type=Path, default=None, help="Measure this store; no build.")
    args = ap.parse_args()

    from densitydiff.data import PatchDataset
    from densitydiff.data.build import BuildConfig, build_store
    from densitydiff.data.layout import store_info

    structures = pick_structures(args.structures)
    tmp = Path(tempfile.mkdtemp(prefix="bench-data-", dir="/tmp"))
    store = (args.keep or tmp) / "bench.zarr"
    shutil.rmtree(store, ignore_errors=True)
    config = BuildConfig(
        resolutions=(2.0, 3.0, 4.0),
        voxel_size=1.0,
        patch=64,
        patches_per_structure=args.patches_per_structure,
        rotations=args.rotations,
        seed=0,
        val_fraction=0.1,
        test_fraction=0.1,
    )
    report = {}
    if args.store is None:
        t0 = time.perf_counter()
        summary = build_store(
            structures, store, config, workers=args.workers, progress=False, log=lambda _: None
        )
        build_s = time.perf_counter() - t0
        report["build"] = {
            "structures": len(summary.built),
            "failed": summary.failed,
            "patches": summary.n_patches,
            "seconds": build_s,
            "structures_per_minute": 60 * len(summary.built) / build_s,
            "workers": args.workers,
            "load_average_1min": os.getloadavg()[0],
        }
    else:
        store = args.store
    info = store_info(store)
    report |= {
        "store": {
            "bytes_on_disk": info["bytes_on_disk"],
            "bytes_uncompressed": info["bytes_uncompressed"],
            "train_patches": info["splits"]["train"]["patches"],
        },
    }
    ds = PatchDataset(store, "train")
    ds[0]  # load the reading code (numcodecs, ...) before the cache is dropped
    dropped = drop_caches()
    cold = epoch(ds, args.workers, args.batch_size, store)
    cold["caches_dropped"] = dropped
    cold["read_over_store"] = cold["read_bytes"] / info["bytes_on_disk"]
    cold["read_over_requested"] = cold["read_bytes"] / cold["requested_chunk_bytes"]
    report["epoch_cold"] = cold
    report["steady_warm"] = steady(ds, args.workers, args.batch_size, epochs=3)
    print(json.dumps(report, indent=1))
    if args.keep is None:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
