"""MRC2014 / CCP4 maps through mrcfile (gemmi for crystallographic maps), keeping the geometry.

Geometry follows ChimeraX's MRC reader (map_data/mrc/mrc_format.py):
- axis order: the file's MAPC/MAPR/MAPS are undone, so arrays are (z, y, x); an invalid
  permutation is read as 1/2/3, as ChimeraX does;
- origin: the MRC2000/2014 ORIGIN field when it is non-zero and usable (finite, not so large that
  one voxel step vanishes in float32), otherwise nstart * voxel size with (NCSTART, NRSTART,
  NSSTART) mapped through MAPC/MAPR/MAPS; nstart values larger than 10x the grid are taken as
  uninitialised (origin 0). ChimeraX reads ORIGIN only for `.mrc` files; we read it for every
  extension and write both fields so they agree (see `write_mrc`);
- voxel size: cell edge / (MX, MY, MZ).
Crystallographic maps (space group 2-230 in ISPG) are expanded to the full unit cell by symmetry
with gemmi; cryo-EM maps (ISPG 0 or 1) are kept as stored.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from densitydiff.errors import InputError
from densitydiff.maps import DensityMap
from densitydiff.outputs import atomic_path


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _is_stack_name(path: Path) -> bool:
    return path.name.lower().removesuffix(".gz").endswith(".mrcs")


@contextlib.contextmanager
def quiet_mrcfile() -> Iterator[None]:
    """mrcfile's RuntimeWarnings about a bad header: dropped, its error (or ours) says it all."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def stack_size(path: str | Path) -> int | None:
    """Number of images when `path` is an image stack (.mrcs name or stack header), else None.

    Reads the header only; a file mrcfile cannot open is left to `read_mrc` to report.
    """
    import mrcfile

    path = Path(path)
    try:
        with quiet_mrcfile(), mrcfile.open(path, mode="r", permissive=True,
                                           header_only=True) as mrc:  # fmt: skip
            # space group 0 alone is no proof: EMDB maps carry it too (emd_5168); a stack
            # written to MRC2014 has one section per image (MZ = 1) over NZ > 1 images
            header = mrc.header
            flagged = int(header.ispg) == 0 and int(header.mz) == 1 and int(header.nz) > 1
            stack = flagged or _is_stack_name(path)
            return int(header.nz) if stack else None
    except (ValueError, OSError, EOFError, MemoryError):
        return None


def _axis_order(mapc: int, mapr: int, maps: int) -> tuple[int, int, int]:
    axes = (mapc, mapr, maps)
    return axes if sorted(axes) == [1, 2, 3] else (1, 2, 3)


def read_mrc(path: str | Path) -> DensityMap:
    """Read one MRC/CCP4 file (gzip detected from the content) into a `DensityMap`.

    The map carries a copy of the file's header (`DensityMap.header`) so that `write_mrc` can
    write an output on the same grid with the input's header unchanged.
    """
    import mrcfile

    path = Path(path)
    try:
        with quiet_mrcfile():
            mrc = mrcfile.open(path, mode="r", permissive=False)
    except (ValueError, OSError, EOFError, MemoryError) as err:
        raise InputError(f"{path}: not a readable MRC/CCP4 map ({_one_line(err)})") from None
    with mrc:
        header = mrc.header.copy()
        space_group = int(header.ispg)
        if 2 <= space_group <= 230:
            return read_crystallographic_ccp4(path)
        data = np.asarray(mrc.data)
        is_stack = bool(mrc.is_image_stack()) or _is_stack_name(path)
    if data.ndim == 2 and is_stack:
        data = data[None]
    if data.ndim == 2:
        raise InputError(
            f"{path}: is a 2-D image ({data.shape[0]} x {data.shape[1]}), not a 3-D map"
        )
    if data.ndim != 3:
        raise InputError(f"{path}: expected a 3-D map, got data of shape {data.shape}")
    if not np.all(np.isfinite(data)):
        bad = int(np.count_nonzero(~np.isfinite(data)))
        raise InputError(f"{path}: the map contains {bad} NaN or infinite values")
    try:
        perm, voxel_xyz, origin_xyz, unit_cell = _geometry(header, data.shape, is_stack)
    except InputError as err:
        raise InputError(f"{path}: {err}") from None
    array = np.transpose(data, perm).astype(np.float32)
    return DensityMap(array, voxel_xyz[::-1], origin_xyz[::-1], unit_cell, header)


