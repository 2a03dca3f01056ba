"""The contrast transfer function (cryoDRGN's `compute_ctf` convention), and its use on images.

gamma = 2 pi (-0.5 df lambda s^2 + 0.25 Cs lambda^3 s^4) - phase_shift,
CTF = sqrt(1 - w^2) sin(gamma) - w cos(gamma), times exp(-B s^2 / 4) for a B-factor;
df = dfU cos^2(theta - dfang) + dfV sin^2(theta - dfang) with theta = atan2(fy, fx)
(= cryoDRGN's 0.5 (dfU + dfV + (dfU - dfV) cos 2(theta - dfang))). Parameters: `CTFParams`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from densitydiff.errors import InputError
from densitydiff.formats.ctf import CTFParams
from densitydiff.simulate.fft import fft2_centered, frequencies, ifft2_centered

if TYPE_CHECKING:
    import torch


def electron_wavelength(voltage_kv):
    """Relativistic electron wavelength (Å) for an acceleration voltage in kV (numpy or torch).

    lambda = h / sqrt(2 m e V (1 + e V / (2 m c^2))) = 12.2639 / sqrt(V + 0.97845e-6 V^2) Å, V
    in volts (cryoDRGN's constants); 300 kV gives 0.0197 Å.
    """
    if not hasattr(voltage_kv, "sqrt"):  # numpy or a number; torch tensors have .sqrt()
        voltage_kv = np.asarray(voltage_kv, dtype=np.float64)
    volt = voltage_kv * 1e3
    relativistic = volt + 0.97845e-6 * volt**2
    root = relativistic.sqrt() if hasattr(relativistic, "sqrt") else np.sqrt(relativistic)
    return 12.2639 / root


def ctf(ctf_params: np.ndarray | CTFParams, bfactor: float | None = None, device=None):
    """CTF images (N, D, D) float32 for ctf.pkl rows (N, 9) or `CTFParams`.

    All images must share D and the pixel size (one box per stack); see the module docstring.
    """
    import torch

    p = ctf_params if isinstance(ctf_params, CTFParams) else CTFParams.from_array(ctf_params)
    D, pixel = int(p.D[0]), float(p.pixel_size[0])
    if not (np.all(p.D == D) and np.allclose(p.pixel_size, pixel, rtol=1e-5, atol=1e-8)):
        raise InputError("all CTF rows of one stack must share the box size and pixel size")
    if D < 2 or pixel <= 0:
        raise InputError(f"bad box size {D} or pixel size {pixel} in CTF parameters")

    def column(values: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(values, dtype=torch.float64, device=device)[:, None, None]

    fx, fy = frequencies(D, pixel, device=device)
    s2 = fx**2 + fy**2
    theta = torch.atan2(fy, fx)
    lam = electron_wavelength(column(p.voltage))
    cs = column(p.cs) * 1e7  # mm -> Å
    w = column(p.amplitude_contrast)
    delta = theta - torch.deg2rad(column(p.defocus_angle))
    df = column(p.defocus_u) * torch.cos(delta) ** 2 + column(p.defocus_v) * torch.sin(delta) ** 2
    gamma = 2 * math.pi * (-0.5 * df * lam * s2 + 0.25 * cs * lam**3 * s2**2)
    gamma = gamma - torch.deg2rad(column(p.phase_shift))
    out = torch.sqrt(1 - w**2) * torch.sin(gamma) - w * torch.cos(gamma)
    if bfactor is not None:
        out = out * torch.exp(-bfactor / 4 * s2)
    return out.to(torch.float32)


def apply_ctf(images, ctf_params, bfactor=None):
    """Multiply images (N, D, D) by their CTFs in Fourier space."""
    import torch

    images = torch.as_tensor(images)
    c = ctf(ctf_params, bfactor=bfactor, device=images.device)
    return ifft2_centered(fft2_centered(images) * c).float()


def phase_flip(images, ctf_params):
    """Phase-flipped images: the transform multiplied by sign(CTF), undoing contrast reversals."""
    import torch

    images = torch.as_tensor(images)
    c = ctf(ctf_params, device=images.device)
    return ifft2_centered(fft2_centered(images) * torch.sign(c)).float()
