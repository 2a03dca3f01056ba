"""Lightning training: run files, checkpoints (weights_only), same seed same weights, resume to
the same step and state, a 2-process CPU DDP run, and the CLI's bad inputs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from sharpen_pairs import PairDataset, make_pair

from densitydiff.errors import InputError
from densitydiff.sharpen.config import load_config
from densitydiff.sharpen.train import train_sharpen

REPO = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_thread")


def _config(model: str, steps: int):
    return load_config(
        "tiny",
        {
            "model": model,
            "trainer": {
                "max_steps": steps,
                "batch_size": 1,
                "val_every_n_steps": 2,
                "monitor_every_n_steps": 2,
                "log_every_n_steps": 1,
            },
        },
    )


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["state_dict"]


def test_ddpm_run_same_seed_and_resume(tmp_path):
    data = PairDataset([make_pair(16, 0)])
    val = PairDataset([make_pair(16, 1)])
    a = train_sharpen(_config("ddpm", 4), tmp_path / "a", dataset=data, val_dataset=val)
    b = train_sharpen(_config("ddpm", 4), tmp_path / "b", dataset=data, val_dataset=val)
    c = train_sharpen(_config("ddpm", 2), tmp_path / "c", dataset=data, val_dataset=val)
    c = train_sharpen(
        _config("ddpm", 4), tmp_path / "c", dataset=data, val_dataset=val, resume=True
    )
    assert a["global_step"] == b["global_step"] == c["global_step"] == 4

    ckpt = torch.load(a["last"], weights_only=True)  # checkpoint round trip without pickle
    assert ckpt["global_step"] == 4
    assert int(ckpt["optimizer_states"][0]["state"][0]["step"]) == 4
    assert ckpt["hyper_parameters"]["config"]["model"] == "ddpm"
    assert any(k.startswith("ema.") for k in ckpt["state_dict"])
    resumed = torch.load(c["last"], weights_only=True)
    assert int(resumed["optimizer_states"][0]["state"][0]["step"]) == 4
    assert resumed["lr_schedulers"][0]["last_epoch"] == 4

    wa, wb, wc = _weights(Path(a["last"])), _weights(Path(b["last"])), _weights(Path(c["last"]))
    assert wa.keys() == wb.keys() == wc.keys()
    for key in wa:  # same seed: same weights; 2 + 2 resumed steps: same as 4 straight
        torch.testing.assert_close(wa[key], wb[key], rtol=0, atol=0, msg=key)
        torch.testing.assert_close(wa[key], wc[key], rtol=1e-6, atol=1e-7, msg=key)
    # the weights moved, so the comparison above is not between untouched initialisations
    fresh = torch.load(Path(c["run_dir"]) / "checkpoints" / "best.ckpt", weights_only=True)
    assert fresh["global_step"] in (2, 4)

    run = Path(a["run_dir"])
    saved = load_config(run / "config.yaml")
    assert saved == _config("ddpm", 4)
    info = yaml.safe_load((run / "run.yaml").read_text())
    assert info["seed"] == 0 and info["versions"]["torch"].startswith(torch.__version__[:4])
    assert (run / "structures.txt").is_file()
    assert Path(a["best"]).is_file()
    assert sorted(p.name for p in (run / "monitor").glob("*.png")) == [
        "step_0000002.png",
        "step_0000004.png",
    ]
    metrics = (next((run / "logs").glob("version_*")) / "metrics.csv").read_text()
    for column in ("train/loss", "val/loss", "monitor/fsc_auc", "monitor/psnr", "monitor/ssim"):
        assert column in metrics
    assert "perf/step_time_s" in metrics and "perf/peak_cpu_rss_mb" in metrics
    assert not list(run.rglob("*.tmp"))  # no temporary checkpoint left behind

    with pytest.raises(InputError, match="already holds a run"):
        train_sharpen(_config("ddpm", 4), run, dataset=data)
    with pytest.raises(InputError, match="cannot resume"):
        train_sharpen(_config("ddpm", 4), tmp_path / "new", dataset=data, resume=True)


DDP_SCRIPT = """
import sys, torch
sys.path.insert(0, {tests!r})
torch.set_num_threads(1)
from sharpen_pairs import PairDataset, make_pair
from densitydiff.sharpen.config import load_config
from densitydiff.sharpen.train import train_sharpen
cfg = load_config("tiny", {{"model": "unet", "trainer": {{"max_steps": 3, "batch_size": 1,
    "devices": 2, "accelerator": "cpu", "monitor_every_n_steps": 0, "val_every_n_steps": 3}}}})
