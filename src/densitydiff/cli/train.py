"""`densitydiff train sharpen`: train a sharpening model (unet | vae | ddpm) on a patch store."""

from __future__ import annotations

from pathlib import Path

import typer

train_app = typer.Typer(
    help="Train models (see docs/training.md).",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

PRECISIONS = ("bf16-mixed", "16-mixed", "32")


@train_app.command("sharpen")
def sharpen(
    data: Path = typer.Option(..., "--data", help="Training store (densitydiff data build)."),
    model: str = typer.Option(None, "--model", help="unet | vae | ddpm (default: config's)."),
    out: Path = typer.Option(..., "-o", "--out", help="Run directory (config, logs, checkpoints)."),
    config: str = typer.Option(
        None, "--config", help="Preset (tiny | small | base) or YAML file; default tiny."
    ),
    max_steps: int = typer.Option(None, "--max-steps", help="Training steps."),
    batch_size: int = typer.Option(None, "--batch-size", help="Patches per device per step."),
    devices: int = typer.Option(None, "--devices", help="Devices (GPUs) per node."),
    num_nodes: int = typer.Option(None, "--num-nodes", help="Nodes (multi-node DDP)."),
    precision: str = typer.Option(
        None, "--precision", help="bf16-mixed | 32 (default: bf16-mixed on GPU, 32 on CPU)."
    ),
    seed: int = typer.Option(None, "--seed", help="Random seed."),
    resume: bool = typer.Option(False, "--resume", help="Continue from RUN/checkpoints/last.ckpt."),
) -> None:
    """Train a sharpening model; command-line options override the config.

    Example: densitydiff train sharpen --data store.zarr --model ddpm -o runs/ddpm --config small
    """
    import sys

    from densitydiff.errors import InputError
    from densitydiff.extras import require
    from densitydiff.sharpen.config import load_config

    require("train", "data", what="train sharpen")
    if precision is not None and precision not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if config is None and resume and (out / "config.yaml").is_file():
        config = str(out / "config.yaml")  # a resumed run keeps its own config
    overrides: dict = {}
    if model is not None:
        overrides["model"] = model
    if seed is not None:
        overrides["seed"] = seed
    trainer = {
        "max_steps": max_steps,
        "batch_size": batch_size,
        "devices": devices,
        "num_nodes": num_nodes,
        "precision": precision,
    }
    trainer = {k: v for k, v in trainer.items() if v is not None}
    if trainer:
        overrides["trainer"] = trainer
    cfg = load_config(config or "tiny", overrides)

    from densitydiff.sharpen.train import train_sharpen

    result = train_sharpen(cfg, out, data=data, resume=resume, argv=sys.argv)
    print(f"trained {cfg.model} to step {result['global_step']}; last: {result['last']}")


@train_app.command("export")
def export(
    run: Path = typer.Argument(..., help="Training run directory (or a checkpoint inside it)."),
    output: Path = typer.Option(..., "-o", "--output", help="Model file to write (.pt)."),
    half: bool = typer.Option(True, "--half/--float32", help="Store weights as float16."),
    checkpoint: str = typer.Option("last", "--checkpoint", help="last | best"),
    sampler: str | None = typer.Option(
        None, "--sampler", help="Default inference sampler: ddpm | ddim | dpmsolver++."
    ),
    steps: int | None = typer.Option(None, "--steps", help="Default inference steps."),
) -> None:
    """Package a run's weights (EMA for a DDPM) with its config, voxel size, patch and structures.

    Example: densitydiff train export runs/ddpm -o model.pt  (then: sharpen --checkpoint model.pt)
    """
    import yaml

    from densitydiff.errors import InputError
    from densitydiff.sharpen.checkpoint import export_sharpener, load_sharpener

    run_dir = run if run.is_dir() else run.parent.parent
    ckpt = run / "checkpoints" / f"{checkpoint}.ckpt" if run.is_dir() else run
    if not ckpt.is_file():
        raise InputError(f"no checkpoint {ckpt}")
    if sampler is not None and sampler not in ("ddpm", "ddim", "dpmsolver++"):
        raise InputError(f"unknown sampler {sampler!r}: use ddpm, ddim or dpmsolver++")
    if steps is not None and steps < 1:
        raise InputError(f"--steps must be at least 1, got {steps}")
    structures_file = run_dir / "structures.txt"
    structures = structures_file.read_text().split() if structures_file.is_file() else []
    record = (
        yaml.safe_load((run_dir / "run.yaml").read_text())
        if (run_dir / "run.yaml").is_file()
        else {}
    )
    sharpener = load_sharpener(ckpt)
    export_sharpener(
        ckpt,
        output,
        voxel_size=sharpener.voxel_size,
        patch=sharpener.patch,
        training_structures=structures,
        extra={"run": record, "checkpoint": ckpt.name},
        half=half,
        name=output.stem,
        sampler=sampler,
        steps=steps,
    )
    size_mb = output.stat().st_size / 1e6
    print(f"wrote {output} ({size_mb:.1f} MB): {sharpener.kind}, voxel {sharpener.voxel_size} Å")


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")
