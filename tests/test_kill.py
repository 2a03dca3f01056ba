"""SIGKILL at a point mid-work leaves nothing or a complete result; training and builds resume.

Each command runs in a subprocess that is killed as soon as the file system shows it is at
work (its temporary folder, its lock, its first checkpoint or store group appeared), so the kill
lands mid-work without any timing assumption. The verdict does not depend on when the kill
landed: if the process had already finished, its result must be complete, and the checks are
the same. Resumed training and builds must equal an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import EXAMPLES, REPO, run_cli

pytestmark = pytest.mark.usefixtures("one_thread")

ENV = {
    **os.environ,
    "PYTHONPATH": str(REPO / "src") + os.pathsep + str(REPO),
    "OMP_NUM_THREADS": "1",  # two threads fight on a shared 2-core machine
}


def _kill_when(args: list[str], ready: Callable[[], bool], timeout: float = 120.0) -> int:
    """Start `args`; SIGKILL it once `ready()` holds (or let it end); return its exit status."""
    proc = subprocess.Popen(
        args, env=ENV, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and not ready():
            if time.monotonic() > deadline:
                raise AssertionError(f"{args} neither started work nor ended")
            time.sleep(0.005)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read()
    assert proc.returncode in (0, -signal.SIGKILL), err
    print(f"{' '.join(map(str, args[1:4]))}: {'killed' if proc.returncode else 'finished'}")
    return proc.returncode


def _cli(*argv) -> list[str]:
    return [sys.executable, "-m", "densitydiff", *(str(a) for a in argv)]


def test_sharpen_killed_while_writing(tmp_path):
    from densitydiff.formats.maps import read_map, write_map
    from densitydiff.maps import DensityMap
    from tests.tiny_models import export_tiny

    model = export_tiny("unet", tmp_path)
    rng = np.random.default_rng(0)
    write_map(tmp_path / "in.mrc", DensityMap(rng.normal(size=(32, 32, 32)), 1.0))
    out = tmp_path / "out" / "h.mrc"
    out.parent.mkdir()
    lock = out.with_name(".h.mrc.lock")  # taken when the outputs are about to be written
    argv = _cli("sharpen", tmp_path / "in.mrc", "-o", out, "--input-resolution", "4",
                "--checkpoint", model, "--no-progress")  # fmt: skip
    _kill_when(argv, lock.exists)
    if out.exists():  # complete: a readable map on the input's grid, its record beside it
        assert read_map(out).shape == (32, 32, 32)
        assert json.loads(out.with_suffix(".json").read_text())["output"] == str(out)
    assert {p.name for p in out.parent.iterdir() if not p.name.startswith(".")} <= {
        "h.mrc", "h.json"
    }  # fmt: skip


def test_evaluate_report_killed_then_rerun(tmp_path):
    report = tmp_path / "report"
    argv = ["evaluate", EXAMPLES / "1orc.pdb.gz", "--no-models", "--report", report]
    _kill_when(_cli(*argv), (tmp_path / ".report.partial").exists)
    if report.exists():
        assert (report / "report.html").is_file() and (report / "results.json").is_file()
    code, out, err = run_cli(*argv)
    assert code == 0, err
    rows = json.loads((report / "results.json").read_text())
    assert rows and (report / "report.html").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # the partial is gone


def test_simulate_particles_killed_mid_simulation(tmp_path):
    out = tmp_path / "parts"
    partial = tmp_path / ".parts.partial"
    traj = tmp_path / "adk3.pdb"
    from tests.audit_inputs import structures

    structures(tmp_path)  # writes adk3.pdb (a 3-frame trajectory) and a few others
    argv = ["simulate", "particles", "-o", out, "--trajectory", traj, "--n-images", "40",
            "--box", "32", "--pixel-size", "2", "--device", "cpu"]  # fmt: skip
    _kill_when(_cli(*argv), lambda: (partial / "volumes").exists())
    if out.exists():  # complete: the record lists files that are all there
        record = json.loads((out / "dataset.json").read_text())
        assert record["n_images"] == 40
        for name in ("particles.mrcs", "poses.pkl", "ctf.pkl", "particles.star"):
            assert (out / name).is_file()
    code, _, err = run_cli(*argv)  # a rerun clears the killed run's partial folder
    assert code == 0, err
    assert not partial.exists() and (out / "dataset.json").is_file()


def test_data_build_killed_then_resumed_equals_an_uninterrupted_build(tmp_path):
    from densitydiff.data.build import BuildConfig, build_store
    from tests.test_data_store import _assert_same_store

    structures = [EXAMPLES / "1orc.pdb.gz", EXAMPLES / "1aki.cif.gz"]
    options = ["--resolutions", "2,4", "--patch", "16", "--patches-per-structure", "3",
               "--val-fraction", "0", "--test-fraction", "0", "--seed", "3"]  # fmt: skip
    reference = tmp_path / "ref.zarr"
    config = BuildConfig(
        resolutions=(2.0, 4.0), voxel_size=1.0, patch=16, patches_per_structure=3,
        val_fraction=0.0, test_fraction=0.0, seed=3,
    )  # fmt: skip
    build_store(structures, reference, config, progress=False, log=lambda _: None)
    store = tmp_path / "s.zarr"
    argv = ["data", "build", *structures, "-o", store, *options, "--no-progress"]
    first = store / "structures" / "1aki" / "zarr.json"  # built first: ids are sorted
    _kill_when(_cli(*argv), first.exists)
    code, _, err = run_cli(*argv)  # resume
    assert code == 0, err
    _assert_same_store(reference, store)


TRAIN_SCRIPT = """
import sys
import torch
torch.set_num_threads(1)
from tests.test_kill import train
train(sys.argv[1], resume=False)
"""


def train(run: str | Path, resume: bool) -> dict:
    """6 steps of the tiny DDPM on one pair, a checkpoint every 2 steps."""
    from densitydiff.sharpen.config import load_config
    from densitydiff.sharpen.train import train_sharpen
    from tests.sharpen_pairs import PairDataset, make_pair

    cfg = load_config("tiny", {"model": "ddpm", "trainer": {
        "max_steps": 6, "batch_size": 1, "val_every_n_steps": 2, "monitor_every_n_steps": 0,
    }})  # fmt: skip
    data = PairDataset([make_pair(16, 0)])
    return train_sharpen(
        cfg, run, dataset=data, val_dataset=data, resume=resume, progress_bar=False
    )


def test_train_sharpen_killed_then_resumed_equals_an_uninterrupted_run(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(TRAIN_SCRIPT)
    run = tmp_path / "run"
    last = run / "checkpoints" / "last.ckpt"
    _kill_when([sys.executable, str(script), str(run)], last.exists)
    train(run, resume=True)
    train(tmp_path / "straight", resume=False)
    a = torch.load(last, weights_only=True)
    b = torch.load(tmp_path / "straight" / "checkpoints" / "last.ckpt", weights_only=True)
    assert a["global_step"] == b["global_step"] == 6
    for key in b["state_dict"]:
        torch.testing.assert_close(a["state_dict"][key], b["state_dict"][key], msg=key)


def test_prior_train_killed_then_resumed_equals_an_uninterrupted_run(tmp_path):
    import yaml

    from densitydiff.prior.synthetic import circular

    np.save(tmp_path / "z.npy", circular(400, dim=3, seed=2))
    (tmp_path / "small.yaml").write_text(
        yaml.safe_dump({"width": 16, "depth": 2, "emb_dim": 8, "batch_size": 100, "seed": 5})
    )
    args = ["--epochs", "6", "--config", tmp_path / "small.yaml", "--no-progress", "--threads", "1"]
    run = tmp_path / "run"
    last = run / "checkpoints" / "last.ckpt"
    _kill_when(_cli("prior", "train", tmp_path / "z.npy", "-o", run, *args), last.exists)
    if (run / "prior.pt").exists():  # finished before the kill: nothing to resume
        resumed = run / "prior.pt"
    else:
        code, _, err = run_cli("prior", "train", tmp_path / "z.npy", "-o", run, *args, "--resume")
        assert code == 0, err
        resumed = run / "prior.pt"
    code, _, err = run_cli("prior", "train", tmp_path / "z.npy", "-o", tmp_path / "straight", *args)
    assert code == 0, err
    a = torch.load(resumed, weights_only=True)
    b = torch.load(tmp_path / "straight" / "prior.pt", weights_only=True)
    assert a["epochs_trained"] == b["epochs_trained"] == 6
    for key in b["state_dict"]:
        torch.testing.assert_close(a["state_dict"][key], b["state_dict"][key], msg=key)


def test_hetero_train_killed_then_resumed_equals_an_uninterrupted_run(tmp_path):
    from tests.hetero_sets import make_set

    s = make_set(tmp_path, n=24, D=16)
    data = [s["particles"], "--poses", s["poses"], "--ctf", s["ctf"]]
    args = ["--config", "tiny", "--epochs", "3", "--batch-size", "8", "--chunk-size", "8",
            "--no-progress", "--threads", "1"]  # fmt: skip
    run = tmp_path / "run"
    last = run / "checkpoints" / "last.ckpt"
    _kill_when(_cli("hetero", "train", *data, "-o", run, *args), last.exists)
    if not (run / "weights.pt").exists():  # killed: resume from the last checkpoint
        code, _, err = run_cli("hetero", "train", *data, "-o", run, *args, "--resume")
        assert code == 0, err
    code, _, err = run_cli("hetero", "train", *data, "-o", tmp_path / "straight", *args)
    assert code == 0, err
    a = torch.load(run / "weights.pt", weights_only=True)
    b = torch.load(tmp_path / "straight" / "weights.pt", weights_only=True)
    assert a["epochs_trained"] == b["epochs_trained"] == 3
    for key in b["state_dict"]:
        torch.testing.assert_close(a["state_dict"][key], b["state_dict"][key], msg=key)
