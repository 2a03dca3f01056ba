"""What makes a simulated map look like a real one: noise with a half-map spectrum, resolution
that varies across the map, resampling from another voxel size, neighbouring molecules.

Pure functions on (z, y, x) arrays (and one on gemmi structures, `with_neighbours`); the
training-store build (data/build.py, `Realism`) composes them. Formulas in docs/data.md.
"""

from __future__ import annotations

import math

import numpy as np

from densitydiff.errors import InputError
from densitydiff.filters import frequency_magnitude, resample
from densitydiff.maps import DensityMap

FSC_THRESHOLD = 0.143
# the half-map FSC of signal S and per-half noise N is S / (S + N) = SNR / (1 + SNR): it is
# 0.143 where SNR = 0.143 / 0.857
SNR_AT_THRESHOLD = FSC_THRESHOLD / (1.0 - FSC_THRESHOLD)
# the noise model's SNR never falls below this (FSC ~0.01): beyond, noise power stays
# S(s) / SNR_FLOOR, so the shells past the band limit (signal ~0) get no huge noise
SNR_FLOOR = 0.01


def fsc_snr(s: np.ndarray, resolution: float, snr0: float) -> np.ndarray:
    """SNR(s) = snr0 exp(-k s^2), with k = r^2 ln(snr0 / SNR_AT_THRESHOLD): signal-to-noise
    falling with frequency so that the half-map FSC, SNR / (1 + SNR), is 0.143 at s = 1/r."""
    if not (np.isfinite(snr0) and snr0 > SNR_AT_THRESHOLD):
        raise InputError(f"the low-frequency SNR must exceed {SNR_AT_THRESHOLD:.3f}, got {snr0!r}")
    if not (np.isfinite(resolution) and resolution > 0):
        raise InputError(f"resolution must be a positive number of Å, got {resolution!r}")
    k = resolution**2 * math.log(snr0 / SNR_AT_THRESHOLD)
    return snr0 * np.exp(-k * np.asarray(s) ** 2)


def draw_global_b(rng: np.random.Generator, b_range) -> float:
    """A global B-factor (Å^2) drawn uniformly from `b_range` (lo, hi); 0 when hi is 0 (off)."""
    lo, hi = b_range
    return float(rng.uniform(lo, hi)) if hi > 0 else 0.0


def draw_snr0(rng: np.random.Generator, snr_range) -> float | None:
    """A low-frequency SNR (`fsc_snr`'s snr0) drawn log-uniformly from `snr_range` (lo, hi);
    None (no noise) when hi is 0."""
    lo, hi = snr_range
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi)))) if hi > 0 else None


def _shell_labels(s: np.ndarray, shape, voxel_size) -> tuple[np.ndarray, int]:
    """Shell index of every rfftn coefficient: width 1 / (largest box edge in Å)."""
    width = 1.0 / max(n * v for n, v in zip(shape, np.broadcast_to(voxel_size, (3,))))
    labels = np.floor(s / width).astype(np.int64)
    return labels, int(labels.max()) + 1


def fsc_noise(
    array: np.ndarray, voxel_size, resolution: float, snr0: float, rng: np.random.Generator
) -> np.ndarray:
    """Gaussian noise whose power in each Fourier shell is the map's own shell power / SNR(s)
    (`fsc_snr`): two draws added to the same map have an FSC that crosses 0.143 at `resolution`.

    Shells where the map has no signal get no noise (the noise is band-limited like the map, as
    in a map low-passed after reconstruction); the SNR is floored at SNR_FLOOR.
    """
    a = np.asarray(array, dtype=np.float64)
    s = frequency_magnitude(a.shape, voxel_size)
    labels, n = _shell_labels(s, a.shape, voxel_size)
    signal = np.abs(np.fft.rfftn(a - a.mean())) ** 2
    white = np.fft.rfftn(rng.standard_normal(a.shape))
    count = np.maximum(np.bincount(labels.ravel(), minlength=n), 1)
    p_signal = np.bincount(labels.ravel(), signal.ravel(), minlength=n) / count
    p_white = np.bincount(labels.ravel(), (np.abs(white) ** 2).ravel(), minlength=n) / count
    s_shell = np.bincount(labels.ravel(), s.ravel(), minlength=n) / count
    p_noise = p_signal / np.maximum(fsc_snr(s_shell, resolution, snr0), SNR_FLOOR)
    gain = np.sqrt(np.where(p_white > 0, p_noise / np.maximum(p_white, 1e-300), 0.0))
    gain[0] = 0.0  # no noise in the mean
    return np.fft.irfftn(white * gain[labels], s=a.shape)


