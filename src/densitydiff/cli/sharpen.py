"""`densitydiff sharpen`: sharpen a whole map with the packaged or a given model."""

from __future__ import annotations

from pathlib import Path

import typer

from densitydiff.cli.options import (
    CHECKPOINT_HELP,
    device_option,
    progress_option,
    set_threads,
    threads_option,
)
from densitydiff.diffusion.sampling import HELP as SAMPLER_HELP


def sharpen(
    inp: Path = typer.Argument(..., metavar="IN.mrc", help="Map to sharpen (MRC/CCP4)."),
    out: Path = typer.Option(..., "-o", "--out", help="Sharpened map (MRC); OUT.json beside it."),
    checkpoint: str = typer.Option(
        None, "--checkpoint", "-c", help=f"{CHECKPOINT_HELP} (default: default)."
    ),
    input_resolution: float = typer.Option(
        None, "--input-resolution", help="Resolution of IN in Å (required)."
    ),
    target_resolution: float = typer.Option(
        2.0, "--target-resolution", help="Resolution to sharpen to, Å."
    ),
    sampler: str = typer.Option(None, "--sampler", help=f"{SAMPLER_HELP}; DDPM models."),
    steps: int = typer.Option(None, "--steps", help="Sampler steps (default: the model's)."),
    samples: int = typer.Option(1, "--samples", help="Draws from a generative model (mean)."),
    antithetic: bool | None = typer.Option(
        None,
        "--antithetic/--independent-draws",
        help="Draw the samples in antithetic pairs (mean with less sampling noise) or each "
        "independently (default: the model's).",
    ),
    std_out: Path = typer.Option(
        None, "--std-out", help="Per-voxel standard deviation over --samples (needs >= 2)."
    ),
    batch_size: int = typer.Option(
        None,
        "--batch-size",
        help="Tiles per forward pass (default: 1 on CPU, fastest there; 4 on a GPU); with "
        "--exact-tiles: as many voxels.",
    ),
    device: str = device_option(),
    threads: int | None = threads_option(),
    seed: int = typer.Option(0, "--seed", help="Random seed of the samplers."),
    progress: bool | None = progress_option(),
    exact_tiles: bool = typer.Option(
        False,
        "--exact-tiles",
        help="Tiles with the network's whole receptive field: equal to one pass over the map "
        "(local deterministic models, e.g. regression; slower, more memory per tile).",
    ),
) -> None:
    """Sharpen a map: tiles of the model's patch size, blended; output on the input's grid.

    Example: densitydiff sharpen emd.mrc -o sharp.mrc --input-resolution 4 --samples 4
    --std-out sharp_std.mrc
    """
    import sys

    from densitydiff.console import plural, show_progress
    from densitydiff.devices import check_device
    from densitydiff.sharpen.infer import sharpen_file

    device = check_device(device)
    set_threads(threads)
    result, record = sharpen_file(
        inp,
        out,
        checkpoint=checkpoint,
        input_resolution=input_resolution,
        target_resolution=target_resolution,
        std_out=std_out,
        sampler=sampler,
        steps=steps,
        samples=samples,
        batch_size=batch_size,
        device=device,
        seed=seed,
        progress=show_progress(progress),
        exact_tiles=exact_tiles,
        antithetic=antithetic,
    )
    for warning in record["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    print(
        f"sharpened {inp} -> {out} with {record['model']} ({record['kind']}): "
        f"{plural(result.n_tiles, 'tile')} ({result.n_skipped} solvent, skipped), "
        f"{result.seconds:.1f} s"
    )


def register(app: typer.Typer) -> None:
    app.command("sharpen")(sharpen)
