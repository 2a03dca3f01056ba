"""The prior's network: a residual MLP in EDM preconditioning (no Lightning, so loading a prior
for sampling works on the base install)."""

from __future__ import annotations

from densitydiff.diffusion.edm import EDMDenoiser
from densitydiff.nn.mlp import ResidualMLP
from densitydiff.prior.config import PriorConfig


def build_denoiser(dim: int, config: PriorConfig) -> EDMDenoiser:
    """ResidualMLP(width x depth) wrapped in EDM preconditioning (Karras et al. 2022 eq. 7)."""
    net = ResidualMLP(dim, width=config.width, depth=config.depth, emb_dim=config.emb_dim)
    return EDMDenoiser(net, sigma_data=config.sigma_data)