def postprocessed(
    array: np.ndarray, voxel_size, resolution: float, scale_range, rng: np.random.Generator
) -> tuple[np.ndarray, float]:
    """(map, B): the map sharpened as a deposited map is, by its own Guinier fall-off B times a
    scale drawn uniformly from `scale_range` (0.5-1: under- to fully sharpened), then low-passed
    at `resolution` (filters.guinier_sharpen); B is the sharpening B applied (< 0 sharpens)."""
    from densitydiff.filters import guinier_sharpen

    scale = float(rng.uniform(*scale_range))
    out, b = guinier_sharpen(array, voxel_size, resolution, scale)
    return out, -scale * b


def core_weight(shape, voxel_size, center_index, radius: float) -> np.ndarray:
    """1 within radius / 2 of `center_index` (z, y, x voxels), a raised cosine down to 0 at
    `radius` (Å), 0 beyond: w(d) = (1 + cos(pi (2 d / radius - 1))) / 2 for radius / 2 < d <
    radius. The core of the molecule (w = 1) and its periphery (w = 0) are each one resolution.
    """
    if not (np.isfinite(radius) and radius > 0):
        raise InputError(f"the core radius must be positive, got {radius!r}")
    v = np.broadcast_to(np.asarray(voxel_size, dtype=float), (3,))
    axes = [(np.arange(n) - c) * d for n, c, d in zip(shape, center_index, v)]
    d2 = axes[0][:, None, None] ** 2 + axes[1][None, :, None] ** 2 + axes[2][None, None, :] ** 2
    t = np.clip(2.0 * np.sqrt(d2) / radius - 1.0, 0.0, 1.0)
    return 0.5 * (1.0 + np.cos(np.pi * t))


def resampled_through(array: np.ndarray, voxel_size: float, sampled_voxel: float) -> np.ndarray:
    """The map as if recorded on `sampled_voxel` Å and Fourier-resampled back onto `voxel_size`
    (what the model's grid sees of a map deposited at another voxel size): same shape, voxel 0
    in place; a coarser sampling removes what lies beyond its Nyquist frequency."""
    a = np.asarray(array, dtype=np.float32)
    there = resample(DensityMap(a, (float(voxel_size),) * 3), sampled_voxel)
    back = resample(there, voxel_size).array
    out = np.zeros(a.shape, np.float32)
    n = [min(p, q) for p, q in zip(a.shape, back.shape)]
    out[: n[0], : n[1], : n[2]] = back[: n[0], : n[1], : n[2]]
    return out


def atom_positions(structure) -> np.ndarray:
    """(N, 3) positions (z, y, x Å) of model 1's atoms."""
    return np.array([[c.atom.pos.z, c.atom.pos.y, c.atom.pos.x] for c in structure[0].all()])


def _xyz(m: np.ndarray) -> np.ndarray:
    """A (z, y, x) rotation matrix in gemmi's (x, y, z) axes."""
    return np.asarray(m)[::-1, ::-1]


def with_neighbours(structure, placements) -> object:
    """A new structure: model 1 of `structure` plus one copy per (rotation 3x3 on z y x vectors
    about the centroid, shift z y x Å) in `placements`, as further chains (a crop of a complex).
    """
    import gemmi

    st = structure.clone()
    model = st[0]
    center = atom_positions(st).mean(axis=0)
    base = [ch.clone() for ch in model]
    for i, (rotation, shift) in enumerate(placements):
        m = _xyz(rotation)
        c = center[::-1]
        t = c - m @ c + np.asarray(shift, dtype=float)[::-1]
        tr = gemmi.Transform(gemmi.Mat33(m.tolist()), gemmi.Vec3(*t.tolist()))
        for ch in base:
            copy = ch.clone()
            copy.name = f"n{i}{ch.name}"
            for res in copy:
                for atom in res:
                    atom.pos = gemmi.Position(tr.apply(atom.pos))
            model.add_chain(copy)
    return st
