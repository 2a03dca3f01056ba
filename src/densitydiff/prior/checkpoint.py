"""Save and load a trained prior: RUN/prior.pt, a weights-only dict.

{"format": FORMAT, "dim", "config" (PriorConfig fields), "state_dict" (EMA denoiser), "mean",
"std" (latent standardisation), "latents" (training means), "epochs_trained", "versions"}.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from densitydiff.diffusion import edm
from densitydiff.errors import InputError
from densitydiff.prior.config import PriorConfig
from densitydiff.prior.latents import LatentStats
from densitydiff.prior.network import build_denoiser
from densitydiff.torchfile import read_torch_file, write_torch_file

FORMAT = "densitydiff.prior/1"


@dataclass
class Prior:
    """A trained prior: EDM `denoiser` on standardised latents, `stats`, training `latents`."""

    denoiser: edm.EDMDenoiser
    stats: LatentStats
    config: PriorConfig
    latents: np.ndarray

    @property
    def dim(self) -> int:
        return int(self.latents.shape[1])

    def to_model(self, z: np.ndarray) -> torch.Tensor:
        """Latents (file units) -> standardised tensor the denoiser works on."""
        return torch.from_numpy(np.asarray(self.stats.standardise(z), dtype=np.float32))

    def from_model(self, x: torch.Tensor) -> np.ndarray:
        """Standardised tensor -> latents in file units (float32)."""
        return self.stats.unstandardise(x.detach().cpu().numpy()).astype(np.float32)


def save_prior(
    path: str | os.PathLike,
    denoiser: torch.nn.Module,
    config: PriorConfig,
    stats: LatentStats,
    latents: np.ndarray,
    *,
    epochs_trained: int,
    versions: dict,
) -> Path:
    """Write prior.pt atomically (the denoiser's weights as given: pass the EMA copy)."""
    from dataclasses import asdict

    payload = {
        "format": FORMAT,
        "dim": int(latents.shape[1]),
        "config": asdict(config),
        "state_dict": {k: v.detach().cpu() for k, v in denoiser.state_dict().items()},
        "mean": torch.from_numpy(stats.mean),
        "std": torch.from_numpy(stats.std),
        "latents": torch.from_numpy(latents),
        "epochs_trained": int(epochs_trained),
        "versions": versions,
    }
    return write_torch_file(path, payload)


def load_prior(path: str | os.PathLike) -> Prior:
    """Load RUN/prior.pt (or the file itself), weights only."""
    path = Path(path)
    if path.is_dir():
        path = path / "prior.pt"
    if not path.is_file():
        raise InputError(f"no trained prior at {path} (run `densitydiff prior train` first)")
    blob = read_torch_file(path, "prior checkpoint")
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise InputError(f"{path}: not a densitydiff prior checkpoint")
    try:
        config = PriorConfig.from_dict(blob["config"])
        denoiser = build_denoiser(int(blob["dim"]), config)
        denoiser.load_state_dict(blob["state_dict"])
        stats = LatentStats(blob["mean"].numpy(), blob["std"].numpy())
        latents = blob["latents"].numpy()
    except (KeyError, TypeError, AttributeError, RuntimeError) as exc:
        first = " ".join(str(exc).split())[:200]
        raise InputError(f"{path}: incomplete or mismatched prior checkpoint ({first})") from None
    denoiser.eval().requires_grad_(False)
    return Prior(denoiser, stats, config, latents)
