"""Optional dependencies (pyproject extras) checked before a command starts any work.

Without this, a missing package shows up late (`simulate particles` once simulated everything
and then failed at the star file). `require("train")` fails at once with one line naming the
`pip install 'densitydiff[train]'` that fixes it. The base install (no extras) sharpens,
evaluates, simulates and samples priors; training and the zarr store need extras.
"""

from __future__ import annotations

import importlib.util
import sys

from densitydiff.errors import InputError

# the modules each extra of pyproject.toml provides (keep in step with [optional-dependencies])
EXTRAS: dict[str, tuple[str, ...]] = {
    "train": ("lightning",),
    "data": ("zarr", "numcodecs"),
    "formats": ("starfile",),
}


def missing_module(name: str) -> bool:
    """True when `import name` would fail: not installed, or blocked (sys.modules[name] = None)."""
    if name in sys.modules:
        return sys.modules[name] is None
    try:
        return importlib.util.find_spec(name) is None
    except (ImportError, ValueError):
        return True


def require(*extras: str, what: str = "this command") -> None:
    """Raise InputError naming the pip command when a module of one of `extras` is missing."""
    for extra in extras:
        missing = [m for m in EXTRAS[extra] if missing_module(m)]
        if missing:
            raise InputError(
                f"{what} needs {', '.join(missing)}, which is not installed: "
                f"pip install 'densitydiff[{extra}]'"
            )
