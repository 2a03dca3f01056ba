"""Benchmark: FSC of two 256^3 float32 maps, and the rfftn backends it could use.

Run: PYTHONPATH=src python bench/fsc.py [N] [REPEATS]. Prints median seconds of REPEATS runs.
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np
import scipy.fft

from densitydiff import metrics


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 256
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n, n), dtype=np.float32)
    b = a + rng.standard_normal((n, n, n), dtype=np.float32)
    print(f"{n}^3 float32, median of {repeats}:")
    rows = {
        "numpy.fft.rfftn": lambda: np.fft.rfftn(a),
        "scipy.fft.rfftn workers=1": lambda: scipy.fft.rfftn(a, workers=1),
        "scipy.fft.rfftn workers=-1": lambda: scipy.fft.rfftn(a, workers=-1),
    }
    for name, fn in rows.items():
        print(f"  {name:<34s} {median_seconds(fn, repeats):.3f} s")
    metrics._shells.cache_clear()
    t0 = time.perf_counter()
    metrics.fsc(a, b, 1.0)
    print(f"  {'fsc, first call (shell labels)':<34s} {time.perf_counter() - t0:.3f} s")
    warm = median_seconds(lambda: metrics.fsc(a, b, 1.0), repeats)
    print(f"  {'fsc, cached shells':<34s} {warm:.3f} s")


if __name__ == "__main__":
    main()
