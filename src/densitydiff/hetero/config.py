"""Training configuration of the heterogeneity VAE: a typed dataclass, presets and YAML.

The same idiom as densitydiff.prior.config. Defaults follow cryoDRGN 4.3.1's `train_vae` (Adam
lr 1e-4, beta = 1 / zdim, D/2 encoding frequencies, real-space window of radius 0.85, data sign
inverted) except: batch 8 (cryoDRGN's is 16), the geom_lowf positional encoding (cryoDRGN's
default is gaussian) and the issue's 256 x 3 networks (cryoDRGN's are 1024 x 3). cryoDRGN's
encoder always sees the shifted, phase-flipped Hartley transform; ours the windowed image.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from densitydiff import configfile
from densitydiff.errors import InputError

PE_TYPES = ("geom_lowf", "gaussian")
ENCODERS = ("mlp", "conv")
PRECISIONS = ("32", "bf16-mixed", "16-mixed")


@dataclass
class HeteroConfig:
    """Encoder and decoder sizes, latent dimension, KL weight, optimiser, data handling, seed."""

    zdim: int = 8
    epochs: int = 25
    batch_size: int = 8
    lr: float = 1e-4
    weight_decay: float = 0.0
    encoder: str = "mlp"  # cryoDRGN's MLP on the flattened image, or "conv" (strided convs)
    enc_dim: int = 256
    enc_layers: int = 3
    dec_dim: int = 256
    dec_layers: int = 3
    pe_type: str = "geom_lowf"  # "gaussian" (random Fourier features): cryoDRGN 4.3.1's default
    pe_dim: int | None = None  # frequencies per axis; None: D // 2 (cryoDRGN's default)
    feat_sigma: float = 0.5  # std of the Gaussian random frequencies (cryoDRGN's default)
    beta: float | None = None  # KL weight; None: 1 / zdim (cryoDRGN's default)
    invert_data: bool = True  # cryoDRGN's default: multiply the images by -1
    window: bool = True  # soft circular real-space window before the encoder
    window_r: float = 0.85  # window radius as a fraction of D / 2 (cryoDRGN's default)
    phase_flip: bool = False  # encoder sees the phase-flipped image
    chunk_size: int = 1024  # images read contiguously from the stack at a time
    precision: str = "32"  # Lightning precision: 32, bf16-mixed, 16-mixed
    seed: int = 0

    @property
    def kl_weight(self) -> float:
        return 1.0 / self.zdim if self.beta is None else float(self.beta)

    def validate(self) -> None:
        """Raise InputError on values no run could use."""
        sizes = (
            self.zdim,
            self.epochs,
            self.batch_size,
            self.enc_dim,
            self.dec_dim,
            self.chunk_size,
        )
        if min(sizes) < 1 or self.enc_layers < 0 or self.dec_layers < 0:
            raise InputError(
                "zdim, epochs, batch_size, enc_dim, dec_dim and chunk_size must be >= 1, "
                "enc_layers and dec_layers >= 0"
            )
        if self.pe_type not in PE_TYPES:
            raise InputError(f"pe_type must be one of {', '.join(PE_TYPES)}, got {self.pe_type!r}")
        if self.encoder not in ENCODERS:
            raise InputError(f"encoder must be one of {', '.join(ENCODERS)}, got {self.encoder!r}")
        if self.pe_dim is not None and self.pe_dim < 2:
            raise InputError(f"pe_dim must be >= 2, got {self.pe_dim}")
        if self.precision not in PRECISIONS:
            raise InputError(f"precision must be one of {', '.join(PRECISIONS)}")
        if self.lr <= 0 or self.weight_decay < 0 or self.feat_sigma <= 0:
            raise InputError("need lr > 0, weight_decay >= 0, feat_sigma > 0")
        if self.beta is not None and self.beta < 0:
            raise InputError(f"beta must be >= 0, got {self.beta}")
        if not 0 < self.window_r <= 1:
            raise InputError(f"window_r must lie in (0, 1], got {self.window_r}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> HeteroConfig:
        """A checked HeteroConfig from plain data over the defaults."""
        return configfile.build(cls, values)


PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    # tests on CPU: seconds
    "tiny": {
        "zdim": 2,
        "epochs": 2,
        "batch_size": 16,
        "lr": 1e-3,
        "enc_dim": 32,
        "enc_layers": 1,
        "dec_dim": 32,
        "dec_layers": 1,
        "chunk_size": 32,
    },
}


def read_config(path: str | os.PathLike | None, **overrides: Any) -> HeteroConfig:
    """HeteroConfig from a preset or YAML file (a run config.yaml too), then non-None overrides."""
    return HeteroConfig.from_dict(configfile.flat_values(path, PRESETS, overrides))
