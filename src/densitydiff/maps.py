"""`DensityMap`, the one currency between layers, and reading/writing maps by file extension.

Axis order everywhere is the array's: (z, y, x). `voxel_size` and `origin` follow it, so the
position in Å of voxel (k, j, i) is `origin + (k, j, i) * voxel_size`. Printing helpers give
(x, y, z) as ChimeraX shows them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from densitydiff.errors import InputError

MAP_SUFFIXES = (".mrc", ".map", ".ccp4", ".mrcs")


def _triple(value, name: str) -> tuple[float, float, float]:
    arr = np.broadcast_to(np.asarray(value, dtype=float), (3,))
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name} must be finite, got {value!r}")
    return (float(arr[0]), float(arr[1]), float(arr[2]))


@dataclass
class DensityMap:
    """A 3-D map: `array` (z, y, x) float32, `voxel_size` (Å, per axis, z y x), `origin` (Å, z y x).

    `unit_cell` is set for crystallographic maps (a, b, c, alpha, beta, gamma) and kept on write.
    """

    array: np.ndarray
    voxel_size: tuple[float, float, float] = (1.0, 1.0, 1.0)
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    unit_cell: tuple[float, ...] | None = field(default=None)

    def __post_init__(self) -> None:
        array = np.asarray(self.array)
        if array.ndim != 3:
            raise InputError(f"a density map must be 3-D, got shape {array.shape}")
        self.array = np.ascontiguousarray(array, dtype=np.float32)
        self.voxel_size = _triple(self.voxel_size, "voxel_size")
        if min(self.voxel_size) <= 0:
            raise InputError(f"voxel size must be positive, got {self.voxel_size}")
        self.origin = _triple(self.origin, "origin")

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.array.shape)  # type: ignore[return-value]

    @property
    def is_isotropic(self) -> bool:
        """True when all three voxel edges are equal (to 1e-4 relative)."""
        v = np.asarray(self.voxel_size)
        return bool(np.allclose(v, v[0], rtol=1e-4, atol=0))

    @property
    def is_cubic(self) -> bool:
        return len(set(self.shape)) == 1

    @property
    def extent(self) -> tuple[float, float, float]:
        """Box edges in Å (z, y, x)."""
        return tuple(float(n * v) for n, v in zip(self.shape, self.voxel_size))  # type: ignore

    def with_array(self, array: np.ndarray) -> DensityMap:
        """A map on this grid (same voxel size, origin and cell) holding `array`."""
        if array.shape != self.shape:
            raise InputError(f"array shape {array.shape} does not match the grid {self.shape}")
        return DensityMap(array, self.voxel_size, self.origin, self.unit_cell)

    def same_grid(self, other: DensityMap, atol: float = 1e-3) -> bool:
        """True when both maps have the same shape, voxel size and origin (to `atol` Å)."""
        return (
            self.shape == other.shape
            and np.allclose(self.voxel_size, other.voxel_size, atol=atol, rtol=0)
            and np.allclose(self.origin, other.origin, atol=atol, rtol=0)
        )

    def require_isotropic(self, what: str = "this operation") -> float:
        """Return the voxel size, or raise a clear error when voxels are anisotropic."""
        if not self.is_isotropic:
            raise InputError(
                f"{what} needs isotropic voxels, this map has {self.voxel_size} Å (z, y, x); "
                "resample it first (densitydiff.filters.resample)"
            )
        return self.voxel_size[0]


def _suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def read_map(path: str | os.PathLike) -> DensityMap:
    """Read an MRC/CCP4 map (.mrc .map .ccp4 .mrcs, optionally .gz), or an MTZ's FWT/PHWT map."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    suffix = _suffix(path)
    if suffix == ".mtz":
        from densitydiff.formats.mtz import read_mtz_map

        return read_mtz_map(path)
    if suffix not in MAP_SUFFIXES:
        raise InputError(f"{path}: unknown map format {suffix!r}; expected one of {MAP_SUFFIXES}")
    from densitydiff.formats.mrc import read_mrc

    return read_mrc(path)


def write_map(path: str | os.PathLike, density: DensityMap) -> Path:
    """Write `density` as MRC2014 (by extension; .gz compresses), atomically; returns the path."""
    path = Path(path)
    suffix = _suffix(path)
    if suffix not in MAP_SUFFIXES:
        raise InputError(f"{path}: cannot write map format {suffix!r}; use one of {MAP_SUFFIXES}")
    from densitydiff.formats.mrc import write_mrc

    write_mrc(path, density)
    return path
