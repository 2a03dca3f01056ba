"""The central-slice lattice: 2-D frequency coordinates of an image as points of 3-D frequency
space, and their rotation by a pose (the Fourier slice theorem).

Coordinates are (x, y, z) in frequency index units, (j - D // 2) * scale, the image plane at
z = 0. A pose A (acting on (x, y, z), see `densitydiff.rotations`) makes the image's 2-D
transform the volume's 3-D transform sampled at A^T k; with coordinates as row vectors that is
k @ A. The simulator's `Projector`, the reconstruction and the heterogeneity decoder all use
this lattice, so they sample the same points.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def lattice_plane(D: int, scale: float = 1.0, device=None) -> torch.Tensor:
    """Frequency coordinates (D, D, 3) float32 of a D x D image: (kx, ky, 0), k = (j - D//2) scale.

    `scale` converts to another grid's units (e.g. Dp / D for a volume padded to Dp).
    """
    import torch

    f = (torch.arange(D, device=device, dtype=torch.float32) - D // 2) * scale
    fy, fx = torch.meshgrid(f, f, indexing="ij")
    return torch.stack([fx, fy, torch.zeros_like(fx)], -1)


def circular_mask(plane: torch.Tensor, radius: float) -> torch.Tensor:
    """Boolean (D, D): the points of `plane` within `radius` (its units) of the zero frequency."""
    return (plane[..., 0] ** 2 + plane[..., 1] ** 2) <= radius**2


def rotate(points: torch.Tensor, rotations) -> torch.Tensor:
    """Points (M, 3) turned by poses (N, 3, 3): (N, M, 3), row vectors k @ A = A^T k."""
    return points @ rotations
