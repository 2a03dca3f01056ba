"""What a run shows on the terminal: a progress bar only on a terminal, warnings as one line.

The one progress policy of the CLI (docs/cli.md): `--progress` draws a bar, `--no-progress`
none, and without either a bar is drawn only when stderr is a terminal, so a log file or a pipe
gets plain lines. Bars and warnings go to stderr; stdout holds results. Lightning's banners
("GPU available", TPU/HPU lines, tips) and deprecation notices are not for the user and are
silenced while a trainer runs.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from collections.abc import Iterator

LIGHTNING_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning")
QUIET_CATEGORIES = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)
LIGHTNING_NOISE = (  # Lightning's remarks on how densitydiff set it up, not on the user's run
    r".*is deprecated.*",
    r".*does not have many workers.*",
    r".*defined a `validation_step` but have no `val_dataloader`.*",
    r".*smaller than the logging interval.*",
    r".*Checkpoint directory .* exists and is not empty.*",
    r".*`IterableDataset` has `__len__` defined.*",  # hetero's chunked loader, num_workers 0
)


def show_progress(progress: bool | None, stream=None) -> bool:
    """The user's --progress/--no-progress, or (None) whether `stream` (stderr) is a terminal."""
    if progress is not None:
        return bool(progress)
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or not a file
        return False


def warning_line(message, category, filename=None, lineno=None, file=None, line=None) -> None:
    """`warnings.showwarning` as one `warning: ...` line on stderr, without the source line."""
    text = " ".join(str(message).split())
    print(f"warning: {text}", file=sys.stderr if file is None else file)


@contextlib.contextmanager
def one_line_warnings() -> Iterator[None]:
    """Within the block, warnings print as `warning: ...` lines (the CLI wraps every command)."""
    previous = warnings.showwarning
    warnings.showwarning = warning_line
    try:
        yield
    finally:
        warnings.showwarning = previous


@contextlib.contextmanager
def quiet_lightning() -> Iterator[None]:
    """Silence Lightning's info banners and deprecation notices while a trainer runs.

    Its INFO messages (devices found, tips, "`Trainer.fit` stopped") go through the `lightning`
    loggers, raised to WARNING here; deprecations come from versions of the libraries, not from
    what the user asked, so they are dropped. Real warnings still print (as one line).
    """
    levels = {}
    for name in LIGHTNING_LOGGERS:
        log = logging.getLogger(name)
        levels[name] = log.level
        log.setLevel(logging.WARNING)
    with warnings.catch_warnings():
        for category in QUIET_CATEGORIES:
            warnings.filterwarnings("ignore", category=category)
        for message in LIGHTNING_NOISE:
            warnings.filterwarnings("ignore", message=message)
        try:  # Lightning's advice to tune its own settings ("does not have many workers", ...)
            from lightning.fabric.utilities.warnings import PossibleUserWarning

            warnings.filterwarnings("ignore", category=PossibleUserWarning)
        except ImportError:
            pass
        try:
            yield
        finally:
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)


def lightning_progress_bar(progress: bool):
    """Lightning's bar drawn on stderr (rich if installed, else tqdm), or None for no bar."""
    if not progress:
        return None
    import importlib.util

    if importlib.util.find_spec("rich") is not None:
        from lightning.pytorch.callbacks import RichProgressBar

        return RichProgressBar(console_kwargs={"stderr": True})
    from lightning.pytorch.callbacks import TQDMProgressBar

    return TQDMProgressBar()


def human_bytes(n: int | float) -> str:
    """A size as people read it: 512 B, 12.3 kB, 4.5 MB, 1.2 GB (powers of 1000, as `ls --si`)."""
    n = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """'1 tile', '3 tiles' (`nouns` for an irregular plural)."""
    return f"{count} {noun if count == 1 else (nouns or noun + 's')}"


def decimal(value: float, places: int = 4) -> str:
    """At most `places` decimals, trailing zeros stripped: 1.7419999837875366 -> 1.742."""
    text = f"{float(value):.{places}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
