"""The heterogeneity VAE (cryoDRGN's HetOnlyVAE, Zhong et al. 2021): image -> q(z) -> a volume's
central slice, as a neural field over 3-D frequency coordinates.

Units: images are normalised to unit pixel std (`img_std`) with the data sign applied; Fourier
values are `fft2_centered(image) / D`. The field gives the volume's centred 3-D transform
F(q) (q in frequency index units, (x, y, z)); it is Hermitian by construction: the network is
evaluated at s q with s = `hermitian_sign(q)` and F(q) = a + i s b from its two outputs (a, b),
so F(-q) = conj F(q) everywhere and a slice needs the network on half its points only.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from densitydiff.hetero.config import HeteroConfig
from densitydiff.nn.field import (
    ConvEncoder,
    PositionalEncoding,
    ResidualLinearMLP,
    hermitian_sign,
)
from densitydiff.simulate.lattice import lattice_plane, rotate


def window_mask(D: int, in_rad: float = 0.85, out_rad: float = 0.99) -> Tensor:
    """(D, D) real-space window: 1 inside in_rad, linear ramp to 0 at out_rad (fractions of D/2),
    as cryoDRGN 4.3.1's `masking.spherical_window_mask`."""
    x = (torch.arange(D, dtype=torch.float32) - D // 2) / (D / 2)
    y, x = torch.meshgrid(x, x, indexing="ij")
    r = torch.sqrt(x**2 + y**2)
    return torch.clamp(1 - (r - in_rad) / (out_rad - in_rad), 0.0, 1.0)


def half_plane(D: int) -> tuple[Tensor, Tensor, Tensor]:
    """The image points the decoder is evaluated on: (points (P, 3), flat index of k, of -k).

    Inside the circular mask |k| < D / 2 (strict, so -k is on the grid too), one of each pair
    (k, -k): ky > 0, or ky == 0 and kx >= 0 (the origin included).
    """
    plane = lattice_plane(D).reshape(-1, 3)
    kx, ky = plane[:, 0], plane[:, 1]
    inside = kx**2 + ky**2 < (D / 2) ** 2
    half = inside & ((ky > 0) | ((ky == 0) & (kx >= 0)))
    idx = torch.nonzero(half).squeeze(1)
    c = D // 2
    jx, jy = kx[idx].long() + c, ky[idx].long() + c
    neg = (c - (jy - c)) * D + (c - (jx - c))
    return plane[idx], idx, neg


class FourierFieldDecoder(nn.Module):
    """F(q, z): positional encoding of q / D concatenated with z -> residual MLP -> (a, b)."""

    def __init__(self, D: int, zdim: int, config: HeteroConfig) -> None:
        super().__init__()
        self.D = D
        self.encoding = PositionalEncoding(
            D, config.pe_type, config.pe_dim, config.feat_sigma, seed=config.seed
        )
        self.mlp = ResidualLinearMLP(
            self.encoding.out_dim + zdim, config.dec_dim, config.dec_layers, 2
        )

    def forward(self, coords: Tensor, z: Tensor) -> Tensor:
        """Complex F (..., P) at coords (..., P, 3) (index units) for latents z (..., zdim)."""
        s = hermitian_sign(coords)
        c = coords * s[..., None] / self.D  # cryoDRGN's lattice: cycles/pixel in [-0.5, 0.5]
        zz = z[..., None, :].expand(*c.shape[:-1], z.shape[-1])
        out = self.mlp(torch.cat([self.encoding(c), zz.to(c.dtype)], -1)).float()
        origin = (coords.abs().sum(-1) == 0).float()
        return torch.complex(out[..., 0], out[..., 1] * s * (1 - origin))


class HeteroVAE(nn.Module):
    """Encoder (windowed image -> mean, log-variance of z: cryoDRGN's MLP, or a small conv net)
    and the Fourier-field decoder."""

    def __init__(self, D: int, config: HeteroConfig) -> None:
        super().__init__()
        self.D, self.zdim = D, config.zdim
        if config.encoder == "conv":
            self.encoder = ConvEncoder(D, config.enc_dim, 2 * config.zdim)
        else:
            self.encoder = ResidualLinearMLP(
                D * D, config.enc_dim, config.enc_layers, 2 * config.zdim
            )
        self.decoder = FourierFieldDecoder(D, config.zdim, config)
        points, idx, neg = half_plane(D)
        self.register_buffer(
            "window",
            window_mask(D, config.window_r) if config.window else torch.ones(D, D),
            persistent=False,
        )
        self.register_buffer("points", points, persistent=False)
        self.register_buffer("idx", idx, persistent=False)
        self.register_buffer("neg", neg, persistent=False)

    def encode(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """(mu, logvar), each (B, zdim), of normalised images (B, D, D)."""
        windowed = images * self.window
        flat = isinstance(self.encoder, ResidualLinearMLP)
        out = self.encoder(windowed.flatten(1) if flat else windowed)
        return out[:, : self.zdim], out[:, self.zdim :]

    def slices(self, z: Tensor, rotations: Tensor) -> Tensor:
        """F (B, P) on the half plane's points, rotated by poses (B, 3, 3) (k @ A = A^T k)."""
        return self.decoder(rotate(self.points, rotations.to(self.points.dtype)), z)

    def full_plane(self, half: Tensor) -> Tensor:
        """(B, D, D) complex image transforms from half-plane values; 0 outside the mask."""
        out = torch.zeros(half.shape[0], self.D * self.D, dtype=half.dtype, device=half.device)
        out[:, self.neg] = half.conj()
        out[:, self.idx] = half
        return out.reshape(-1, self.D, self.D)

    @torch.no_grad()
    def volume_spectrum(self, z: Tensor, batch: int = 65536) -> Tensor:
        """The volume's centred 3-D transform (D, D, D) (z, y, x) at one latent z (zdim,); 0 outside
        the sphere |q| < D / 2. The decoder runs on one of each pair (q, -q), half the points;
        F(-q) = conj F(q) fills the rest."""
        D = self.D
        f = torch.arange(D, dtype=torch.float32, device=z.device) - D // 2
        kz, ky, kx = torch.meshgrid(f, f, f, indexing="ij")
        q = torch.stack([kx, ky, kz], -1).reshape(-1, 3)
        inside = (q**2).sum(-1) < (D / 2) ** 2  # strict: -q of every point is on the grid
        half = torch.nonzero(inside & (hermitian_sign(q) > 0)).squeeze(1)
        c = D // 2
        iz, iy, ix = half // (D * D), (half // D) % D, half % D
        neg = ((2 * c - iz) * D + (2 * c - iy)) * D + (2 * c - ix)
        pts = q[half]
        vals = torch.cat([self.decoder(pts[i : i + batch], z) for i in range(0, len(pts), batch)])
        out = torch.zeros(D**3, dtype=torch.complex64, device=z.device)
        out[neg] = vals.conj()
        out[half] = vals  # after: the origin is its own partner and keeps its (real) value
        return out.reshape(D, D, D)
