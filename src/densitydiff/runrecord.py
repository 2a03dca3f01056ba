"""What a run did, written next to its outputs: command line, config, seed, versions, inputs.

One record for every command that makes files (training, sharpen's OUT.json, simulate,
evaluate, demo), so a result can be traced to the exact command and software that made it:

    {"command": {"argv": [...], "shell": "densitydiff ..."}, "config", "seed", "versions",
     "inputs": [{"path", "bytes", "sha256"}], "warnings", "date", "wall_seconds", ...}
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from densitydiff.outputs import atomic_path

HASH_LIMIT = 64 * 2**20  # bytes: files up to this size get a sha256
PACKAGES = ("torch", "lightning", "diffusers", "numpy", "zarr", "gemmi")
_invocation: list[str] | None = None  # the CLI's command line while a command runs


@contextlib.contextmanager
def invoked_as(argv: Sequence[str]) -> Iterator[None]:
    """Within the block, records name `argv` as the command (the CLI sets its own arguments)."""
    global _invocation
    previous, _invocation = _invocation, [str(a) for a in argv]
    try:
        yield
    finally:
        _invocation = previous


def command(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """{"argv": list, "shell": one shell-quoted string}.

    argv defaults to the CLI's command line (`invoked_as`), else sys.argv; the program is named
    `densitydiff` when it is the console script or `python -m densitydiff`.
    """
    if argv is None:
        argv = _invocation if _invocation is not None else sys.argv
    args = [str(a) for a in argv]
    program = Path(args[0]) if args else None
    if program is not None and "densitydiff" in (program.name, program.parent.name):
        args[0] = "densitydiff"  # the console script, or python -m densitydiff
    return {"argv": args, "shell": shlex.join(args)}


def versions() -> dict[str, str]:
    """Versions of densitydiff, Python, the platform and the libraries a result depends on."""
    import importlib.metadata as md

    from densitydiff import __version__

    out = {
        "densitydiff": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }
    for name in PACKAGES:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "not installed"
    return out


def describe_input(path: str | os.PathLike) -> dict[str, Any]:
    """{"path", "bytes", "sha256"} of a file (sha256 only up to HASH_LIMIT); a folder by path."""
    path = Path(path)
    entry: dict[str, Any] = {"path": str(path)}
    if path.is_dir():
        entry["kind"] = "directory"
    elif path.is_file():
        size = path.stat().st_size
        entry["bytes"] = size
        if size <= HASH_LIMIT:
            digest = hashlib.sha256()
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
            entry["sha256"] = digest.hexdigest()
    else:
        entry["kind"] = "missing"
    return entry


def run_record(
    *,
    config: Any = None,
    seed: int | None = None,
    inputs: Iterable[str | os.PathLike] = (),
    warnings: Sequence[str] = (),
    started: float | None = None,
    argv: Sequence[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The record of a run; `started` (time.perf_counter() at the start) gives wall_seconds."""
    record: dict[str, Any] = {
        "command": command(argv),
        "config": config,
        "seed": seed,
        "versions": versions(),
        "inputs": [describe_input(p) for p in inputs],
        "warnings": [str(w) for w in warnings],
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
    }
    if started is not None:
        record["wall_seconds"] = round(time.perf_counter() - started, 3)
    record.update(extra)
    return record


def write_record(path: str | os.PathLike, record: Mapping[str, Any]) -> Path:
    """Write a record atomically: YAML for .yaml/.yml, else JSON."""
    path = Path(path)
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        text = yaml.safe_dump(_plain(record), sort_keys=False)
    else:
        text = json.dumps(_plain(record), indent=1) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


def _plain(value: Any) -> Any:
    """Plain YAML/JSON data: numpy scalars to numbers, tuples to lists, paths to strings."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    return str(value)
