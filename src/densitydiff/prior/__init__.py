"""Diffusion prior over cryo-EM heterogeneity latents (EDM on vectors, cryoDRGN z.pkl in/out).

Python API (torch imported lazily by the submodules):
    from densitydiff.prior.config import PriorConfig
    from densitydiff.prior.train import train_prior
    from densitydiff.prior.checkpoint import load_prior
    from densitydiff.prior.sample import sample_prior
    from densitydiff.prior.interpolate import interpolate
    from densitydiff.prior.metrics import mmd, energy_distance, sliced_wasserstein
"""

from __future__ import annotations
