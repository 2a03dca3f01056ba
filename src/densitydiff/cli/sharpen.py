"""`densitydiff sharpen`: sharpen a whole map with the packaged or a given model."""

from __future__ import annotations

from pathlib import Path

import typer


def sharpen(
    inp: Path = typer.Argument(..., metavar="IN.mrc", help="Map to sharpen (MRC/CCP4)."),
    out: Path = typer.Option(..., "-o", "--out", help="Sharpened map (MRC); OUT.json beside it."),
    checkpoint: str = typer.Option(
        None, "--checkpoint", help="Model file, training checkpoint or 'unet' (default: DDPM)."
    ),
    input_resolution: float = typer.Option(
        None, "--input-resolution", help="Resolution of IN in Å (required)."
    ),
    target_resolution: float = typer.Option(
        2.0, "--target-resolution", help="Resolution to sharpen to, Å."
    ),
    sampler: str = typer.Option(None, "--sampler", help="ddpm | ddim | dpmpp (DDPM models)."),
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
        "(local deterministic models, e.g. unet; slower, more memory per tile).",
    ),
) -> None:
    """Sharpen a map: tiles of the model's patch size, blended; output on the input's grid.

    Example: densitydiff sharpen emd.mrc -o sharp.mrc --input-resolution 4 --samples 4
    --std-out sharp_std.mrc
    """
    import json
    import shlex
    import sys
    import time

    from densitydiff.devices import check_device
    from densitydiff.errors import InputError
    from densitydiff.formats.maps import MAP_SUFFIXES, read_volume, write_map
    from densitydiff.outputs import atomic_path, output_lock

    start = time.perf_counter()
    if input_resolution is None:
        raise InputError("give --input-resolution: the resolution of the input map in Å")
    if samples < 1:
        raise InputError(f"--samples must be at least 1, got {samples}")
    if std_out is not None and samples < 2:
        raise InputError("--std-out needs --samples 2 or more")
    for path in [out] + ([std_out] if std_out is not None else []):
        if path.suffix.lower() not in MAP_SUFFIXES:
            raise InputError(f"{path}: write a map with one of {', '.join(MAP_SUFFIXES)}")
        if not path.parent.is_dir():
            raise InputError(f"no such directory for {path}")
    if std_out is not None and std_out.resolve() == out.resolve():
        raise InputError("--std-out must differ from -o")
    if inp.resolve() in {p.resolve() for p in [out, std_out] if p is not None}:
        raise InputError(f"the output would overwrite the input {inp}; choose another -o")
    sidecar = out.with_suffix(".json")
    _check_sidecar(sidecar)
    device = check_device(device)
    density = read_volume(inp)
    t_read = time.perf_counter() - start

    from densitydiff.sharpen.checkpoint import load_sharpener
    from densitydiff.sharpen.infer import sharpen_map
    from densitydiff.sharpen.train import versions

    sharpener = load_sharpener(checkpoint, device=device)
    if sharpener.kind == "ddpm":  # the DDPM's samplers are diffusers' schedulers
        from densitydiff.extras import require

        require("train", what=f"sharpening with {sharpener.name} (a diffusion model)")
    result = sharpen_map(
        density,
        sharpener,
        input_resolution=input_resolution,
        target_resolution=target_resolution,
        sampler=sampler,
        steps=steps,
        samples=samples,
        batch_size=batch_size,
        device=device,
        seed=seed,
        progress=sys.stderr.isatty() if progress is None else progress,
        exact_tiles=exact_tiles,
    )
    from densitydiff.sharpen.config import to_dict

    record = {
        "command": shlex.join(["densitydiff", *sys.argv[1:]]) if sys.argv else "densitydiff",
        "input": str(inp),
        "output": str(out),
        "std_output": str(std_out) if std_out is not None else None,
        "model": sharpener.name,
        "kind": sharpener.kind,
        "config": to_dict(sharpener.config),
        "input_resolution": input_resolution,
        "target_resolution": target_resolution,
        "seed": seed,
        "inference": result.info,
        "tiles": result.n_tiles,
        "tiles_skipped": result.n_skipped,
        "seconds": {"read": round(t_read, 3), "sharpen": round(result.seconds, 3)},
        "versions": versions(),
    }
    record["seconds"]["total"] = round(time.perf_counter() - start, 3)
    # one run at a time per -o (never one run's map with another's record); the map goes last,
    # so a map on disk always has its std map and record beside it
    with output_lock(out):
        if std_out is not None and result.std is not None:
            write_map(std_out, result.std)
        with atomic_path(sidecar) as tmp:
            tmp.write_text(json.dumps(record, indent=1, default=str) + "\n")
        write_map(out, result.mean)
    note = result.info.get("note")
    if note:
        print(f"note: {note}", file=sys.stderr)
    print(
        f"sharpened {inp} -> {out} with {sharpener.name} ({sharpener.kind}): "
        f"{result.n_tiles} tiles ({result.n_skipped} solvent, skipped), {result.seconds:.1f} s"
    )


def _check_sidecar(path: Path) -> None:
    """OUT.json is replaced only when it is an earlier sharpen record, never an unrelated file."""
    import json

    from densitydiff.errors import InputError

    if not path.exists():
        return
    try:
        record = json.loads(path.read_text())
        ours = isinstance(record, dict) and {"command", "model", "inference"} <= set(record)
    except (OSError, UnicodeDecodeError, ValueError):
        ours = False
    if not ours:
        raise InputError(
            f"{path} exists and is not a sharpen record; the run record would overwrite it "
            "(choose another -o or move the file)"
        )


def register(app: typer.Typer) -> None:
    app.command("sharpen")(sharpen)
