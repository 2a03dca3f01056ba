"""Outputs that appear whole or not at all: written under a temporary name, then renamed.

Files go through `atomic_path`, folders through `atomic_dir`; `output_lock` keeps a second run
from writing the same output at the same time (it refuses at once instead of mixing results).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from densitydiff.errors import InputError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def make_parent(path: str | os.PathLike) -> Path:
    """Create the folder that will hold `path` (a missing folder is made, as `mkdir -p` does).

    Raises InputError when a file stands where a folder is needed, e.g. `-o map.mrc/out.mrc`.
    """
    path = Path(path)
    for folder in (path.parent, *path.parent.parents):
        if folder.exists() or folder.is_symlink():
            if not folder.is_dir():
                raise InputError(f"cannot write {path}: {folder} is a file, not a folder")
            break
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.parent


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it onto `path`, else delete it.

    The temporary name keeps the final suffix (e.g. `.mrc`, `.gz`) so writers that choose a
    format by extension still do the right thing.
    """
    path = Path(path)
    make_parent(path)
    if path.is_dir():
        raise InputError(f"cannot write {path}: it is a folder")
    suffix = suffix if suffix is not None else "".join(path.suffixes[-2:]) or ".tmp"
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    except OSError as err:  # name the file the user asked for, not our temporary one
        raise InputError(f"cannot write {path}: {err.strerror or err}") from None
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual mode
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def lock_path(path: str | os.PathLike) -> Path:
    """The lock file of an output: `.NAME.lock` beside it."""
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


@contextlib.contextmanager
def output_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on the output `path` for a run; a second run refuses at once.

    `flock` on `.NAME.lock` beside the output: the kernel drops it when the process dies (even
    by SIGKILL), so a killed run never blocks the next one. The file is removed on exit.
    """
    path = Path(path)
    lock = lock_path(path)
    make_parent(lock)
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666 & ~_umask())
        except OSError as err:  # name the output the user asked for, not our lock file
            raise InputError(f"cannot write {path}: {err.strerror or err}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise InputError(
                f"{path} is being written by another run (lock {lock}); wait for it to finish "
                "or choose another output"
            ) from None
        try:  # the run before us may have removed the lock file after we opened it
            current = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            current = False
        if current:
            break
        os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)
        os.close(fd)


def check_output_dir(path: str | os.PathLike, marker: str) -> Path:
    """Refuse an output folder that `atomic_dir` must not replace; return it as a Path.

    Replaceable: nothing there, an empty folder, or a complete earlier output of the same
    command (it holds `marker`). A file, or a folder of other things, is refused, so a typo in
    `-o` never deletes someone's data.
    """
    path = Path(path)
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise InputError(f"output folder {path} exists and is not a folder")
    if path.is_dir() and any(path.iterdir()) and not (path / marker).exists():
        raise InputError(
            f"output folder {path} holds other files (no {marker}); choose a new or empty folder"
        )
    make_parent(path)
    return path


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, marker: str) -> Iterator[Path]:
    """Yield an empty temporary folder beside `path`; on success it replaces `path` whole.

    The caller writes everything, `marker` (the record that says the output is complete) last.
    On an error or a kill nothing changes at `path`; a killed run's `.NAME.partial` is cleared
    by the next run. Held under `output_lock(path)`; `path` is checked by `check_output_dir`.
    """
    path = check_output_dir(path, marker)
    with output_lock(path):
        check_output_dir(path, marker)
        tmp = path.with_name(f".{path.name}.partial")
        shutil.rmtree(tmp, ignore_errors=True)  # leftovers of a killed run: we hold the lock
        tmp.mkdir()
        try:
            yield tmp
            if not (tmp / marker).exists():
                raise RuntimeError(f"{path}: the writer did not write {marker}")
            _replace_dir(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def _replace_dir(new: Path, path: Path) -> None:
    """Rename `new` onto `path`; an old `path` is moved aside first and then deleted.

    Between the two renames `path` is absent, never half-written.
    """
    if not path.exists():
        os.rename(new, path)
        return
    old = path.with_name(f".{path.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    os.rename(path, old)
    os.rename(new, path)
    shutil.rmtree(old, ignore_errors=True)


def check_record_path(path: str | os.PathLike) -> None:
    """A run record (OUT.json beside OUT) may replace an earlier record, never another file.

    Records (densitydiff.runrecord) are JSON objects with "command" and "versions"; anything
    else at that path, e.g. the user's own notes.json, is refused before any work.
    """
    import json

    path = Path(path)
    if not path.exists():
        return
    try:
        record = json.loads(path.read_text())
        ours = isinstance(record, dict) and {"command", "versions"} <= set(record)
    except (OSError, UnicodeDecodeError, ValueError):
        ours = False
    if not ours:
        raise InputError(
            f"{path} exists and is not a densitydiff run record; the record of this run would "
            "overwrite it (choose another output name or move the file)"
        )


def atomic_checkpoint_io():
    """A Lightning CheckpointIO that writes via temp file + os.replace in the checkpoint's folder.

    Lightning's default `_atomic_save` goes through an fsspec transaction whose local temp
    file lives in the system temp dir; committing it is `shutil.move`, a copy (not atomic)
    when the run directory is on another filesystem, as on clusters.
    """
    import torch
    from lightning.pytorch.plugins.io import TorchCheckpointIO

    class AtomicCheckpointIO(TorchCheckpointIO):
        def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
            with atomic_path(Path(path), suffix=".tmp") as tmp:
                torch.save(checkpoint, tmp)

    return AtomicCheckpointIO()
