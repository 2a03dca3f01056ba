"""Test helper: randomly initialised tiny sharpening models exported as densitydiff model files.

A Lightning-format checkpoint ({"state_dict", "hyper_parameters": {"config"}}) is written from a
fresh SharpenModule and exported with densitydiff.sharpen.checkpoint.export_sharpener, the same
path a trained run takes to become a packaged model.
"""

from __future__ import annotations

import shutil
from pathlib import Path

_CACHE: dict[tuple[str, int], Path] = {}


def export_tiny(kind: str, folder: Path, seed: int = 0, name: str | None = None) -> Path:
    """A random tiny `kind` model ("unet" | "ddpm"), 16^3 patches at 1 Å: returns the .pt path.

    The file is built once per (kind, seed) in a test session and copied for later callers.
    """
    out = Path(folder) / f"{name or 'tiny_' + kind}.pt"
    if (kind, seed) in _CACHE and _CACHE[(kind, seed)].is_file() and name is None:
        shutil.copyfile(_CACHE[(kind, seed)], out)
        return out
    import torch

    from densitydiff.sharpen.checkpoint import export_sharpener
    from densitydiff.sharpen.config import load_config, to_dict
    from densitydiff.sharpen.module import SharpenModule

    config = to_dict(load_config("tiny", {"model": kind}))
    torch.manual_seed(seed)
    module = SharpenModule(config)
    ckpt = Path(folder) / f"run_{kind}" / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": {"config": config}}, ckpt)
    export_sharpener(
        ckpt, out, voxel_size=1.0, patch=16, training_structures=[], name=name or f"tiny_{kind}"
    )
    if name is None:
        _CACHE[(kind, seed)] = out
    return out
