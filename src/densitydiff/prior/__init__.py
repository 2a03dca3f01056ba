"""Diffusion prior over cryo-EM heterogeneity latents (EDM on vectors, cryoDRGN z.pkl in/out).

Python API (torch imported lazily by the submodules):
    from densitydiff.prior.train import train_prior, PriorConfig
    from densitydiff.prior.sample import load_prior, sample_prior
    from densitydiff.prior.interpolate import interpolate
    from densitydiff.prior.metrics import mmd, energy_distance, sliced_wasserstein
"""

from __future__ import annotations
