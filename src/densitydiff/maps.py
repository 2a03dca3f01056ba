"""`DensityMap`, the one currency between layers (files are read and written in `formats/maps`).

Axis order everywhere is the array's: (z, y, x). `voxel_size` and `origin` follow it, so the
position in Å of voxel (k, j, i) is `origin + (k, j, i) * voxel_size`. Printing helpers give
(x, y, z) as ChimeraX shows them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from densitydiff.errors import InputError


def voxel_triple(voxel_size, name: str = "voxel_size") -> tuple[float, float, float]:
    """A voxel size as (z, y, x) Å, each positive and finite; one number applies to all axes.

    The one check of voxel (and pixel) sizes; InputError names `name` and the value given.
    """
    try:
        v = np.broadcast_to(np.asarray(voxel_size, dtype=float), (3,))
    except (TypeError, ValueError):
        raise InputError(
            f"{name} must be a number or a (z, y, x) triple, got {voxel_size!r}"
        ) from None
    if not np.all(np.isfinite(v)) or np.any(v <= 0):
        raise InputError(f"{name} must be positive and finite, got {voxel_size!r}")
    return (float(v[0]), float(v[1]), float(v[2]))


def _triple(value, name: str) -> tuple[float, float, float]:
    arr = np.broadcast_to(np.asarray(value, dtype=float), (3,))
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name} must be finite, got {value!r}")
    return (float(arr[0]), float(arr[1]), float(arr[2]))


@dataclass
class DensityMap:
    """A 3-D map: `array` (z, y, x) float32, `voxel_size` (Å, per axis, z y x), `origin` (Å, z y x).

    `unit_cell` is set for crystallographic maps (a, b, c, alpha, beta, gamma) and kept on write.
    Then the array's (z, y, x) axes are the cell's (c, b, a) axes; for a non-orthogonal cell
    they are not Cartesian (see `is_orthogonal`, `require_orthogonal`).
    `header` is the source file's header (an MRC header record from `formats.mrc`), carried by
    `with_array` so an output on the input's grid is written with the input's header (nstart,
    axis order, space group, cell, labels), as viewers that read either convention expect.
    """

    array: np.ndarray
    voxel_size: tuple[float, float, float] = (1.0, 1.0, 1.0)
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    unit_cell: tuple[float, ...] | None = field(default=None)
    header: object | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        array = np.asarray(self.array)
        if array.ndim != 3:
            raise InputError(f"a density map must be 3-D, got shape {array.shape}")
        self.array = np.ascontiguousarray(array, dtype=np.float32)
        self.voxel_size = voxel_triple(self.voxel_size)
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
    def is_orthogonal(self) -> bool:
        """True unless the map lies on a unit cell with an angle other than 90 degrees."""
        if self.unit_cell is None:
            return True
        return bool(np.allclose(self.unit_cell[3:6], 90.0, atol=1e-3))

    @property
    def is_cubic(self) -> bool:
        return len(set(self.shape)) == 1

    @property
    def extent(self) -> tuple[float, float, float]:
        """Box edges in Å (z, y, x)."""
        return tuple(float(n * v) for n, v in zip(self.shape, self.voxel_size))  # type: ignore

    def with_array(self, array: np.ndarray) -> DensityMap:
        """A map on this grid (same voxel size, origin, cell and source header) holding `array`."""
        if array.shape != self.shape:
            raise InputError(f"array shape {array.shape} does not match the grid {self.shape}")
        return DensityMap(array, self.voxel_size, self.origin, self.unit_cell, self.header)

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

    def require_orthogonal(self, what: str = "this operation") -> None:
        """Raise a clear error when the grid axes are skewed cell axes (non-orthogonal cell)."""
        if not self.is_orthogonal:
            raise InputError(
                f"{what} needs orthogonal axes, this map lies on the non-orthogonal cell "
                f"{self.unit_cell} (axes are the cell axes c, b, a); interpolate it onto an "
                "orthogonal box first (e.g. gemmi)"
            )