def _geometry(header, data_shape: tuple[int, ...], is_stack: bool):
    """(axis permutation file -> (z, y, x), voxel size x y z, origin x y z, unit cell or None)."""
    axes_crs = _axis_order(int(header.mapc), int(header.mapr), int(header.maps))
    nstart_crs = (int(header.nxstart), int(header.nystart), int(header.nzstart))
    cell_edges = np.array([header.cella.x, header.cella.y, header.cella.z], float)
    angles = np.array([header.cellb.alpha, header.cellb.beta, header.cellb.gamma], float)
    origin_field = np.array([header.origin.x, header.origin.y, header.origin.z], np.float32)
    m_xyz = np.array([header.mx, header.my, header.mz], float)
    with np.errstate(divide="ignore", invalid="ignore"):
        voxel_xyz = cell_edges / m_xyz
    # data axes are (section, row, column); their spatial axes are (maps, mapr, mapc).
    spatial = (axes_crs[2], axes_crs[1], axes_crs[0])
    perm = [spatial.index(3), spatial.index(2), spatial.index(1)]
    shape_zyx = tuple(data_shape[i] for i in perm)
    if not np.all(np.isfinite(voxel_xyz)) or np.any(voxel_xyz <= 0):
        if not is_stack:  # a map without a voxel size would be mis-scaled silently
            raise InputError(
                f"the header gives voxel size {tuple(float(v) for v in voxel_xyz)} Å (x, y, z; "
                "cell / grid), which is not positive; set the voxel size in the header (e.g. "
                "ChimeraX: volume #1 voxelSize 1.0; save)"
            )
        voxel_xyz = np.ones(3)  # stacks often carry no cell: 1 Å, as ChimeraX does
    if is_stack:
        voxel_xyz[2] = voxel_xyz[0]  # a stack's third axis is the image index: pixel size
    origin_xyz = _origin_xyz(origin_field, nstart_crs, axes_crs, voxel_xyz, m_xyz, data_shape)
    unit_cell = None
    box_xyz = np.array(shape_zyx[::-1], float) * voxel_xyz
    if not is_stack and (
        not np.allclose(angles, 90.0, atol=1e-3)
        or (int(header.ispg) == 1 and not np.allclose(cell_edges, box_xyz, rtol=1e-4, atol=1e-3))
    ):
        unit_cell = tuple(float(v) for v in (*cell_edges, *angles))
    return perm, voxel_xyz, origin_xyz, unit_cell


def _xyz(zyx) -> str:
    """(z, y, x) values as '(x, y, z)', at most 4 decimals, as `densitydiff info` prints them."""
    from densitydiff.console import decimal

    return "(" + ", ".join(decimal(v) for v in zyx[::-1]) + ")"


def _origin_xyz(origin_field, nstart_crs, axes_crs, voxel_xyz, m_xyz, shape) -> np.ndarray:
    """ChimeraX's rule: ORIGIN if non-zero and usable, else nstart (through MAPC/R/S) * step."""
    step32 = voxel_xyz.astype(np.float32)
    usable = np.all(np.isfinite(origin_field)) and not np.any(origin_field + step32 == origin_field)
    if np.any(origin_field != 0) and usable:
        return origin_field.astype(float)
    nstart_xyz = np.zeros(3)
    for start, axis in zip(nstart_crs, axes_crs):
        nstart_xyz[axis - 1] = start
    if np.any(np.abs(nstart_xyz) > 10 * max(*m_xyz, *shape)):
        return np.zeros(3)  # uninitialised nstart
    return nstart_xyz * voxel_xyz


