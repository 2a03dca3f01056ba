"""Heterogeneous reconstruction: a cryoDRGN-style VAE from particle images to latents and volumes.

Python API (torch imported lazily by the submodules):
    from densitydiff.hetero.config import HeteroConfig, read_config
    from densitydiff.hetero.data import open_particles
    from densitydiff.hetero.train import train_hetero
    from densitydiff.hetero.checkpoint import load_hetero
    from densitydiff.hetero.volume import decode_volumes, write_volumes
    from densitydiff.hetero.evaluate import volume_fsc_auc, pca, abs_corr
"""

from __future__ import annotations
