"""Map commands: `info` (and, as the library grows, simulate / fsc / compare)."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def info(
    path: Path = typer.Argument(..., help="Map file (.mrc .map .ccp4 .mrcs, .gz, .mtz)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Shape, voxel size, origin (x, y, z as ChimeraX shows them) and statistics of a map.

    Example: densitydiff info emd_5168_monomer.mrc
    """
    from densitydiff.maps import read_map

    m = read_map(path)
    a = m.array
    record = {
        "path": str(path),
        "shape_xyz": list(m.shape[::-1]),
        "voxel_size_xyz": list(m.voxel_size[::-1]),
        "origin_xyz": list(m.origin[::-1]),
        "min": float(a.min()),
        "max": float(a.max()),
        "mean": float(a.mean()),
        "std": float(a.std()),
    }
    if m.unit_cell is not None:
        record["unit_cell"] = list(m.unit_cell)
    if as_json:
        print(json.dumps(record))
        return
    for key, value in record.items():
        print(f"{key:15s} {value}")


def register(app: typer.Typer) -> None:
    app.command("info")(info)
