"""The demo (`make demo`): sharpen a 4 Å map of a held-out example to 2 Å and measure it.

On a packaged structure the default model never saw (it is on the held-out list,
densitydiff/models/heldout.txt): simulate the 2 Å truth and the 4 Å input on one grid, sharpen
the input with the predict-and-refine model (several samples: their mean, and their per-voxel
standard deviation as a map of how far to trust each region) and the regression U-Net (the
default), compare them with
the input and optimal-B sharpening, and write maps, figures and the table into the output folder.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

from densitydiff.outputs import atomic_path

PACKAGE = Path(__file__).resolve().parent.parent
EXAMPLES = PACKAGE / "examples"
HELDOUT = PACKAGE / "models" / "heldout.txt"
DEMO_STRUCTURE = "1orc.pdb.gz"
DEMO_MODELS = ("refine", "regression")
DEMO_SAMPLES = 4
DEMO_STEPS = None  # the model's own sampler steps: its std_scale was fitted for them
DEMO_BASELINES = ("input", "bfactor")
# Box margin around the atoms (Å): 4 Å gives 1orc a 38x40x39 box, 8 tiles of 32^3 instead of 27
# with evaluate's 10 Å, which keeps the demo well within 5 minutes on 2 CPU cores.
DEMO_PADDING = 4.0


def heldout_ids() -> list[str]:
    """The project's held-out structure ids (never used to train the packaged models)."""
    lines = HELDOUT.read_text().splitlines()
    return [s.strip() for s in lines if s.strip() and not s.lstrip().startswith("#")]


def _file_name(method: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in method)


def run_demo(
    out_dir: str | os.PathLike = "demo_out",
    *,
    checkpoints: Sequence[str | os.PathLike] | None = None,
    structure: str | os.PathLike | None = None,
    input_resolution: float = 4.0,
    target_resolution: float = 2.0,
    samples: int = DEMO_SAMPLES,
    sampler: str | None = None,
    steps: int | None = DEMO_STEPS,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = False,
) -> dict:
    """Run the demo; return {"structure", "rows", "files", "models", "samples"}.

    `checkpoints` default to the packaged refine model and regression U-Net (the default); a missing
    packaged model raises InputError before any work. Generative models draw `samples` samples:
    their mean is the output that is measured, their standard deviation is written as
    <model>_std.mrc.
    """
    from densitydiff.errors import InputError
    from densitydiff.formats.maps import write_map
    from densitydiff.outputs import atomic_dir, check_output_dir
    from densitydiff.sharpen.evaluate import (
        check_resolutions,
        check_sampling,
        evaluate_structure,
        resolve_sharpeners,
    )
    from densitydiff.sharpen.report import jsonable, structure_figures, write_report

    started = time.perf_counter()
    check_resolutions(input_resolution, target_resolution)
    if samples < 1:
        raise InputError(f"samples must be >= 1, got {samples}")
    models = list(checkpoints) if checkpoints else list(DEMO_MODELS)
    sharpeners = resolve_sharpeners(models)  # fails fast when a model is missing
    path = Path(structure) if structure is not None else EXAMPLES / DEMO_STRUCTURE
    check_sampling(sampler, steps)
    check_output_dir(out_dir, "demo.json")

    ev = evaluate_structure(
        path,
        sharpeners,
        input_resolution=input_resolution,
        target_resolution=target_resolution,
        sampler=sampler,
        steps=steps,
        seed=seed,
        samples=samples,
        baselines=DEMO_BASELINES,
        padding=DEMO_PADDING,
        device=device,
        progress=progress,
    )
    # written in a temporary folder that is renamed when demo.json, the last file, is there
    with atomic_dir(out_dir, "demo.json") as out:
        files: dict[str, str] = {}
        r_in, r_out = f"{input_resolution:g}A", f"{target_resolution:g}A"
        names = {"truth": f"truth_{r_out}.mrc", "input": f"input_{r_in}.mrc"}
        for method, density in ev.maps.items():
            if method.endswith(" std"):
                name = f"{_file_name(method[: -len(' std')])}_std.mrc"
            else:
                name = names.get(method, f"{_file_name(method)}_{r_out}.mrc")
            write_map(out / name, density)
            files[method] = name
        for method, density in ev.maps.items():  # the std maps go into the slice montage too
            if method.endswith(" std"):
                ev.volumes[method] = density.array
        figures = structure_figures(ev, out)
        for key, png in figures.items():
            files[f"{key} figure"] = png.name
        from densitydiff.runrecord import run_record

        config = {"input_resolution": input_resolution, "target_resolution": target_resolution,
                  "models": models, "samples": samples, "sampler": sampler, "steps": steps,
                  "padding": DEMO_PADDING, "baselines": list(DEMO_BASELINES)}  # fmt: skip
        run = run_record(config=config, seed=seed, inputs=[path], started=started)
        write_report(
            ev.rows,
            out,
            figures={ev.structure: figures},
            title=f"densitydiff demo: {ev.structure}, {r_in[:-1]} Å → {r_out[:-1]} Å",
            settings={
                "structure": f"{path.name} (held out from training)",
                "models": ", ".join(s.name for s in sharpeners),
                "samples (generative models)": samples,
                "sampler": sampler or "model default",
                "steps": steps or "model default",
            },
            record=run,
        )
        files.update(
            report="report.html", csv="results.csv", json="results.json", record="demo.json"
        )
        record = {
            "structure": ev.structure,
            "input_resolution": input_resolution,
            "target_resolution": target_resolution,
            "models": [s.name for s in sharpeners],
            "samples": samples,
            "rows": ev.rows,
            "files": files,
            "run": run,
        }
        with atomic_path(out / "demo.json") as tmp:
            clean = dict(record, rows=[{k: jsonable(v) for k, v in r.items()} for r in ev.rows])
            Path(tmp).write_text(json.dumps(clean, indent=2))
        return record
