"""Training data: a chunked zarr store of aligned multi-resolution patches, and its Dataset.

`PatchDataset` is imported on first use (it needs torch); the store modules need numpy and
gemmi only. Modules: `layout` (on disk), `splits`, `build`, `dataset`, `patches`, `augment`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from densitydiff.data.augment import CubeSymmetry, apply_symmetry, cube_symmetries
from densitydiff.data.build import BuildConfig, build_store, merge_stores
from densitydiff.data.layout import store_info

if TYPE_CHECKING:
    from densitydiff.data.dataset import PatchDataset

__all__ = [
    "BuildConfig",
    "CubeSymmetry",
    "PatchDataset",
    "apply_symmetry",
    "build_store",
    "cube_symmetries",
    "merge_stores",
    "store_info",
]


def __getattr__(name: str):
    if name == "PatchDataset":
        from densitydiff.data.dataset import PatchDataset

        return PatchDataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
