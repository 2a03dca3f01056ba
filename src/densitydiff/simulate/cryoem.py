"""Cryo-EM image formation X_i = CTF_i * (P_i V) + N_i, batched in torch (GPU when there is one).

Conventions are cryoDRGN's (so its files and ours mean the same thing):
- images are (y, x) arrays; volumes (z, y, x); the origin is pixel/voxel index D // 2;
- a pose is a matrix A acting on (x, y, z) vectors (see `rotations`): the image is the projection
  along z of the volume rotated by A, so its 2-D transform is the central slice V^(A^T k);
- a translation t (pixels, (x, y)) is the shift that re-centres the particle: the particle sits
  at D // 2 - t and the image's transform is the centred one times exp(+2 pi i k.t) (cryoDRGN's
  `Lattice.translate_ht(image, t)` multiplies by exp(-2 pi i k.t) to undo it; poses.pkl
  stores t / D, RELION's rlnOriginX/Y and cryoSPARC's shift are t with the same sign);
- ctf.pkl rows are [D, pixel Å, defocus U Å, defocus V Å, defocus angle deg, kV, Cs mm,
  amplitude contrast w, phase shift deg] (`formats.ctf.CTFParams`); the CTF is cryoDRGN's
  `compute_ctf` (`simulate.ctf`).

The pieces shared with reconstruction and the heterogeneity decoder live apart: centred
transforms and phase ramps in `simulate.fft`, the CTF in `simulate.ctf`, the central-slice
lattice in `simulate.lattice`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from densitydiff.errors import InputError
from densitydiff.simulate.ctf import ctf
from densitydiff.simulate.fft import fftn_centered, ifft2_centered, shift_phases
from densitydiff.simulate.lattice import lattice_plane, rotate

if TYPE_CHECKING:
    import torch


def _torch():
    import torch

    return torch


class Projector:
    """A volume's oversampled, gridding-corrected 3-D transform, ready for central slices.

    Trilinear interpolation in Fourier space multiplies real space by sinc^2(x / Dp) per axis
    (Dp the padded box); dividing the volume by it first (gridding correction, as in RELION)
    and oversampling by 2 keep slices within ~1e-3 of the real-space projection.
    """

    def __init__(self, volume, oversampling: int = 2, device=None) -> None:
        torch = _torch()
        vol = torch.as_tensor(np.asarray(volume, dtype=np.float32), device=device)
        if vol.ndim != 3 or len(set(vol.shape)) != 1:
            raise InputError(f"projection needs a cubic volume, got shape {tuple(vol.shape)}")
        if not bool(torch.isfinite(vol).all()):
            raise InputError("the volume contains NaN or infinite values")
        D = vol.shape[0]
        Dp = int(oversampling * D)
        r = (torch.arange(D, device=vol.device, dtype=torch.float64) - D // 2) / Dp
        s = torch.sinc(r) ** 2
        vol = vol / (s[:, None, None] * s[None, :, None] * s[None, None, :]).to(vol.dtype)
        before = Dp // 2 - D // 2
        after = Dp - D - before
        vol = torch.nn.functional.pad(vol, (before, after) * 3)
        spec = fftn_centered(vol)
        self.D, self.Dp, self.device = D, Dp, vol.device
        self.spectrum = torch.stack([spec.real, spec.imag])[None].contiguous()  # (1, 2, Dp^3)
        self._plane = lattice_plane(D, Dp / D, device=vol.device).reshape(-1, 3)

    def slices(self, rotations) -> torch.Tensor:
        """Centred 2-D transforms (N, D, D) complex64 of projections along rotations (N, 3, 3)."""
        torch = _torch()
        rot = torch.as_tensor(np.asarray(rotations), dtype=torch.float32, device=self.device)
        rot = rot.reshape(-1, 3, 3)
        k3 = rotate(self._plane, rot)  # (N, D*D, 3) as (x, y, z) in padded frequency units
        grid = k3 * (2.0 / (self.Dp - 1)) + (self.Dp // 2) * (2.0 / (self.Dp - 1)) - 1.0
        grid = grid.reshape(1, -1, self.D, self.D, 3)
        out = torch.nn.functional.grid_sample(
            self.spectrum, grid, mode="bilinear", padding_mode="zeros", align_corners=True
        )[0]
        return torch.complex(out[0], out[1])

    def project(self, rotations, shifts=None) -> torch.Tensor:
        """Projections (N, D, D) float32 along `rotations`, moved by `shifts` (N, 2) pixels."""
        spectra = self.slices(rotations)
        if shifts is not None:
            spectra = spectra * shift_phases(self.D, _as(shifts, spectra.device))
        return ifft2_centered(spectra).float()


def _as(x, device):
    torch = _torch()
    return torch.as_tensor(np.asarray(x), device=device)


def form_images(projector: Projector, rotations, shifts, ctf_params, bfactor=None):
    """Clean images CTF * (P V) (N, D, D): slice, shift, multiply by the CTF, inverse transform."""
    spectra = projector.slices(rotations)
    if shifts is not None:
        spectra = spectra * shift_phases(projector.D, _as(shifts, spectra.device))
    if ctf_params is not None:
        c = ctf(ctf_params, bfactor=bfactor, device=spectra.device)
        if c.shape[-1] != projector.D:
            raise InputError(f"CTF box {c.shape[-1]} does not match the volume box {projector.D}")
        spectra = spectra * c
    return ifft2_centered(spectra).float()


def noise_sigma(clean, snr: float) -> float:
    """Noise std for SNR = signal variance / noise variance.

    The signal variance is each clean image's pixel variance over the whole D x D box, averaged
    over the images given.
    """
    torch = _torch()
    if not (snr > 0 and math.isfinite(snr)):
        raise InputError(f"SNR must be positive and finite, got {snr}")
    clean = torch.as_tensor(clean)
    signal_var = float(clean.reshape(len(clean), -1).var(dim=1, unbiased=False).mean())
    return math.sqrt(signal_var / snr)


def add_noise(images, sigma: float, generator=None):
    """Images plus white Gaussian noise of standard deviation `sigma`."""
    torch = _torch()
    images = torch.as_tensor(images)
    noise = torch.randn(images.shape, generator=generator, dtype=images.dtype, device="cpu")
    return images + sigma * noise.to(images.device)


def project_real_space(volume, rotations, shifts=None, order: int = 3) -> np.ndarray:
    """Projections by rotating the volume in real space (spline interpolation) and summing along z.

    The reference for `Projector`: image pixel p = (x, y) sums V(A^T (x + t_x, y + t_y, z)) over z
    (the particle sits at D // 2 - t, see the module docstring).
    """
    from scipy.ndimage import map_coordinates

    vol = np.asarray(volume, dtype=np.float64)
    D = vol.shape[0]
    rot = np.asarray(rotations, dtype=np.float64).reshape(-1, 3, 3)
    t = np.zeros((len(rot), 2)) if shifts is None else np.asarray(shifts, dtype=np.float64)
    c = np.arange(D) - D // 2
    z, y, x = np.meshgrid(c, c, c, indexing="ij")
    out = np.empty((len(rot), D, D))
    for i, a in enumerate(rot):
        p = np.stack([x + t[i, 0], y + t[i, 1], z], -1).reshape(-1, 3)
        r = p @ a  # A^T p as row vectors, (x, y, z)
        idx = r[:, ::-1].T + D // 2
        samples = map_coordinates(vol, idx, order=order, mode="constant", cval=0.0)
        out[i] = samples.reshape(D, D, D).sum(axis=0)
    return out
