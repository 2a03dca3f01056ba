"""Small particle sets for the heterogeneity tests, with their contrast set explicitly.

The volume is a few Gaussian blobs (compact, smooth); images are `form_images` (CTF * P V, the
simulator's model) with pose shifts, plus white noise at a given SNR, times `contrast`:
-1 gives cryoDRGN's default stacks (what `--invert-data` undoes), +1 the other sign.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from densitydiff.formats.ctf import CTFParams, save_ctf
from densitydiff.formats.mrcs import write_particles
from densitydiff.formats.particles import save_poses
from densitydiff.rotations import random_rotations

BLOBS = [(0, 0, 0, 3.0, 1.0), (5, 2, -3, 2.0, 0.8), (-4, -5, 2, 2.5, 0.9), (2, -6, 5, 1.5, 0.6)]


def blob_volume(D: int) -> np.ndarray:
    """(D, D, D) (z, y, x) sum of Gaussian blobs (x, y, z, sigma px, height) about D // 2."""
    c = np.arange(D) - D // 2
    z, y, x = np.meshgrid(c, c, c, indexing="ij")
    vol = np.zeros((D, D, D))
    for bx, by, bz, s, a in BLOBS:
        vol += a * np.exp(-((x - bx) ** 2 + (y - by) ** 2 + (z - bz) ** 2) / (2 * s * s))
    return vol.astype(np.float32)


def ctf_rows(n: int, D: int, pixel: float, rng) -> np.ndarray:
    return CTFParams(
        D=D,
        pixel_size=pixel,
        defocus_u=rng.uniform(10000, 20000, n),
        defocus_v=rng.uniform(10000, 20000, n),
        defocus_angle=rng.uniform(0, 180, n),
        voltage=300,
        cs=2.7,
        amplitude_contrast=0.1,
        phase_shift=0,
    ).to_array()


def make_set(
    folder: Path,
    n: int = 64,
    D: int = 32,
    pixel: float = 4.0,
    snr: float = 10.0,
    contrast: float = -1.0,
    seed: int = 0,
) -> dict:
    """Write folder/particles.mrcs, poses.pkl, ctf.pkl, truth.npy; return their paths and arrays."""
    from densitydiff.simulate.cryoem import Projector, form_images

    rng = np.random.default_rng(seed)
    vol = blob_volume(D)
    rot = random_rotations(n, rng).astype(np.float32)
    shift = rng.uniform(-2, 2, (n, 2)).astype(np.float32)
    ctf = ctf_rows(n, D, pixel, rng)
    clean = form_images(Projector(vol), rot, shift, ctf).numpy()
    sigma = np.sqrt(clean.var() / snr) if snr else 0.0
    images = contrast * (clean + sigma * rng.standard_normal(clean.shape))
    folder.mkdir(parents=True, exist_ok=True)
    write_particles(folder / "particles.mrcs", images.astype(np.float32), pixel)
    save_poses(folder / "poses.pkl", rot, shift / D)
    save_ctf(folder / "ctf.pkl", ctf)
    return {
        "particles": folder / "particles.mrcs",
        "poses": folder / "poses.pkl",
        "ctf": folder / "ctf.pkl",
        "volume": vol,
        "rotations": rot,
        "shifts": shift,
        "ctf_rows": ctf,
        "images": images.astype(np.float32),
        "pixel": pixel,
    }