def read_crystallographic_ccp4(path: str | Path) -> DensityMap:
    """Expand a CCP4 map with space-group symmetry to the full unit cell (gemmi), axes a, b, c.

    The array's (z, y, x) axes are the cell's (c, b, a) axes, voxel size = edge / grid points,
    origin 0 and `unit_cell` set. For a non-orthogonal cell the axes are not Cartesian:
    (origin + index * voxel_size) / edges gives fractional coordinates, not Å positions.
    """
    import gemmi

    path = Path(path)
    try:
        ccp4 = gemmi.read_ccp4_map(str(path), setup=False)
        ccp4.setup(float("nan"), gemmi.MapSetup.Full)
    except (RuntimeError, ValueError, OSError, MemoryError) as err:
        raise InputError(f"{path}: not a readable CCP4 map ({_one_line(err)})") from None
    grid = ccp4.grid
    array = np.array(grid, dtype=np.float32, copy=True).transpose(2, 1, 0)  # (u,v,w) -> (w,v,u)
    missing = int(np.count_nonzero(np.isnan(array)))
    if missing:
        raise InputError(
            f"{path}: {missing} of {array.size} unit-cell grid points are not covered by the "
            "map or its symmetry mates (or the map holds NaN)"
        )
    if not np.all(np.isfinite(array)):
        raise InputError(f"{path}: the map contains infinite values")
    cell = grid.unit_cell
    edges = np.array([cell.a, cell.b, cell.c])
    voxel_xyz = edges / np.array([grid.nu, grid.nv, grid.nw])
    unit_cell = (cell.a, cell.b, cell.c, cell.alpha, cell.beta, cell.gamma)
    return DensityMap(array, voxel_xyz[::-1], (0.0, 0.0, 0.0), unit_cell)


def _cell_sampling(density: DensityMap) -> tuple[np.ndarray, np.ndarray] | None:
    """(cell edges a b c, grid points per edge) when the voxel size divides the cell, else None."""
    if density.unit_cell is None:
        return None
    edges = np.array(density.unit_cell[:3], float)
    n = edges / np.array(density.voxel_size[::-1])
    if np.allclose(n, np.round(n), atol=1e-3) and np.all(np.round(n) >= 1):
        return edges, np.round(n).astype(int)
    return None


# header fields that describe the data written, not the map's place: set from the new data
_DATA_FIELDS = ("nx", "ny", "nz", "mode", "dmin", "dmax", "dmean", "rms", "machst", "nsymbt")
_LABEL_LEN = 80


def _label() -> str:
    """The one label we add: which program wrote the file, and when (UTC), as CCP4 tools do."""
    import datetime

    from densitydiff import __version__

    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")
    return f"densitydiff {__version__} {stamp} UTC"[:_LABEL_LEN]


def _labels(header) -> list[bytes]:
    if header is None or "nlabl" not in getattr(header.dtype, "names", ()):
        return []
    n = int(header.nlabl)
    return [bytes(header.label[i]) for i in range(min(max(n, 0), 10))]


def _set_labels(mrc, old: list[bytes]) -> None:
    """The source's labels, then ours (replacing the last when all ten are used)."""
    labels = old[:9] + [_label().encode("ascii")]
    mrc.header.label = [lab[:_LABEL_LEN].ljust(_LABEL_LEN) for lab in labels] + [
        b" " * _LABEL_LEN
    ] * (10 - len(labels))
    mrc.header.nlabl = len(labels)


def _source_header(density: DensityMap, is_stack: bool):
    """The source header when it still describes `density`'s grid (else None)."""
    header = density.header
    if header is None or not hasattr(header, "dtype") or "mapc" not in header.dtype.names:
        return None
    if 2 <= int(header.ispg) <= 230:
        return None
    axes_crs = _axis_order(int(header.mapc), int(header.mapr), int(header.maps))
    spatial = (axes_crs[2], axes_crs[1], axes_crs[0])
    perm = [spatial.index(3), spatial.index(2), spatial.index(1)]
    file_shape = [0, 0, 0]
    for out_axis, file_axis in enumerate(perm):
        file_shape[file_axis] = density.shape[out_axis]
    source_stack = is_stack or int(header.ispg) == 0  # as read_mrc (mrcfile.is_image_stack)
    _, voxel_xyz, origin_xyz, unit_cell = _geometry(header, tuple(file_shape), source_stack)
    same = (
        np.allclose(voxel_xyz[::-1], density.voxel_size, rtol=1e-5, atol=1e-6)
        and np.allclose(origin_xyz[::-1], density.origin, rtol=1e-6, atol=1e-4)
        and unit_cell == density.unit_cell
        and (int(header.nz), int(header.ny), int(header.nx)) == tuple(file_shape)
    )
    return (header, perm) if same else None


