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
  amplitude contrast w, phase shift deg]; the CTF is cryoDRGN's `compute_ctf` (see `ctf`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from densitydiff.errors import InputError

if TYPE_CHECKING:
    import torch


def _torch():
    import torch

    return torch


def fft2_centered(images: torch.Tensor) -> torch.Tensor:
    """2-D transform with the origin at index D // 2 in both real and Fourier space."""
    torch = _torch()
    dims = (-2, -1)
    return torch.fft.fftshift(torch.fft.fft2(torch.fft.ifftshift(images, dim=dims)), dim=dims)


def ifft2_centered(spectra: torch.Tensor) -> torch.Tensor:
    """Inverse of `fft2_centered` (real part: the inputs here are transforms of real images)."""
    torch = _torch()
    dims = (-2, -1)
    out = torch.fft.fftshift(torch.fft.ifft2(torch.fft.ifftshift(spectra, dim=dims)), dim=dims)
    return out.real


def frequencies(D: int, pixel_size: float = 1.0, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Centred frequency grids (fx, fy), each (D, D), in 1/Å: ((j - D//2) / (D * pixel_size))."""
    torch = _torch()
    f = (torch.arange(D, device=device, dtype=torch.float64) - D // 2) / (D * pixel_size)
    fy, fx = torch.meshgrid(f, f, indexing="ij")
    return fx, fy


def electron_wavelength(voltage_kv: float | np.ndarray) -> np.ndarray:
    """Relativistic electron wavelength (Å) for a voltage in kV (cryoDRGN's formula)."""
    volt = np.asarray(voltage_kv, dtype=np.float64) * 1e3
    return 12.2639 / np.sqrt(volt + 0.97845e-6 * volt**2)


def ctf(ctf_params: np.ndarray | torch.Tensor, bfactor: float | None = None, device=None):
    """CTF images (N, D, D) float32 for ctf.pkl rows (N, 9), cryoDRGN's `compute_ctf` convention.

    gamma = 2 pi (-0.5 df lambda s^2 + 0.25 Cs lambda^3 s^4) - phase_shift,
    CTF = sqrt(1 - w^2) sin(gamma) - w cos(gamma), times exp(-B s^2 / 4) when `bfactor` is given;
    df = dfU cos^2(theta - ang) + dfV sin^2(theta - ang) with theta = atan2(fy, fx).
    All rows must share D and the pixel size (one box per stack).
    """
    torch = _torch()
    p = torch.as_tensor(np.asarray(ctf_params, dtype=np.float64), device=device)
    if p.ndim == 1:
        p = p[None]
    if p.ndim != 2 or p.shape[1] != 9:
        raise InputError(f"CTF parameters must be an (N, 9) array, got shape {tuple(p.shape)}")
    if not bool(torch.isfinite(p).all()):
        raise InputError("CTF parameters contain NaN or infinite values")
    D = int(p[0, 0])
    pixel = float(p[0, 1])
    if not (torch.all(p[:, 0] == D) and torch.allclose(p[:, 1], p[0, 1])):
        raise InputError("all CTF rows of one stack must share the box size and pixel size")
    if D < 2 or pixel <= 0:
        raise InputError(f"bad box size {D} or pixel size {pixel} in CTF parameters")
    fx, fy = frequencies(D, pixel, device=p.device)
    s2 = fx**2 + fy**2
    theta = torch.atan2(fy, fx)
    col = [p[:, i, None, None] for i in range(9)]
    dfu, dfv, dfang, kv, cs_mm, w, phase = col[2:]
    lam = 12.2639 / torch.sqrt(kv * 1e3 + 0.97845e-6 * (kv * 1e3) ** 2)
    cs = cs_mm * 1e7
    delta = theta - torch.deg2rad(dfang)
    df = dfu * torch.cos(delta) ** 2 + dfv * torch.sin(delta) ** 2
    gamma = 2 * math.pi * (-0.5 * df * lam * s2 + 0.25 * cs * lam**3 * s2**2) - torch.deg2rad(phase)
    out = torch.sqrt(1 - w**2) * torch.sin(gamma) - w * torch.cos(gamma)
    if bfactor is not None:
        out = out * torch.exp(-bfactor / 4 * s2)
    return out.to(torch.float32)


def shift_phases(D: int, shifts: torch.Tensor) -> torch.Tensor:
    """Phase ramps (N, D, D) exp(+2 pi i k.t) for pose translations t (N, 2) pixels (x, y).

    They move a centred image to where the particle sits, D // 2 - t (cryoDRGN's and RELION's
    sign: t is the shift that re-centres the particle); `shift_phases(D, -t)` undoes them.
    """
    torch = _torch()
    shifts = torch.as_tensor(shifts, dtype=torch.float64)
    fx, fy = frequencies(D, 1.0, device=shifts.device)
    arg = fx * shifts[:, 0, None, None] + fy * shifts[:, 1, None, None]
    return torch.polar(torch.ones_like(arg), 2 * math.pi * arg).to(torch.complex64)


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
        spec = torch.fft.fftshift(torch.fft.fftn(torch.fft.ifftshift(vol)))
        self.D, self.Dp, self.device = D, Dp, vol.device
        self.spectrum = torch.stack([spec.real, spec.imag])[None].contiguous()  # (1, 2, Dp^3)
        f = (torch.arange(D, device=vol.device, dtype=torch.float32) - D // 2) * (Dp / D)
        fy, fx = torch.meshgrid(f, f, indexing="ij")
        self._plane = torch.stack([fx, fy, torch.zeros_like(fx)], -1).reshape(-1, 3)

    def slices(self, rotations) -> torch.Tensor:
        """Centred 2-D transforms (N, D, D) complex64 of projections along rotations (N, 3, 3)."""
        torch = _torch()
        rot = torch.as_tensor(np.asarray(rotations), dtype=torch.float32, device=self.device)
        rot = rot.reshape(-1, 3, 3)
        # Fourier slice theorem: image frequency k samples V^ at A^T k (row vectors: k @ A).
        k3 = self._plane @ rot  # (N, D*D, 3) as (x, y, z) in padded frequency units
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


def apply_ctf(images, ctf_params, bfactor=None):
    """Multiply images (N, D, D) by their CTFs in Fourier space."""
    torch = _torch()
    images = torch.as_tensor(images)
    c = ctf(ctf_params, bfactor=bfactor, device=images.device)
    return ifft2_centered(fft2_centered(images) * c).float()


def phase_flip(images, ctf_params):
    """Phase-flipped images: the transform multiplied by sign(CTF), undoing contrast reversals."""
    torch = _torch()
    images = torch.as_tensor(images)
    c = ctf(ctf_params, device=images.device)
    return ifft2_centered(fft2_centered(images) * torch.sign(c)).float()


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
