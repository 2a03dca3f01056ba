"""Maps from MTZ structure-factor files: FFT of named amplitude/phase columns with gemmi.

The map covers the full unit cell on a grid along the cell axes a, b, c: the array's (z, y, x)
axes are (c, b, a), voxel_size = edge / grid points, origin 0 and `unit_cell` set. For a
non-orthogonal cell (e.g. monoclinic) those axes are skewed, not Cartesian: the grid holds the
cell exactly, and `DensityMap.require_orthogonal` stops operations that need Cartesian axes.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from densitydiff.errors import InputError
from densitydiff.maps import DensityMap, voxel_triple


def _column(mtz, label: str, kind: str, path: Path):
    column = mtz.column_with_label(label)
    if column is None:
        labels = ", ".join(mtz.column_labels())
        raise InputError(f"{path}: no column {label!r} in the MTZ; it has {labels}")
    if column.type != kind:
        wanted = {"F": "amplitude (type F)", "P": "phase (type P)"}[kind]
        raise InputError(f"{path}: column {label!r} is of type {column.type}, not {wanted}")
    return column


def read_mtz_map(
    path: str | Path,
    f: str = "FWT",
    phi: str = "PHWT",
    sample_rate: float = 3.0,
    voxel_size: float | tuple[float, float, float] | None = None,
) -> DensityMap:
    """Fourier-transform columns `f`/`phi` of an MTZ into a unit-cell map (see module docstring).

    Sampling: `sample_rate` grid points per d_min (gemmi's rule; 3 gives d_min / 3 voxels),
    or, when `voxel_size` (Å, float or z y x) is given, the smallest FFT-friendly,
    symmetry-compatible grid whose spacing is at most `voxel_size` along each axis.
    """
    import gemmi

    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    try:
        mtz = gemmi.read_mtz_file(str(path))
    except (RuntimeError, ValueError, OSError, MemoryError) as err:
        message = " ".join(str(err).split())
        raise InputError(f"{path}: not a readable MTZ file ({message})") from None
    if mtz.nreflections == 0:
        raise InputError(f"{path}: the MTZ holds no reflections")
    _column(mtz, f, "F", path)
    _column(mtz, phi, "P", path)
    cell = mtz.cell
    edges = np.array([cell.a, cell.b, cell.c])
    try:
        if voxel_size is None:
            if not (math.isfinite(sample_rate) and sample_rate >= 1.0):
                raise InputError(f"sample_rate must be >= 1 (Nyquist), got {sample_rate}")
            grid = mtz.transform_f_phi_to_map(f, phi, sample_rate=float(sample_rate))
        else:
            wanted = np.array(voxel_triple(voxel_size))[::-1]  # x y z
            minimal = np.array(mtz.get_size_for_hkl())  # holds every reflection
            needed = np.ceil(edges / wanted - 1e-6).astype(int)
            if np.any(needed < minimal):
                coarsest = tuple(float(v) for v in (edges / minimal)[::-1])
                raise InputError(
                    f"{path}: voxel size {voxel_size} Å is too coarse for the data (d_min "
                    f"{mtz.resolution_high():.2f} Å); use at most {coarsest} Å (z, y, x) "
                    "and low-pass the map afterwards"
                )
            size = mtz.get_size_for_hkl(min_size=[int(n) for n in needed])
            grid = mtz.transform_f_phi_to_map(f, phi, exact_size=size)
    except RuntimeError as err:
        message = " ".join(str(err).split())
        raise InputError(f"{path}: cannot compute a map from {f}/{phi} ({message})") from None
    array = np.array(grid, dtype=np.float32, copy=True).transpose(2, 1, 0)  # (a,b,c) -> (c,b,a)
    if not np.all(np.isfinite(array)):
        raise InputError(f"{path}: columns {f}/{phi} hold NaN or infinite values")
    voxel_xyz = edges / np.array([grid.nu, grid.nv, grid.nw])
    unit_cell = (cell.a, cell.b, cell.c, cell.alpha, cell.beta, cell.gamma)
    return DensityMap(array, voxel_xyz[::-1], (0.0, 0.0, 0.0), unit_cell)
