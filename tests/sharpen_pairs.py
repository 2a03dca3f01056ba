"""Test helpers: sharpening pairs from random Gaussian blobs, and FSC-AUC, in plain numpy.

Independent of densitydiff's data and metrics code, so the model tests check against them.
"""

from __future__ import annotations

import numpy as np


def blobs(n: int, rng: np.random.Generator, count: int = 12, sigma: float = 0.9) -> np.ndarray:
    """A periodic n^3 volume of `count` Gaussian blobs (voxel units) at random positions."""
    grid = np.arange(n)
    vol = np.zeros((n, n, n))
    for centre in rng.uniform(0, n, size=(count, 3)):
        d2 = 0.0
        for axis, c in enumerate(centre):
            d = np.abs(grid - c)
            d = np.minimum(d, n - d)  # periodic distance
            shape = [1, 1, 1]
            shape[axis] = n
            d2 = d2 + (d**2).reshape(shape)
        vol += np.exp(-d2 / (2 * sigma**2))
    return vol


def lowpass(vol: np.ndarray, voxel: float, resolution: float) -> np.ndarray:
    """Hard low-pass: zero every Fourier component with |s| > 1/resolution."""
    n = vol.shape[0]
    f = np.fft.fftfreq(n, d=voxel)
    s = np.sqrt(f[:, None, None] ** 2 + f[None, :, None] ** 2 + f[None, None, :] ** 2)
    return np.real(np.fft.ifftn(np.fft.fftn(vol) * (s <= 1.0 / resolution)))


def z(vol: np.ndarray) -> np.ndarray:
    return ((vol - vol.mean()) / vol.std()).astype(np.float32)


def make_pair(n: int = 16, seed: int = 0, voxel: float = 1.0) -> dict:
    """One PatchDataset-like item: target at 2 Å (Nyquist of a 1 Å grid), input at 4 Å."""
    import torch

    vol = blobs(n, np.random.default_rng(seed))
    target, inp = z(lowpass(vol, voxel, 2.0)), z(lowpass(vol, voxel, 4.0))
    return {
        "input": torch.from_numpy(inp)[None],
        "target": torch.from_numpy(target)[None],
        "input_resolution": 4.0,
        "target_resolution": 2.0,
    }


def fsc_auc(a: np.ndarray, b: np.ndarray, voxel: float = 1.0) -> float:
    """Mean FSC over Fourier shells from the first non-zero shell up to Nyquist."""
    n = a.shape[0]
    fa, fb = np.fft.fftn(a), np.fft.fftn(b)
    f = np.fft.fftfreq(n, d=voxel)
    s = np.sqrt(f[:, None, None] ** 2 + f[None, :, None] ** 2 + f[None, None, :] ** 2)
    shell = np.round(s * n * voxel).astype(int)
    values = []
    for k in range(1, n // 2 + 1):
        m = shell == k
        num = np.real(np.sum(fa[m] * np.conj(fb[m])))
        den = np.sqrt(np.sum(np.abs(fa[m]) ** 2) * np.sum(np.abs(fb[m]) ** 2))
        values.append(num / den if den > 0 else 0.0)
    return float(np.mean(values))


class PairDataset:
    """A torch-style Dataset repeating fixed pairs `length` times."""

    def __init__(self, pairs: list[dict], length: int | None = None):
        self.pairs = pairs
        self.length = length or len(pairs)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict:
        return self.pairs[i % len(self.pairs)]
