"""`densitydiff simulate particles`: a synthetic heterogeneous cryo-EM data set, ground truth."""

from __future__ import annotations

from pathlib import Path

import typer

from densitydiff.cli.options import (
    device_option,
    fix_elements_option,
    legacy,
    out_option,
    pick,
    progress_option,
    set_threads,
    strict_elements_option,
    threads_option,
)


def _split(values: list[str] | None) -> list[str]:
    """Repeated options and comma-separated lists both work: -s A -s B, -s A,B."""
    out: list[str] = []
    for v in values or []:
        out.extend(p for p in str(v).split(",") if p.strip())
    return out


def particles(
    more_structures: list[str] | None = typer.Argument(
        None, metavar="[MODELS]...", help="With --structures: further models (--structures A B C)."
    ),
    out: Path = out_option("Output directory (dataset.json, particles, ground truth), required."),
    output_legacy: Path = legacy("--output"),
    n_images: int = typer.Option(..., "--n-images", help="Number of particle images."),
    box: int = typer.Option(..., "--box", help="Image size D in pixels (even)."),
    pixel_size: float = typer.Option(..., "--pixel-size", help="Pixel size in Å."),
    snr: float = typer.Option(
        0.1, "--snr", help="Signal variance / noise variance (whole box; 'inf' for no noise)."
    ),
    defocus: tuple[float, float] = typer.Option(
        (10000.0, 25000.0), "--defocus", help="Defocus range MIN MAX in Å (uniform)."
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed: same seed, same data set."),
    trajectory: Path | None = typer.Option(
        None, "--trajectory", help="Multi-model PDB/mmCIF: states are its frames."
    ),
    structure: Path | None = typer.Option(None, "--structure", help="Model for --hinge."),
    hinge: str | None = typer.Option(
        None, "--hinge", help="gemmi selection of the atoms that rotate, e.g. 'A/120-200/'."
    ),
    axis: tuple[float, float, float] | None = typer.Option(
        None, "--axis", help="Hinge axis direction X Y Z (model frame)."
    ),
    pivot: tuple[float, float, float] | None = typer.Option(
        None, "--pivot", help="A point X Y Z (Å) on the hinge axis [default: hinge atoms' centre]."
    ),
    angles: tuple[float, float] | None = typer.Option(
        None, "--angles", help="Hinge angle range A0 A1 in degrees (linear1d)."
    ),
    circular: bool = typer.Option(
        False, "--circular", help="A full periodic turn from A0 (circular1d)."
    ),
    n_states: int = typer.Option(50, "--n-states", help="Hinge: number of angles on the grid."),
    structures: list[str] | None = typer.Option(
        None, "--structures", help="Discrete states: models, comma-separated or repeated."
    ),
    proportions: list[str] | None = typer.Option(
        None, "--proportions", help="Proportions of --structures (comma-separated or repeated)."
    ),
    resolution: float | None = typer.Option(
        None, "--resolution", help="Resolution of the simulated volumes in Å [2 x pixel size]."
    ),
    max_shift: float = typer.Option(3.0, "--max-shift", help="Uniform shifts up to +-this (px)."),
    astigmatism: float = typer.Option(200.0, "--astigmatism", help="dfU - dfV up to this (Å)."),
    voltage: float = typer.Option(300.0, "--voltage", help="Acceleration voltage (kV)."),
    cs: float = typer.Option(2.7, "--cs", help="Spherical aberration (mm)."),
    amplitude_contrast: float = typer.Option(0.1, "--amplitude-contrast", help="w."),
    chunk_size: int = typer.Option(256, "--chunk-size", help="Images per batch in memory."),
    contrast: str = typer.Option(
        "cryodrgn",
        "--contrast",
        help="cryodrgn: protein dark, as cryoDRGN's defaults read it | positive: CTF * (P V) "
        "(cryoDRGN then needs --uninvert-data).",
    ),
    device: str = device_option(),
    threads: int | None = threads_option(),
    progress: bool | None = progress_option(),
    fix_elements: bool = fix_elements_option(),
    strict_elements: bool = strict_elements_option(),
) -> None:
    """Simulate particles X = CTF * (P V) + N with one kind of heterogeneity and ground truth.

    Writes particles.mrcs, poses.pkl, ctf.pkl, particles.star (cryoDRGN/RELION formats),
    ground_truth.npy/.csv (state, coordinate per image), volumes/state_XXX.mrc and dataset.json.

    Examples:
      densitydiff simulate particles -o adk --trajectory adk_closed_to_open.pdb.gz
        --n-images 10000 --box 64 --pixel-size 2 --snr 0.1
      densitydiff simulate particles -o hinge --structure 1ake.pdb.gz --hinge 'A/122-159/'
        --axis 0 0 1 --angles -30 30 --n-images 5000 --box 64 --pixel-size 2
      densitydiff simulate particles -o mix --structures a.pdb b.pdb --proportions 0.7,0.3
        --n-images 5000 --box 64 --pixel-size 2
    """
    import time

    from densitydiff import runrecord
    from densitydiff.console import show_progress
    from densitydiff.errors import InputError
    from densitydiff.outputs import check_output_dir

    started = time.perf_counter()
    from densitydiff.simulate import hetero

    output = pick(out, output_legacy, "-o/--out", "--output", required=True)
    set_threads(threads)
    check_output_dir(output, "dataset.json")  # before any work: a file or foreign folder there
    if contrast not in hetero.CONTRASTS:  # before the structures are read
        raise InputError(f"unknown --contrast {contrast!r}: use {' or '.join(hetero.CONTRASTS)}")
    device = _device(device)
    if more_structures and not structures:
        raise InputError(f"unexpected arguments {more_structures}: models go after --structures")
    try:
        props = [float(p) for p in _split(proportions)] if proportions else None
    except ValueError:
        raise InputError(f"--proportions must be numbers, got {proportions}") from None
    source = hetero.heterogeneity_source(
        trajectory=trajectory, structure=structure, hinge=hinge, axis=axis, pivot=pivot,
        angles=angles, circular=circular, n_states=n_states,
        structures=_split(structures) + _split(more_structures), proportions=props,
        resolution=resolution, fix_elements=fix_elements, strict_elements=strict_elements,
    )  # fmt: skip
    models = [trajectory, structure, *_split(structures), *_split(more_structures)]
    inputs = [m for m in models if m is not None]
    settings = dict(n_images=n_images, box=box, pixel_size=pixel_size, seed=seed,
                    snr=None if snr == float("inf") else snr,
                    defocus=defocus, astigmatism=astigmatism, max_shift=max_shift,
                    voltage=voltage, cs=cs, amplitude_contrast=amplitude_contrast,
                    resolution=resolution, heterogeneity=source.kind, source=source.params,
                    fix_elements=fix_elements, strict_elements=strict_elements,
                    contrast=contrast)  # fmt: skip
    record = hetero.simulate_particles(
        output, source, n_images=n_images, box=box, pixel_size=pixel_size, snr=snr, seed=seed,
        acquisition=hetero.Acquisition(
            defocus=defocus, astigmatism=astigmatism, max_shift=max_shift, voltage=voltage,
            cs=cs, amplitude_contrast=amplitude_contrast,
        ),
        chunk_size=chunk_size,
        device=device, progress=show_progress(progress),
        command=runrecord.command()["shell"], contrast=contrast,
        run=runrecord.run_record(
            config=settings, seed=seed, inputs=inputs, started=started,
            elements_inferred=source.params.get("elements_inferred", 0),
        ),
    )  # fmt: skip
    print(
        f"wrote {record['n_images']} images of {box}x{box} ({record['heterogeneity']}, "
        f"{record['n_states']} states) to {output}"
    )


def _device(name: str):
    import torch

    from densitydiff.devices import check_device

    return torch.device(check_device(name))


def register(simulate_app: typer.Typer) -> None:
    simulate_app.command("particles")(particles)
