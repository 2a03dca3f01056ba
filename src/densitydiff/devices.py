"""Compute devices named on the command line: `auto`, `cpu`, `cuda`, `cuda:K`, checked up front."""

from __future__ import annotations

from densitydiff.errors import InputError


def check_device(name: str) -> str:
    """The torch device string for `name`; InputError when it is unknown or not on this machine.

    `auto` is cuda when a GPU is visible, else cpu. Checked before any work starts, so a typo
    (`--device tpu`) costs nothing.
    """
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise InputError(f"unknown device {name!r}: use auto, cpu, cuda or cuda:K") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"--device {name}: no CUDA device is available; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise InputError(f"--device {name}: this machine has {torch.cuda.device_count()} GPUs")
    elif device.type != "cpu":
        raise InputError(f"unsupported device {name!r}: use auto, cpu, cuda or cuda:K")
    return str(device)