def write_mrc(path: str | Path, density: DensityMap) -> None:
    """Write MRC2014 float32, atomically; `.gz` compresses; one densitydiff label is added.

    A map that carries its source header on an unchanged grid (`DensityMap.header`, kept by
    `with_array`) is written with that header as it was: nstart, ORIGIN, MAPC/MAPR/MAPS (the data
    in the source's axis order), ISPG, cell and labels, so every viewer places it where it placed
    the input. Otherwise MAPC/MAPR/MAPS = 1/2/3; ORIGIN holds the origin; nstart holds
    origin / voxel size too when that is a whole number, so ChimeraX (which ignores ORIGIN in
    .map/.ccp4 files) places the map the same way. `.mrcs` sets the image-stack flag. A
    `unit_cell` is kept (as a P1 cell) when the voxel size divides it.
    """
    import mrcfile

    path = Path(path)
    compression = "gzip" if path.suffix.lower() == ".gz" else None
    is_stack = _is_stack_name(path)
    source = _source_header(density, is_stack)
    if source is not None:
        header, perm = source
        file_data = np.transpose(density.array, np.argsort(perm)).astype(np.float32)
        with atomic_path(path) as tmp:
            with mrcfile.new(tmp, overwrite=True, compression=compression) as mrc:
                mrc.header.ispg = header.ispg  # before set_data: it decides stack or volume
                mrc.set_data(file_data)
                for name in header.dtype.names:
                    if name not in _DATA_FIELDS and name not in ("nlabl", "label"):
                        mrc.header[name] = header[name]
                mrc.header.exttyp = b"    "
                _set_labels(mrc, _labels(header))
                mrc.update_header_stats()
        return
    vz, vy, vx = density.voxel_size
    oz, oy, ox = density.origin
    ratio = np.array([ox / vx, oy / vy, oz / vz])
    whole = np.allclose(ratio, np.round(ratio), atol=1e-4) and np.all(np.abs(ratio) < 2**30)
    nstart = np.round(ratio).astype(int) if whole else np.zeros(3, int)
    sampling = None if is_stack else _cell_sampling(density)
    if density.unit_cell is not None and sampling is None and not density.is_orthogonal:
        raise InputError(
            f"{path}: cannot write a map on a non-orthogonal cell whose voxel size "
            f"{density.voxel_size} does not divide the cell {density.unit_cell}"
        )
    if not whole and path.name.lower().removesuffix(".gz").endswith((".map", ".ccp4")):
        warnings.warn(
            f"{path}: origin {_xyz(density.origin)} Å (x, y, z) is not a whole number of voxels; "
            "ChimeraX ignores ORIGIN in .map/.ccp4 files and will place this map at 0 "
            "(write .mrc instead)",
            stacklevel=3,
        )
    with atomic_path(path) as tmp:
        with mrcfile.new(tmp, overwrite=True, compression=compression) as mrc:
            mrc.set_data(density.array.astype(np.float32, copy=False))
            if is_stack:
                mrc.set_image_stack()
            if sampling is not None:
                edges, n = sampling
                mrc.header.mx, mrc.header.my, mrc.header.mz = (int(v) for v in n)
                mrc.header.cella = tuple(float(v) for v in edges)
                mrc.header.cellb = tuple(float(v) for v in density.unit_cell[3:6])
            else:
                mrc.voxel_size = (vx, vy, vz)
            mrc.header.origin = (ox, oy, oz)
            mrc.header.nxstart, mrc.header.nystart, mrc.header.nzstart = (int(v) for v in nstart)
            _set_labels(mrc, _labels(density.header))
            mrc.update_header_stats()
