"""MRC2014 / CCP4 maps through mrcfile, keeping voxel size, origin and axis order.

Origin follows ChimeraX: the MRC2014 ORIGIN field when it is non-zero, otherwise
nstart * voxel size. Axis order: the file's MAPC/MAPR/MAPS are undone so arrays are (z, y, x).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from densitydiff.atomic import atomic_path
from densitydiff.errors import InputError
from densitydiff.maps import DensityMap


def read_mrc(path: str | Path) -> DensityMap:
    """Read one MRC/CCP4 file (gzip detected by mrcfile) into a `DensityMap`."""
    import mrcfile

    path = Path(path)
    try:
        with mrcfile.open(path, mode="r", permissive=False) as mrc:
            header = mrc.header
            data = np.asarray(mrc.data)
            voxel_xyz = np.array(
                [mrc.voxel_size.x, mrc.voxel_size.y, mrc.voxel_size.z], dtype=float
            )
            axes_crs = (int(header.mapc), int(header.mapr), int(header.maps))
            nstart_crs = (int(header.nxstart), int(header.nystart), int(header.nzstart))
            origin_field = np.array(
                [header.origin.x, header.origin.y, header.origin.z], dtype=float
            )
            cell = tuple(float(v) for v in header.cella.tolist()) + tuple(
                float(v) for v in header.cellb.tolist()
            )
            space_group = int(header.ispg)
    except (ValueError, OSError, EOFError) as err:
        raise InputError(f"{path}: not a readable MRC/CCP4 map ({err})") from None
    if data is None or data.ndim not in (2, 3):
        shape = getattr(data, "shape", None)
        raise InputError(f"{path}: expected a 3-D map, got data of shape {shape}")
    if data.ndim == 2:
        data = data[None]
    if sorted(axes_crs) != [1, 2, 3]:
        raise InputError(f"{path}: invalid axis order MAPC/MAPR/MAPS = {axes_crs}")
    # data axes are (section, row, column); the spatial axis of each is (maps, mapr, mapc).
    spatial = (axes_crs[2], axes_crs[1], axes_crs[0])
    perm = [spatial.index(3), spatial.index(2), spatial.index(1)]
    array = np.transpose(data, perm).astype(np.float32)
    if not np.all(np.isfinite(array)):
        raise InputError(f"{path}: the map contains NaN or infinite values")
    nstart_xyz = np.zeros(3)
    for start, axis in zip(nstart_crs, axes_crs):
        nstart_xyz[axis - 1] = start
    if np.any(voxel_xyz <= 0):
        voxel_xyz = np.ones(3)
    origin_xyz = origin_field if np.any(origin_field != 0) else nstart_xyz * voxel_xyz
    unit_cell = cell if space_group >= 1 else None
    return DensityMap(array, voxel_xyz[::-1], origin_xyz[::-1], unit_cell)


def write_mrc(path: str | Path, density: DensityMap) -> None:
    """Write MRC2014, float32, MAPC/MAPR/MAPS = 1/2/3, ORIGIN set and nstart 0; atomically."""
    import mrcfile

    path = Path(path)
    compression = "gzip" if path.suffix.lower() == ".gz" else None
    is_stack = path.name.lower().removesuffix(".gz").endswith(".mrcs")
    with atomic_path(path) as tmp:
        with mrcfile.new(tmp, overwrite=True, compression=compression) as mrc:
            mrc.set_data(density.array.astype(np.float32, copy=False))
            if is_stack:
                mrc.set_image_stack()
            vz, vy, vx = density.voxel_size
            mrc.voxel_size = (vx, vy, vz)
            oz, oy, ox = density.origin
            mrc.header.origin = (ox, oy, oz)
            mrc.header.nxstart = mrc.header.nystart = mrc.header.nzstart = 0
            mrc.update_header_stats()
