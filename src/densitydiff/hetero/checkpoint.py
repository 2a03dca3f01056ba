"""Save and load a trained heterogeneity VAE: RUN/weights.pt, a weights-only dict.

{"format": FORMAT, "D", "pixel_size", "img_std" (data pixel std), "config" (HeteroConfig
fields), "state_dict" (HeteroVAE), "n_images", "epochs_trained", "versions"}. Training
checkpoints (RUN/checkpoints/last.ckpt) load too (for `hetero volume` on a run still training).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

from densitydiff.errors import InputError
from densitydiff.hetero.config import HeteroConfig
from densitydiff.hetero.model import HeteroVAE
from densitydiff.torchfile import read_torch_file, write_torch_file

FORMAT = "densitydiff.hetero/1"


@dataclass
class HeteroRun:
    """A trained VAE and what turns its output into volumes in the images' units."""

    model: HeteroVAE
    config: HeteroConfig
    D: int
    pixel_size: float
    img_std: float

    @property
    def zdim(self) -> int:
        return self.config.zdim


def save_hetero(
    path: str | os.PathLike,
    model: HeteroVAE,
    config: HeteroConfig,
    *,
    D: int,
    pixel_size: float,
    img_std: float,
    n_images: int,
    epochs_trained: int,
    versions: dict,
) -> Path:
    """Write weights.pt atomically."""
    payload = {
        "format": FORMAT,
        "D": int(D),
        "pixel_size": float(pixel_size),
        "img_std": float(img_std),
        "config": asdict(config),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "n_images": int(n_images),
        "epochs_trained": int(epochs_trained),
        "versions": versions,
    }
    return write_torch_file(path, payload)


def load_hetero(path: str | os.PathLike) -> HeteroRun:
    """Load RUN/weights.pt (or RUN/checkpoints/last.ckpt, or the file itself), weights only."""
    path = Path(path)
    if path.is_dir():
        final, last = path / "weights.pt", path / "checkpoints" / "last.ckpt"
        path = final if final.is_file() or not last.is_file() else last
    if not path.is_file():
        raise InputError(f"no trained model at {path} (run `densitydiff hetero train` first)")
    blob = read_torch_file(path, "hetero checkpoint")
    try:
        if isinstance(blob, dict) and "hyper_parameters" in blob:  # a Lightning checkpoint
            hp = blob["hyper_parameters"]
            state = {
                k[len("model.") :]: v
                for k, v in blob["state_dict"].items()
                if k.startswith("model.")
            }
            blob = {
                "format": FORMAT,
                "D": hp["D"],
                "pixel_size": hp["pixel_size"],
                "img_std": hp["img_std"],
                "config": hp["config"],
                "state_dict": state,
            }
        if not isinstance(blob, dict) or blob.get("format") != FORMAT:
            raise InputError(f"{path}: not a densitydiff hetero checkpoint")
        config = HeteroConfig.from_dict(blob["config"])
        model = HeteroVAE(int(blob["D"]), config)
        model.load_state_dict(blob["state_dict"])
        D, pixel, std = int(blob["D"]), float(blob["pixel_size"]), float(blob["img_std"])
    except (KeyError, TypeError, AttributeError, RuntimeError) as exc:
        first = " ".join(str(exc).split())[:200]
        raise InputError(f"{path}: incomplete or mismatched hetero checkpoint ({first})") from None
    model.eval().requires_grad_(False)
    return HeteroRun(model, config, D, pixel, std)
