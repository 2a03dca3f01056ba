"""`densitydiff evaluate`: sharpening models against classical baselines on simulated maps."""

from __future__ import annotations

from pathlib import Path

import typer

from densitydiff.cli.options import (
    CHECKPOINT_HELP,
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
from densitydiff.diffusion.sampling import HELP as SAMPLER_HELP


def evaluate(
    structures: list[Path] = typer.Argument(
        None, help="Atomic models (PDB/mmCIF, optionally .gz) to simulate; or use --map/--model."
    ),
    map_path: Path | None = typer.Option(
        None, "--map", help="A real map to evaluate against its deposited model (--model)."
    ),
    model_path: Path | None = typer.Option(
        None, "--model", help="The deposited atomic model of --map (PDB/mmCIF)."
    ),
    half_maps: tuple[Path, Path] | None = typer.Option(
        None, "--half-maps", help="Two half maps of --map: input resolution and noise from them."
    ),
    samples: int = typer.Option(
        1,
        "--samples",
        help="Samples per generative model (their mean is measured; with 2 or "
        "more, the std map's Spearman and coverage too).",
    ),
    input_b_factors: bool = typer.Option(
        False, "--input-b-factors", help="Blur the simulated input with the atoms' B-factors."
    ),
    input_global_b: str = typer.Option(
        "0",
        "--input-global-b",
        help="Extra global B of the input (Å^2): B, or LO:HI drawn per structure from --seed.",
    ),
    input_snr: str | None = typer.Option(
        None,
        "--input-snr",
        help="Add noise to the input at this low-frequency SNR (or LO:HI, "
        "log-uniform from --seed); its half-map FSC crosses 0.143 at the input resolution.",
    ),
    input_postprocess: str | None = typer.Option(
        None,
        "--input-postprocess",
        help="Sharpen the input as deposited maps are: this scale (or LO:HI, uniform from "
        "--seed) of its Guinier B removed, low-passed at the input resolution.",
    ),
    padding: float = typer.Option(
        10.0,
        "--padding",
        help="Solvent around the atoms in the simulated box (Å); real maps often have 40 or more.",
    ),
    checkpoint: list[str] | None = typer.Option(
        None,
        "--checkpoint",
        "-c",
        help=f"{CHECKPOINT_HELP}; repeat for several. "
        "Default: the packaged refine model and the regression U-Net (the default).",
    ),
    input_resolution: float | None = typer.Option(
        None, "--input-resolution", help="Input map (Å); default 4, or with --map the half maps'."
    ),
    target_resolution: float | None = typer.Option(
        None, "--target-resolution", help="Target (Å); default 2 (--map: 2 x its voxel, >= 2)."
    ),
    voxel_size: float | None = typer.Option(
        None, "--voxel-size", help="Simulation voxel size (Å); default: the first model's."
    ),
    sampler: str | None = typer.Option(None, "--sampler", help=SAMPLER_HELP),
    steps: int | None = typer.Option(None, "--steps", help="Sampler steps (DDPM models)."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the samplers."),
    device: str = device_option(),
    threads: int | None = threads_option(),
    progress: bool | None = progress_option(),
    batch_size: int = typer.Option(
        None, "--batch-size", help="Tiles per model call (default: 1 on CPU, 4 on a GPU)."
    ),
    fix_elements: bool = fix_elements_option(),
    strict_elements: bool = strict_elements_option(),
    no_models: bool = typer.Option(False, "--no-models", help="Only the classical baselines."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead."),
    csv_out: Path | None = typer.Option(None, "--csv", help="Also write the rows as CSV."),
    out: Path | None = out_option(
        "Report folder: FSC/slice PNGs, results.csv/json, report.html, run.json."
    ),
    report_legacy: Path | None = legacy("--report"),
) -> None:
    """Simulate each structure at the input and target resolution, sharpen, compare with truth.

    Rows: each model, the input, optimal-B sharpening (B chosen against the truth: flatters it)
    and the input low-passed at its resolution. Metrics: see docs/evaluate.md.

    With --map MAP --model PDB: a real map against its deposited model (map-model FSC, CC_box,
    CC_mask) before and after each model and Guinier B sharpening.

    Example: densitydiff evaluate 1orc.pdb.gz --input-resolution 4 -o report

    Example: densitydiff evaluate --map emd_5168_monomer.mrc --model 3mfp.pdb.gz
    --input-resolution 6.6
    """
    import contextlib
    import json
    import time

    from densitydiff.console import show_progress
    from densitydiff.devices import check_device
    from densitydiff.errors import InputError
    from densitydiff.outputs import atomic_dir, check_output_dir, check_record_path
    from densitydiff.sharpen.evaluate import (
        check_padding,
        check_resolutions,
        check_samples,
        check_sampling,
        evaluate_structures,
        format_table,
        input_realism,
        summarise,
    )
    from densitydiff.sharpen.report import results_json, structure_figures, write_csv, write_report

    start = time.perf_counter()
    set_threads(threads)
    if map_path is not None or model_path is not None or half_maps:
        simulated = input_snr is not None or input_postprocess is not None
        if input_b_factors or simulated or input_global_b != "0" or padding != 10.0:
            raise InputError("--input-b-factors/--input-global-b/--input-snr/--input-postprocess/"
                             "--padding shape a simulated input; a real map (--map) is its own "
                             "input")  # fmt: skip
        _evaluate_real(map_path, model_path, structures, half_maps, checkpoint, no_models,
                       input_resolution, target_resolution, sampler, steps, samples, seed,
                       device, batch_size, as_json)  # fmt: skip
        return
    report = pick(out, report_legacy, "-o/--out", "--report")
    if not structures:
        raise InputError("give structures to simulate, or a real map with --map and --model")
    input_resolution = 4.0 if input_resolution is None else input_resolution
    target_resolution = 2.0 if target_resolution is None else target_resolution
    check_resolutions(input_resolution, target_resolution)
    missing = [str(p) for p in structures if not p.is_file()]
    if missing:
        raise InputError(f"structure file not found: {', '.join(missing)}")
    check_sampling(sampler, steps)
    check_samples(samples)
    check_padding(padding)
    knobs = input_realism(input_b_factors, input_global_b, input_snr, input_postprocess)
    device = check_device(device)
    if report is not None:
        check_output_dir(report, "report.html")
    elif csv_out is not None:
        check_record_path(csv_out.with_suffix(".json"))  # the CSV's run record
    models = [] if no_models else (list(checkpoint) if checkpoint else ["refine", "regression"])
    figures: dict = {}
    stack = contextlib.ExitStack()  # the report is written in a temporary folder, renamed last
    folder = stack.enter_context(atomic_dir(report, "report.html")) if report is not None else None

    def on_result(ev) -> None:
        if folder is not None:  # draw now so the volumes need not be kept
            figures[ev.structure] = structure_figures(ev, folder)

    with stack:
        rows = evaluate_structures(
            structures,
            models,
            input_resolution=input_resolution,
            target_resolution=target_resolution,
            voxel_size=voxel_size,
            sampler=sampler,
            steps=steps,
            seed=seed,
            samples=samples,
            input_b_factors=input_b_factors,
            input_global_b=input_global_b,
            input_snr=input_snr,
            input_postprocess=input_postprocess,
            padding=padding,
            on_result=on_result,
            device=device,
            batch_size=batch_size,
            fix_elements=fix_elements,
            strict_elements=strict_elements,
            progress=show_progress(progress),
        )
        summary = summarise(rows)
        settings = {
            "input resolution (Å)": input_resolution,
            "target resolution (Å)": target_resolution,
            "models": ", ".join(models) or "none",
            "sampler": sampler or "model default",
            "steps": steps or "model default",
            "seed": seed,
            "samples": samples,
            "input simulation": _input_description(knobs),
            "padding (Å)": padding,
        }
        if csv_out is not None:
            write_csv(rows, csv_out)
        if folder is not None or csv_out is not None:
            from densitydiff.runrecord import run_record, write_record

            record = run_record(config=settings, seed=seed, inputs=structures, started=start)
            if folder is not None:
                write_report(rows, folder, figures=figures, settings=settings, record=record)
            write_record(folder / "run.json" if folder is not None
                         else csv_out.with_suffix(".json"), record)  # fmt: skip
    if as_json:
        print(json.dumps(results_json(rows, summary)))
    else:
        print(format_table(rows, summary))
        if report is not None:
            print(f"report: {report / 'report.html'}")


def _input_description(knobs) -> str:
    """The input's simulation in words, for the report's settings."""
    parts = ["atomic B-factors" if knobs.atomic_b else "B = 0"]
    lo, hi = knobs.global_b
    if hi > 0:
        parts.append(f"global B {lo:g} Å^2" if lo == hi else f"global B {lo:g}-{hi:g} Å^2")
    lo, hi = knobs.noise_snr
    if hi > 0:
        parts.append(f"noise SNR {lo:g}" if lo == hi else f"noise SNR {lo:g}-{hi:g}")
    else:
        parts.append("no noise")
    if knobs.postprocess:
        lo, hi = knobs.postprocess_scale
        parts.append(f"sharpened by {lo:g}" + ("" if lo == hi else f"-{hi:g}") + " x its Guinier B")
    return ", ".join(parts)


def _evaluate_real(map_path, model_path, structures, half_maps, checkpoint, no_models,
                   input_resolution, target_resolution, sampler, steps, samples, seed,
                   device, batch_size, as_json) -> None:  # fmt: skip
    """`evaluate --map MAP --model PDB`: densitydiff.sharpen.realmap.evaluate_real_map."""
    import json
    import sys

    from densitydiff.devices import check_device
    from densitydiff.errors import InputError
    from densitydiff.sharpen.realmap import evaluate_real_map, format_real_table

    if map_path is None or model_path is None:
        raise InputError("real-map evaluation needs both --map and --model")
    if structures:
        raise InputError("give either structures to simulate or --map/--model, not both")
    if samples < 1:
        raise InputError(f"--samples must be at least 1, got {samples}")
    models = [] if no_models else (list(checkpoint) if checkpoint else ["refine", "regression"])
    ev = evaluate_real_map(
        map_path, model_path, models, input_resolution=input_resolution,
        half_maps=tuple(half_maps) if half_maps else None,
        target_resolution=target_resolution, sampler=sampler, steps=steps, samples=samples,
        seed=seed, device=check_device(device), batch_size=batch_size,
    )  # fmt: skip
    for w in ev.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if as_json:
        print(json.dumps({"rows": ev.rows, "settings": ev.info, "warnings": ev.warnings}))
    else:
        print(format_real_table(ev))


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
