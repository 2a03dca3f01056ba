"""Training configuration of the latent diffusion prior: a typed dataclass, presets and YAML.

The same idiom as densitydiff.sharpen.config (densitydiff.configfile builds and checks it):
defaults are a 16 x 128 residual MLP trained with Adam at batch 1024 for 400 epochs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from densitydiff import configfile
from densitydiff.errors import InputError


@dataclass
class PriorConfig:
    """Network (ResidualMLP width x depth), EDM noise levels, Adam, EMA and seed."""

    epochs: int = 400
    batch_size: int = 1024
    lr: float = 1e-3
    lr_schedule: str = "constant"  # or "cosine" (decay to 0 over the epochs)
    width: int = 128
    depth: int = 16
    emb_dim: int = 64
    sigma_data: float = 1.0  # latents are standardised to unit variance per dimension
    p_mean: float = -1.2
    p_std: float = 1.2
    sigma_min: float = 0.002
    sigma_max: float = 80.0
    ema_decay: float = 0.995
    posterior: bool = False  # train on z = mu + exp(logvar/2) eps when log-variances exist
    seed: int = 0

    def validate(self) -> None:
        """Raise InputError on values no run could use."""
        if self.epochs < 1 or self.batch_size < 1 or self.width < 1 or self.depth < 0:
            raise InputError("epochs, batch_size and width must be >= 1, depth >= 0")
        if self.lr_schedule not in ("cosine", "constant"):
            raise InputError(f"lr_schedule must be cosine or constant, got {self.lr_schedule!r}")
        if not (0 < self.sigma_min < self.sigma_max) or self.lr <= 0 or not 0 <= self.ema_decay < 1:
            raise InputError("need 0 < sigma_min < sigma_max, lr > 0, 0 <= ema_decay < 1")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PriorConfig:
        """A checked PriorConfig from plain data over the defaults."""
        return configfile.build(cls, values)


PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    # tests on CPU: a few seconds
    "tiny": {"epochs": 20, "batch_size": 256, "width": 32, "depth": 2, "emb_dim": 16},
}


def read_config(path: str | os.PathLike | None, **overrides: Any) -> PriorConfig:
    """PriorConfig from a preset or YAML file (a run's config.yaml too), then non-None overrides.

    A run's config.yaml holds the fields; a config.yaml that is a run record (the fields under
    its "config" entry) reads too.
    """
    return PriorConfig.from_dict(configfile.flat_values(path, PRESETS, overrides))
