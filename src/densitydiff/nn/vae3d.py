"""Conditional 3-D VAE: encode (target, input) to a latent volume; decode latent + input.

Kingma & Welling 2014 with a conditional prior fixed to N(0, I) (CVAE, Sohn et al. 2015): the
encoder q(z | target, input) sees both maps, the decoder p(target | z, input) is a UNet3D over
the input map concatenated with the upsampled latent. Drawing several z for one input gives
several plausible sharpened maps.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from densitydiff.nn.unet3d import ResBlock3d, UNet3D, _groups


class Encoder3d(nn.Module):
    """Strided convolutions from (target, input) to the mean and log-variance of z."""

    def __init__(self, in_channels: int, latent_channels: int, widths: Sequence[int], emb_dim: int):
        super().__init__()
        self.emb_dim = emb_dim
        self.in_conv = nn.Conv3d(in_channels, widths[0], 3, padding=1)
        self.blocks = nn.ModuleList()
        self.downs = nn.ModuleList()
        ch = widths[0]
        for w in widths:
            self.blocks.append(ResBlock3d(ch, w, emb_dim))
            ch = w
            self.downs.append(nn.Conv3d(ch, ch, 3, stride=2, padding=1))
        self.out_norm = nn.GroupNorm(_groups(ch), ch)
        self.out_conv = nn.Conv3d(ch, 2 * latent_channels, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = torch.zeros(x.shape[0], self.emb_dim, device=x.device)
        h = self.in_conv(x)
        for block, down in zip(self.blocks, self.downs):
            h = down(block(h, emb))
        mu, logvar = self.out_conv(F.silu(self.out_norm(h))).chunk(2, dim=1)
        return mu, logvar.clamp(-30.0, 20.0)


class ConditionalVAE3d(nn.Module):
    """CVAE whose latent is a volume downsampled by 2**len(encoder_widths)."""

    def __init__(
        self,
        latent_channels: int = 4,
        encoder_widths: Sequence[int] = (16, 32),
        decoder: dict | None = None,
    ):
        super().__init__()
        self.latent_channels = latent_channels
        self.factor = 2 ** len(encoder_widths)
        decoder = dict(decoder or {})
        decoder.update(in_channels=1 + latent_channels, out_channels=1)
        self.decoder = UNet3D(**decoder)
        self.encoder = Encoder3d(2, latent_channels, encoder_widths, self.decoder.emb_dim)

    def encode(self, target: torch.Tensor, inp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior q(z | target, input) as (mu, logvar)."""
        return self.encoder(torch.cat([target, inp], dim=1))

    def decode(
        self,
        z: torch.Tensor,
        inp: torch.Tensor,
        input_resolution: torch.Tensor | float | None = None,
        target_resolution: torch.Tensor | float | None = None,
    ) -> torch.Tensor:
        """Mean of p(target | z, input)."""
        z_full = F.interpolate(z, size=inp.shape[-3:], mode="trilinear", align_corners=False)
        return self.decoder(
            torch.cat([inp, z_full], dim=1),
            None,
            input_resolution=input_resolution,
            target_resolution=target_resolution,
        )

    def latent_shape(self, inp: torch.Tensor) -> tuple[int, ...]:
        """Shape of z for an input batch (B, latent_channels, D/f, H/f, W/f), f = self.factor."""
        d, h, w = (-(-s // self.factor) for s in inp.shape[-3:])
        return (inp.shape[0], self.latent_channels, d, h, w)
