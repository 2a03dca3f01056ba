"""The options every command shares, spelled and explained once (docs/cli.md).

`-o/--out` is what a command writes, `-c/--checkpoint` a model, `--steps` sampler steps,
`--device` auto|cpu|cuda|cuda:K, `--threads` torch's CPU threads, `--progress/--no-progress` the
bar. Old spellings stay as hidden aliases (`legacy`), so scripts written for them still run.
"""

from __future__ import annotations

from typing import Any

import typer

DEVICE_HELP = "auto | cpu | cuda | cuda:K (auto: cuda when a GPU is visible, else cpu)."
THREADS_HELP = "CPU threads for torch (default: torch's; 1 is often fastest on a busy machine)."
PROGRESS_HELP = "Progress bar on stderr (default: only when stderr is a terminal)."
CHECKPOINT_HELP = "Model: 'default' (DDPM), 'regression' (alias 'unet'), or a .pt/.ckpt file"


def out_option(help: str) -> Any:
    """-o/--out: the file or folder a command writes (None when not given: see `pick`)."""
    return typer.Option(None, "-o", "--out", help=help)


def fix_elements_option() -> Any:
    """--fix-elements: also repair element columns that contradict the atom names."""
    return typer.Option(
        False,
        "--fix-elements",
        help="Also override element columns that contradict atom names (blank ones are "
        "inferred without it).",
    )


def strict_elements_option() -> Any:
    """--strict-elements: refuse blank element columns instead of inferring them."""
    return typer.Option(
        False, "--strict-elements", help="Refuse blank element columns instead of inferring."
    )


def legacy(*names: str) -> Any:
    """A hidden alias of an option under its old spelling (kept so old scripts still run)."""
    return typer.Option(None, *names, hidden=True)


def pick(value: Any, old: Any, name: str, old_name: str, *, required: bool = False) -> Any:
    """The option's value given under its name or (hidden) old name; InputError for both."""
    from densitydiff.errors import InputError

    if value is not None and old is not None:
        raise InputError(f"give {name} once ({old_name} is its old spelling)")
    value = value if value is not None else old
    if value is None and required:
        raise InputError(f"missing option {name}")
    return value


def device_option() -> Any:
    """--device, default auto; checked by densitydiff.devices.check_device."""
    return typer.Option("auto", "--device", help=DEVICE_HELP)


def threads_option() -> Any:
    """--threads N: torch.set_num_threads (see set_threads)."""
    return typer.Option(None, "--threads", help=THREADS_HELP)


def progress_option() -> Any:
    """--progress/--no-progress; None (neither) leaves it to densitydiff.console.show_progress."""
    return typer.Option(None, "--progress/--no-progress", help=PROGRESS_HELP)


def set_threads(threads: int | None) -> None:
    """torch.set_num_threads: on a busy machine 1 thread can be several times faster than 2."""
    if threads is None:
        return
    from densitydiff.errors import InputError

    if threads < 1:
        raise InputError(f"--threads must be >= 1, got {threads}")
    import torch

    torch.set_num_threads(threads)
