"""Read a torch file (checkpoint, model, latents) with torch.load(weights_only=True), only here.

Every torch file the package reads goes through `read_torch_file`: tensors, containers and
plain values load; anything that would run code is refused, and any failure is one InputError.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from densitydiff.errors import InputError


def read_torch_file(path: str | os.PathLike, what: str = "checkpoint") -> Any:
    """The object in a torch file, on the CPU; InputError (one line) when it cannot be read."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such {what}: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - pickle, zip and torch errors alike
        msg = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise InputError(f"cannot read {what} {path}: {msg}") from None


def write_torch_file(path: str | os.PathLike, payload: Any, suffix: str | None = None) -> Path:
    """Save `payload` with torch.save, whole or not at all (temporary name, then rename)."""
    import torch

    from densitydiff.outputs import atomic_path

    path = Path(path)
    with atomic_path(path, suffix=suffix) as tmp:
        torch.save(payload, tmp)
    return path
