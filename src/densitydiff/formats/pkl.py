"""Restricted unpickling for cryoDRGN's .pkl files: numpy arrays, tuples, lists, dicts, numbers.

Pickles are code. This loader refuses any global other than numpy's array reconstruction
helpers, so a pickle that would call os.system (or anything else) raises `InputError`.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from densitydiff.errors import InputError
from densitydiff.outputs import atomic_path

_ALLOWED = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("builtins", "slice"),
    ("collections", "OrderedDict"),
    ("_codecs", "encode"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")


def load_pickles(path: str | os.PathLike, max_objects: int = 16) -> list[Any]:
    """Load every pickle stored back to back in `path` (cryoDRGN's z.pkl holds two)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    data = path.read_bytes()
    stream = io.BytesIO(data)
    objects: list[Any] = []
    while stream.tell() < len(data) and len(objects) < max_objects:
        try:
            objects.append(_RestrictedUnpickler(stream).load())
        except pickle.UnpicklingError as err:
            raise InputError(f"{path}: unsafe or corrupt pickle ({err})") from None
        except (EOFError, ValueError, TypeError, AttributeError, IndexError) as err:
            if objects:
                break
            raise InputError(f"{path}: not a readable pickle ({err})") from None
    if not objects:
        raise InputError(f"{path}: empty pickle file")
    return objects


def load_pickle(path: str | os.PathLike) -> Any:
    """Load the first pickle in `path` through the restricted unpickler."""
    return load_pickles(path)[0]


def save_pickles(path: str | os.PathLike, *objects: Any) -> None:
    """Write `objects` as back-to-back pickles (cryoDRGN's layout), atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        for obj in objects:
            pickle.dump(_plain(obj), fh, protocol=4)


def _plain(obj: Any) -> Any:
    """Convert torch tensors to numpy so the file loads without torch."""
    if hasattr(obj, "detach") and hasattr(obj, "cpu"):
        return obj.detach().cpu().numpy()
    if isinstance(obj, tuple):
        return tuple(_plain(o) for o in obj)
    if isinstance(obj, list):
        return [_plain(o) for o in obj]
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, np.generic):
        return obj.item()
    return obj
