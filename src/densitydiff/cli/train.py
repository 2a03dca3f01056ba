"""`densitydiff train sharpen`: train a sharpening model (unet | vae | ddpm | refine) on a store."""

from __future__ import annotations

from pathlib import Path

import typer

from densitydiff.cli.options import (
    legacy,
    out_option,
    pick,
    progress_option,
    set_threads,
    threads_option,
)
from densitydiff.console import decimal, human_bytes
from densitydiff.diffusion.sampling import HELP as SAMPLER_HELP

train_app = typer.Typer(
    help="Train models (see docs/training.md).",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

PRECISIONS = ("bf16-mixed", "16-mixed", "32")


@train_app.command("sharpen")
def sharpen(
    data: Path = typer.Option(..., "--data", help="Training store (densitydiff data build)."),
    model: str = typer.Option(
        None, "--model", help="unet | vae | ddpm | refine (default: config's)."
    ),
    predictor: str = typer.Option(
        None,
        "--predictor",
        help="refine: the trained regression model its predictor starts from (regression, a "
        ".pt or a unet run's .ckpt; read once, not on --resume).",
    ),
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
    threads: int | None = threads_option(),
    progress: bool | None = progress_option(),
) -> None:
    """Train a sharpening model; command-line options override the config.

    Example: densitydiff train sharpen --data store.zarr --model ddpm -o runs/ddpm --config small
    """
    from densitydiff.errors import InputError
    from densitydiff.extras import require
    from densitydiff.sharpen.config import load_config

    require("train", "data", what="train sharpen")
    set_threads(threads)
    if precision is not None and precision not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if config is None and resume and (out / "config.yaml").is_file():
        config = str(out / "config.yaml")  # a resumed run keeps its own config
    overrides: dict = {}
    if model is not None:
        overrides["model"] = model
    if predictor is not None and not resume:
        overrides["refine"] = {"predictor": predictor}
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
    if predictor is not None and cfg.model != "refine":
        raise InputError(f"--predictor is for --model refine, not {cfg.model}")
    if predictor is not None and resume and predictor != cfg.refine.predictor:
        raise InputError(
            f"--predictor {predictor}: the run started from {cfg.refine.predictor}; a resumed "
            "run keeps its predictor (the checkpoint holds its weights)"
        )

    from densitydiff.sharpen.train import train_sharpen

    result = train_sharpen(cfg, out, data=data, resume=resume, progress_bar=progress)
    print(f"trained {cfg.model} to step {result['global_step']}; last: {result['last']}")


@train_app.command("export")
def export(
    run: Path = typer.Argument(..., help="Training run directory (or a checkpoint inside it)."),
    out: Path | None = out_option("Model file to write (.pt), required; OUT.json beside it."),
    output_legacy: Path | None = legacy("--output"),
    half: bool = typer.Option(True, "--half/--float32", help="Store weights as float16."),
    which: str | None = typer.Option(
        None, "--which", help="Which checkpoint of the run: last (default) | best."
    ),
    which_legacy: str | None = legacy("--checkpoint"),
    sampler: str | None = typer.Option(
        None, "--sampler", help=f"Default inference sampler: {SAMPLER_HELP}."
    ),
    steps: int | None = typer.Option(None, "--steps", help="Default inference sampler steps."),
    antithetic: bool | None = typer.Option(
        None,
        "--antithetic/--independent-draws",
        help="Default inference draws: in antithetic pairs or independent (default: the run's).",
    ),
    threads: int | None = threads_option(),
) -> None:
    """Package a run's weights (EMA for DDPM / refine) with config, voxel size, patch, structures.

    Example: densitydiff train export runs/ddpm -o model.pt  (then: sharpen -c model.pt)
    """
    import time

    import yaml

    from densitydiff.diffusion.sampling import check_steps, sampler_name
    from densitydiff.errors import InputError
    from densitydiff.outputs import check_record_path
    from densitydiff.runrecord import run_record, write_record
    from densitydiff.sharpen.checkpoint import export_sharpener, load_sharpener

    started = time.perf_counter()
    output = pick(out, output_legacy, "-o/--out", "--output", required=True)
    which = pick(which, which_legacy, "--which", "--checkpoint") or "last"
    if which not in ("last", "best"):
        raise InputError(f"--which {which!r}: use last or best")
    sampler = sampler_name(sampler) if sampler is not None else None
    check_steps(steps)
    check_record_path(output.with_suffix(".json"))
    set_threads(threads)
    run_dir = run if run.is_dir() else run.parent.parent
    ckpt = run / "checkpoints" / f"{which}.ckpt" if run.is_dir() else run
    if not ckpt.is_file():
        raise InputError(f"no checkpoint {ckpt}")
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
        antithetic=antithetic,
    )
    settings = dict(which=which, half=half, sampler=sampler, steps=steps, antithetic=antithetic)
    write_record(
        output.with_suffix(".json"),
        run_record(config=settings, inputs=[ckpt], started=started, output=str(output)),
    )
    size = human_bytes(output.stat().st_size)
    print(f"wrote {output} ({size}): {sharpener.kind}, voxel {decimal(sharpener.voxel_size)} Å")


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")
