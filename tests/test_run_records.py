"""Every command that writes files leaves a run record beside them naming its real command line.

Each command is run in-process through the CLI's `main`, and its record (densitydiff.runrecord:
command, config, seed, versions, inputs with sizes and hashes) is read back from disk and
compared with the arguments given and with the input files themselves.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from densitydiff.cli import main
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.usefixtures("one_thread")
MODEL = EXAMPLES / "1orc.pdb.gz"


def _run(*args) -> list[str]:
    argv = [str(a) for a in args]
    assert main(argv) == 0, argv
    return ["densitydiff", *argv]


def _record(path: Path) -> dict:
    text = path.read_text()
    return yaml.safe_load(text) if path.suffix == ".yaml" else json.loads(text)


def _check(record: dict, argv: list[str], inputs: list[Path] = ()) -> None:
    assert record["command"]["argv"] == argv
    assert record["versions"]["densitydiff"] and record["versions"]["python"]
    by_path = {entry["path"]: entry for entry in record["inputs"]}
    for path in inputs:
        entry = by_path[str(path)]
        if path.is_file():
            data = path.read_bytes()
            assert entry["bytes"] == len(data)
            assert entry["sha256"] == hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def prior_run(tmp_path_factory):
    from densitydiff.prior.config import PriorConfig
    from densitydiff.prior.latents import Latents
    from densitydiff.prior.synthetic import circular
    from densitydiff.prior.train import train_prior

    folder = tmp_path_factory.mktemp("prior")
    z = circular(200, dim=3, seed=0)
    np.save(folder / "z.npy", z)
    cfg = PriorConfig(epochs=1, width=16, depth=1, emb_dim=8, batch_size=100, seed=0)
    train_prior(Latents(z), folder / "run", cfg, progress=False)
    return folder


def test_prior_sample_interpolate_and_plot_write_records(prior_run, tmp_path):
    prior_pt = prior_run / "run" / "prior.pt"
    out = tmp_path / "z.txt"
    argv = _run("prior", "sample", prior_run / "run", "-n", "20", "-o", out, "--method",
                "heun", "--steps", "4", "--seed", "3")  # fmt: skip
    record = _record(tmp_path / "z.json")
    _check(record, argv, [prior_pt])
    assert record["seed"] == 3 and record["config"]["method"] == "heun"
    assert record["nfe"] == 2 * 4 - 1  # EDM Heun: 2 evaluations per step but the last

    out = tmp_path / "path.npy"
    argv = _run("prior", "interpolate", prior_run / "run", "--start", "0", "--end", "5",
                "--points", "4", "--through", "latent", "-o", out)  # fmt: skip
    record = _record(tmp_path / "path.json")
    _check(record, argv, [prior_pt])
    assert record["config"]["points"] == 4 and len(np.load(out)) == 4

    out = tmp_path / "prior.png"
    argv = _run("prior", "plot", prior_run / "run", prior_run / "z.npy", "-n", "50", "-o", out)
    _check(_record(tmp_path / "prior.json"), argv, [prior_pt, prior_run / "z.npy"])


def test_prior_interpolate_keeps_its_old_steps_spelling(prior_run, tmp_path):
    _run("prior", "interpolate", prior_run / "run", "--start", "0", "--end", "5", "--steps", "3",
         "--through", "latent", "-o", tmp_path / "p.npy")  # fmt: skip
    assert len(np.load(tmp_path / "p.npy")) == 3


def test_train_export_record_and_sampler_alias(tmp_path):
    from densitydiff.sharpen.checkpoint import load_sharpener
    from tests.tiny_models import export_tiny

    export_tiny("ddpm", tmp_path)
    run = tmp_path / "run_ddpm"
    out = tmp_path / "model.pt"
    argv = _run("train", "export", run, "-o", out, "--sampler", "dpmpp", "--steps", "3",
                "--which", "last")  # fmt: skip
    _check(_record(tmp_path / "model.json"), argv, [run / "checkpoints" / "last.ckpt"])
    assert load_sharpener(out).model.sampling.sampler == "dpmsolver++"
    # the old spellings still work
    _run("train", "export", run, "--output", tmp_path / "old.pt", "--checkpoint", "last")
    assert (tmp_path / "old.pt").is_file()


def _blank_elements(tmp_path: Path, n_atoms: int = 60) -> Path:
    """The first n_atoms ATOM lines of 1orc with the element columns (77-78) blanked."""
    lines = [ln for ln in gzip.open(MODEL, "rt") if ln.startswith("ATOM")][:n_atoms]
    path = tmp_path / "blank.pdb"
    path.write_text("".join(ln[:76].ljust(76) + "  \n" for ln in lines) + "END\n")
    return path


def test_simulate_commands_record_the_inferred_element_count(tmp_path):
    model = _blank_elements(tmp_path)
    out = tmp_path / "m.mrc"
    argv = _run("simulate", "map", model, "-o", out, "-r", "6", "--voxel-size", "3")
    record = _record(tmp_path / "m.json")
    _check(record, argv, [model])
    assert record["config"]["elements_inferred"] == 60

    folder = tmp_path / "particles"
    argv = _run("simulate", "particles", "-o", folder, "--structures", f"{model},{model}",
                "--n-images", "4", "--box", "16", "--pixel-size", "6", "--no-progress")  # fmt: skip
    dataset = json.loads((folder / "dataset.json").read_text())
    _check(dataset["run"], argv, [model])
    assert dataset["run"]["elements_inferred"] == 2 * 60  # both states read the same file
    assert dataset["run"]["seed"] == 0 and dataset["command"] == dataset["run"]["command"]["shell"]


def test_data_build_merge_and_evaluate_write_records(tmp_path):
    common = ["--resolutions", "3,5", "--voxel-size", "1.5", "--patch", "16",
              "--patches-per-structure", "2", "--no-progress"]  # fmt: skip
    parts = []
    for i in range(2):
        store = tmp_path / f"part{i}.zarr"
        argv = _run("data", "build", MODEL, "-o", store, "--shard", f"{i}/2", *common)
        _check(_record(store / "run.json"), argv, [MODEL])
        parts.append(store)
    merged = tmp_path / "all.zarr"
    argv = _run("data", "merge", *parts, "-o", merged)
    record = _record(merged / "run.json")
    _check(record, argv, parts)
    assert record["merged"] == 1 and main(["data", "info", str(merged)]) == 0

    report = tmp_path / "report"
    argv = _run("evaluate", MODEL, "--no-models", "-o", report, "--voxel-size", "1")
    _check(_record(report / "run.json"), argv, [MODEL])
    argv = _run("evaluate", MODEL, "--no-models", "--csv", tmp_path / "rows.csv",
                "--voxel-size", "1")  # fmt: skip
    _check(_record(tmp_path / "rows.json"), argv, [MODEL])
