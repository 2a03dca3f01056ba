"""`densitydiff sharpen`: sharpen a whole map with the packaged or a given model."""

from __future__ import annotations

from pathlib import Path

import typer

from densitydiff.diffusion.sampling import HELP as SAMPLER_HELP


def sharpen(
    inp: Path = typer.Argument(..., metavar="IN.mrc", help="Map to sharpen (MRC/CCP4)."),
    out: Path = typer.Option(..., "-o", "--out", help="Sharpened map (MRC); OUT.json beside it."),
    checkpoint: str = typer.Option(
        None,
        "--checkpoint",
        help="Model file, training checkpoint or 'regression' (alias 'unet'); default: DDPM.",
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
    std_out: Path = typer.Option(
        None, "--std-out", help="Per-voxel standard deviation over --samples (needs >= 2)."
    ),
    batch_size: int = typer.Option(
        4, "--batch-size", help="Tiles per forward pass (with --exact-tiles: as many voxels)."
    ),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the samplers."),
    progress: bool = typer.Option(
        None, "--progress/--no-progress", help="Progress bar (default: when stderr is a tty)."
    ),
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

    from densitydiff.sharpen.infer import sharpen_file

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
        progress=sys.stderr.isatty() if progress is None else progress,
        exact_tiles=exact_tiles,
    )
    for warning in record["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    print(
        f"sharpened {inp} -> {out} with {record['model']} ({record['kind']}): "
        f"{result.n_tiles} tiles ({result.n_skipped} solvent, skipped), {result.seconds:.1f} s"
    )


def register(app: typer.Typer) -> None:
    app.command("sharpen")(sharpen)
