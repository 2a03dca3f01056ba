"""`densitydiff simulate ...`: maps from atomic models, and cryo-EM particle data sets."""

from __future__ import annotations

from pathlib import Path

import typer

from densitydiff.cli import particles as _particles
from densitydiff.cli.options import (
    fix_elements_option,
    legacy,
    out_option,
    pick,
    strict_elements_option,
)

simulate_app = typer.Typer(
    help="Simulate data from atomic models.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@simulate_app.command("map")
def simulate_map_command(
    model: Path = typer.Argument(..., help="Atomic model (PDB/mmCIF, optionally .gz)."),
    out: Path = out_option("Output map (.mrc, .map, .ccp4), required; OUT.json beside it."),
    output_legacy: Path = legacy("--output"),
    resolution: float = typer.Option(..., "--resolution", "-r", help="Resolution in Å."),
    voxel_size: float = typer.Option(1.0, "--voxel-size", help="Voxel size in Å."),
    padding: float = typer.Option(10.0, "--padding", help="Box margin around the atoms (Å)."),
    like: Path | None = typer.Option(None, "--like", help="Simulate on this map's grid."),
    scattering: str = typer.Option("electron", "--scattering", help="electron | xray"),
    fix_elements: bool = fix_elements_option(),
    strict_elements: bool = strict_elements_option(),
) -> None:
    """Density of an atomic model band-limited to a resolution (see docs/simulate.md).

    Writes OUT and its run record OUT.json beside it (command, settings, versions, inputs).

    Example: densitydiff simulate map 3mfp.pdb.gz -o 3mfp_4A.mrc --resolution 4
    """
    import time

    start = time.perf_counter()
    from densitydiff.errors import InputError
    from densitydiff.formats.maps import read_volume, write_map
    from densitydiff.outputs import check_record_path
    from densitydiff.simulate.density import simulate_map
    from densitydiff.structures import inferred_elements, read_structure

    output = pick(out, output_legacy, "-o/--out", "--output", required=True)
    check_record_path(output.with_suffix(".json"))  # the run record goes beside the map
    grid = read_volume(like) if like is not None else None
    voxel = max(grid.voxel_size) if grid is not None else voxel_size
    if resolution > 0 and voxel > 0 and resolution < 2 * voxel * (1 - 1e-6):
        raise InputError(
            f"--resolution {resolution} Å is finer than the grid can hold: Nyquist of "
            f"{voxel} Å voxels is {2 * voxel:g} Å (use a smaller --voxel-size)"
        )
    structure = read_structure(
        model, fix_elements=fix_elements, strict_elements=strict_elements
    )
    density = simulate_map(
        structure,
        resolution,
        grid.voxel_size if grid is not None else voxel_size,
        padding=padding,
        like=grid,
        scattering=scattering,
    )
    if grid is not None:
        density = grid.with_array(density.array)  # on --like's grid: keep its header too
    from densitydiff.runrecord import run_record, write_record

    settings = dict(resolution=resolution, voxel_size=float(density.voxel_size[0]),
                    padding=padding, like=like, scattering=scattering, fix_elements=fix_elements,
                    strict_elements=strict_elements,
                    elements_inferred=inferred_elements(structure))  # fmt: skip
    inputs = [model] + ([like] if like is not None else [])
    write_record(output.with_suffix(".json"),
                 run_record(config=settings, inputs=inputs, started=start, output=str(output)))
    write_map(output, density)  # last: a map on disk always has its record beside it
    print(f"wrote {output}: {density.shape[::-1]} voxels (x, y, z) at {density.voxel_size[0]} Å")


_particles.register(simulate_app)


def register(app: typer.Typer) -> None:
    app.add_typer(simulate_app, name="simulate")
