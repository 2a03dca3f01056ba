"""Centred discrete Fourier and Hartley transforms of images, and their frequency grids (torch).

"Centred": the origin is index D // 2 in real and in Fourier space (cryoDRGN's and RELION's
convention), so the zero frequency of a D x D transform is pixel (D // 2, D // 2). Images are
(..., y, x); frequencies are in 1/Å when a pixel size is given, in cycles per pixel otherwise.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

DIMS = (-2, -1)


def fft2_centered(images: torch.Tensor) -> torch.Tensor:
    """2-D transform with the origin at index D // 2 in both real and Fourier space."""
    import torch

    return torch.fft.fftshift(torch.fft.fft2(torch.fft.ifftshift(images, dim=DIMS)), dim=DIMS)


def ifft2_centered(spectra: torch.Tensor) -> torch.Tensor:
    """Inverse of `fft2_centered` (real part: the inputs here are transforms of real images)."""
    import torch

    out = torch.fft.fftshift(torch.fft.ifft2(torch.fft.ifftshift(spectra, dim=DIMS)), dim=DIMS)
    return out.real


def fftn_centered(volume: torch.Tensor) -> torch.Tensor:
    """3-D (all axes) transform with the origin at index D // 2 in real and Fourier space."""
    import torch

    return torch.fft.fftshift(torch.fft.fftn(torch.fft.ifftshift(volume)))


def ifftn_centered(spectrum: torch.Tensor) -> torch.Tensor:
    """Inverse of `fftn_centered` (complex; take .real for transforms of real volumes)."""
    import torch

    return torch.fft.fftshift(torch.fft.ifftn(torch.fft.ifftshift(spectrum)))


def ht2_centered(images: torch.Tensor) -> torch.Tensor:
    """Centred 2-D Hartley transform, H = Re F - Im F of the centred Fourier transform F.

    For real images H(k) = sum_r x(r) cas(2 pi k.r / D), cas = cos + sin; it is real and its
    own inverse up to 1 / D^2 (`iht2_centered`).
    """
    spectra = fft2_centered(images)
    return spectra.real - spectra.imag


def iht2_centered(hartley: torch.Tensor) -> torch.Tensor:
    """Inverse of `ht2_centered`: the Hartley transform again, divided by D^2."""
    D2 = hartley.shape[-1] * hartley.shape[-2]
    return ht2_centered(hartley) / D2


def frequencies(D: int, pixel_size: float = 1.0, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Centred frequency grids (fx, fy), each (D, D), in 1/Å: ((j - D//2) / (D * pixel_size))."""
    import torch

    f = (torch.arange(D, device=device, dtype=torch.float64) - D // 2) / (D * pixel_size)
    fy, fx = torch.meshgrid(f, f, indexing="ij")
    return fx, fy


def shift_phases(D: int, shifts: torch.Tensor) -> torch.Tensor:
    """Phase ramps (N, D, D) exp(+2 pi i k.t) for pose translations t (N, 2) pixels (x, y).

    They move a centred image to where the particle sits, D // 2 - t (cryoDRGN's and RELION's
    sign: t is the shift that re-centres the particle); `shift_phases(D, -t)` undoes them.
    """
    import torch

    shifts = torch.as_tensor(shifts, dtype=torch.float64)
    fx, fy = frequencies(D, 1.0, device=shifts.device)
    arg = fx * shifts[:, 0, None, None] + fy * shifts[:, 1, None, None]
    return torch.polar(torch.ones_like(arg), 2 * math.pi * arg).to(torch.complex64)