data = PairDataset([make_pair(16, 0), make_pair(16, 1)], length=4)
r = train_sharpen(cfg, {run!r}, dataset=data, val_dataset=data, progress_bar=False)
print("STEP", r["global_step"], "WORLD", r["module"].trainer.world_size)
"""


def test_two_process_cpu_ddp(tmp_path):
    script = tmp_path / "ddp_run.py"
    run = tmp_path / "run"
    script.write_text(DDP_SCRIPT.format(tests=str(REPO / "tests"), run=str(run)))
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1")
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=240
    )
    elapsed = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "STEP 3 WORLD 2" in proc.stdout, proc.stdout
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 3
    print(f"2-process DDP run: {elapsed:.1f} s")


def test_cli_bad_inputs(cli, tmp_path):
    code, out, err = cli("train", "sharpen", "--data", tmp_path / "missing", "-o", tmp_path / "r")
    assert code == 2 and "no training store" in err and len(err.strip().splitlines()) == 1
    store = tmp_path / "store"
    store.mkdir()
    code, out, err = cli(
        "train", "sharpen", "--data", store, "-o", tmp_path / "r", "--config", "huge"
    )
    assert code == 2 and "neither a preset" in err
    code, out, err = cli(
        "train", "sharpen", "--data", store, "-o", tmp_path / "r", "--model", "gan"
    )
    assert code == 2 and "unknown model" in err
    code, out, err = cli(
        "train", "sharpen", "--data", store, "-o", tmp_path / "r", "--precision", "8"
    )
    assert code == 2 and "unknown precision" in err
    code, out, err = cli("train", "sharpen", "--data", store, "-o", tmp_path / "r", "--resume")
    assert code == 2 and "cannot resume" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("net: {widthz: [8]}\n")
    code, out, err = cli("train", "sharpen", "--data", store, "-o", tmp_path / "r", "--config", bad)
    assert code == 2 and "widthz" in err


def test_cli_trains_on_a_store(cli, tmp_path):
    from densitydiff.data.build import BuildConfig, build_store
    from densitydiff.data.layout import read_root

    examples = REPO / "src" / "densitydiff" / "examples"
    store = tmp_path / "store.zarr"
    config = BuildConfig(
        resolutions=(2.0, 4.0),
        voxel_size=1.0,
        patch=16,
        patches_per_structure=2,
        dtype="float32",
        seed=0,
        val_fraction=0.5,
        test_fraction=0,
    )
    build_store(
        [examples / "1orc.pdb.gz", examples / "1aki.cif.gz"],
        store,
        config,
        progress=False,
        log=lambda _: None,
    )
    run = tmp_path / "run"
    args = ["train", "sharpen", "--data", store, "--model", "unet", "-o", run]
    code, out, err = cli(*args, "--max-steps", "3", "--batch-size", "2")
    assert code == 0, err
    assert "step 3" in out
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 3
    from densitydiff.sharpen.checkpoint import load_sharpener

    trained = load_sharpener(run / "checkpoints" / "last.ckpt")  # the store's geometry, saved
    assert (trained.voxel_size, trained.patch) == (1.0, 16) and "geometry" not in trained.extra
    # the store's pairs are the model's training range (docs/sharpen.md, "Guards")
    pairs = [list(p) for p in read_root(store)["pairs"]]
    assert trained.extra["training_pairs"] == pairs
    assert trained.training_range["input"] == [min(p[0] for p in pairs), max(p[0] for p in pairs)]
    listed = (run / "structures.txt").read_text().split()
    assert listed and set(listed) <= {"1orc", "1aki"}
    code, out, err = cli(*args, "--max-steps", "5", "--resume")  # keeps the run's config
    assert code == 0, err
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 5
