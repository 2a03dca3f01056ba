"""Direct Fourier reconstruction (backprojection) with CTF correction, to check simulated data.

Each image's transform, phase-shifted back to the centre, is spread (trilinear splatting) onto
the central plane A^T k of an oversampled 3-D grid: numerator sum CTF * X^, weight sum CTF^2;
V^ = numerator / (weight + wiener * mean weight). Same conventions and lattice as `cryoem`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from densitydiff.errors import InputError
from densitydiff.formats.ctf import CTFParams
from densitydiff.simulate.ctf import ctf
from densitydiff.simulate.fft import fft2_centered, shift_phases
from densitydiff.simulate.lattice import circular_mask, lattice_plane, rotate


def backproject(
    images,
    rotations,
    shifts=None,
    ctf_params=None,
    *,
    oversampling: int = 1,
    wiener: float = 1e-3,
    batch_size: int = 256,
    device=None,
    invert: bool = False,
) -> np.ndarray:
    """Reconstruct a (D, D, D) volume from images (N, D, D) with known poses and CTFs.

    shifts: (N, 2) pixels (x, y), as used to form the images; ctf_params: (N, 9) ctf.pkl rows.
    invert: negate the images first, for protein-dark stacks (cryoDRGN's `--invert-data`, its
    default; our data sets with `"contrast": "cryodrgn"` in dataset.json).
    """
    import torch

    images = -np.asarray(images) if invert else np.asarray(images)
    rotations = np.asarray(rotations, dtype=np.float32).reshape(-1, 3, 3)
    if images.ndim != 3 or images.shape[1] != images.shape[2]:
        raise InputError(f"images must be (N, D, D), got shape {images.shape}")
    N, D = images.shape[0], images.shape[1]
    if len(rotations) != N:
        raise InputError(f"{N} images but {len(rotations)} rotations")
    Dp = int(oversampling * D)
    c = Dp // 2
    num = np.zeros((2, Dp**3))
    den = np.zeros(Dp**3)
    lattice = lattice_plane(Dp, device=device)
    keep = circular_mask(lattice, Dp / 2)
    plane = lattice[keep]
    before = c - D // 2
    pad = (before, Dp - D - before, before, Dp - D - before)
    for start in range(0, N, batch_size):
        stop = min(start + batch_size, N)
        x = torch.as_tensor(images[start:stop], dtype=torch.float32, device=device)
        spectra = fft2_centered(torch.nn.functional.pad(x, pad))
        if shifts is not None:
            t = torch.as_tensor(np.asarray(shifts[start:stop]), dtype=torch.float64, device=device)
            spectra = spectra * shift_phases(Dp, -t).to(spectra.device)
        if ctf_params is not None:
            p = CTFParams.from_array(ctf_params[start:stop])
            weight = ctf(dataclasses.replace(p, D=Dp), device=device)  # on the padded box
        else:
            weight = torch.ones(spectra.shape, device=device)
        values = (spectra * weight)[:, keep]  # (B, M)
        w2 = (weight**2)[:, keep]
        rot = torch.as_tensor(rotations[start:stop], device=device)
        k3 = rotate(plane, rot)  # (B, M, 3) as (x, y, z)
        _splat(
            num,
            den,
            k3.reshape(-1, 3).cpu().numpy().astype(np.float64),
            values.reshape(-1).cpu().numpy(),
            w2.reshape(-1).cpu().numpy(),
            Dp,
        )
    reg = wiener * float(den[den > 0].mean()) if np.any(den > 0) else 1.0
    spec = ((num[0] + 1j * num[1]) / (den + reg)).reshape(Dp, Dp, Dp)
    vol = np.fft.fftshift(np.fft.ifftn(np.fft.ifftshift(spec))).real
    crop = slice(before, before + D)
    return vol[crop, crop, crop].astype(np.float32)


def _splat(num, den, k3, values, w2, Dp: int) -> None:
    """Add complex `values` and `w2` at points `k3` (x, y, z; grid units), trilinear weights."""
    pos = k3[:, ::-1] + Dp // 2  # (z, y, x) array coordinates
    base = np.floor(pos)
    frac = pos - base
    base = base.astype(np.int64)
    corners = np.array([(dz, dy, dx) for dz in (0, 1) for dy in (0, 1) for dx in (0, 1)])
    idx = base[None] + corners[:, None, :]  # (8, n, 3)
    w = np.prod(np.where(corners[:, None, :] == 1, frac[None], 1 - frac[None]), axis=2)
    ok = np.all((idx >= 0) & (idx < Dp), axis=2)
    w = np.where(ok, w, 0.0)
    idx = np.clip(idx, 0, Dp - 1)
    flat = ((idx[..., 0] * Dp + idx[..., 1]) * Dp + idx[..., 2]).ravel()
    size = Dp**3
    num[0] += np.bincount(flat, (w * values.real[None]).ravel(), minlength=size)
    num[1] += np.bincount(flat, (w * values.imag[None]).ravel(), minlength=size)
    den += np.bincount(flat, (w * w2[None]).ravel(), minlength=size)
