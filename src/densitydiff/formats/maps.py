"""Reading and writing maps by file extension: MRC/CCP4 (.mrc .map .ccp4 .mrcs, .gz) and MTZ."""

from __future__ import annotations

import os
from pathlib import Path

from densitydiff.errors import InputError
from densitydiff.maps import DensityMap

MAP_SUFFIXES = (".mrc", ".map", ".ccp4", ".mrcs")
READABLE_SUFFIXES = (*MAP_SUFFIXES, ".mtz")


def _suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def read_map(
    path: str | os.PathLike,
    *,
    f: str | None = None,
    phi: str | None = None,
    sample_rate: float | None = None,
    voxel_size: float | tuple[float, float, float] | None = None,
) -> DensityMap:
    """Read an MRC/CCP4 map (.mrc .map .ccp4 .mrcs, optionally .gz), or a map from an MTZ.

    The keywords apply to MTZ files only (amplitude/phase columns, default FWT/PHWT, and the
    sampling; see `densitydiff.formats.mtz.read_mtz_map`).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    suffix = _suffix(path)
    options = {"f": f, "phi": phi, "sample_rate": sample_rate, "voxel_size": voxel_size}
    options = {key: value for key, value in options.items() if value is not None}
    if suffix == ".mtz":
        from densitydiff.formats.mtz import read_mtz_map

        return read_mtz_map(path, **options)
    if options:
        raise InputError(f"{path}: {sorted(options)} apply to MTZ files only")
    if suffix not in MAP_SUFFIXES:
        raise InputError(
            f"{path}: unknown map format {suffix!r}; expected one of {READABLE_SUFFIXES}"
        )
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


def read_volume(path: str | os.PathLike) -> DensityMap:
    """`read_map` for commands that need a 3-D map: an image stack (.mrcs, or the stack flag in
    the header) is refused instead of being read as a volume of images."""
    path = Path(path)
    if path.is_file() and _suffix(path) in MAP_SUFFIXES:
        from densitydiff.formats.mrc import stack_size

        n = stack_size(path)
        if n is not None:
            raise InputError(
                f"{path}: is a stack of {n} 2-D images (.mrcs or image-stack header), not a 3-D map"
            )
    return read_map(path)
