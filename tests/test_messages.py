"""What a user reads: numbers without float noise, human sizes, plurals, one-line warnings,
progress bars only on a terminal, and no Lightning banners (docs/cli.md).

Commands run in-process through the CLI's `main` with stdout/stderr redirected (not a
terminal), or in a subprocess where what Python itself prints (warnings, logging) matters.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from densitydiff.console import decimal, human_bytes, plural, show_progress
from densitydiff.formats.maps import write_map
from densitydiff.maps import DensityMap
from tests.conftest import EXAMPLES, REPO

pytestmark = pytest.mark.usefixtures("one_thread")
BANNERS = ("GPU available", "TPU available", "HPU available", "litlogger", "Tip:", "deprecated",
           "Trainer.fit", "LOCAL_RANK", "Warning", "warning:", "val_dataloader",
           "logging interval")  # fmt: skip
BAR = re.compile(r"\d+it/s|it/s]|━|█|\r")  # tqdm and rich progress bars


def _subprocess(*args, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + str(REPO)}
    return subprocess.run([sys.executable, "-m", "densitydiff", *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=600)  # fmt: skip


def test_formatting_helpers_against_hand_values():
    assert decimal(1.7419999837875366) == "1.742" and decimal(2.0) == "2"
    assert decimal(-0.00001) == "0"
    assert decimal(-12.34567) == "-12.3457" and decimal(0.5) == "0.5"
    assert [human_bytes(n) for n in (0, 999, 1000, 12_345_678, 3 * 10**9)] == [
        "0 B", "999 B", "1.0 kB", "12.3 MB", "3.0 GB"]  # fmt: skip
    assert (plural(1, "tile"), plural(0, "tile"), plural(3, "tile")) == ("1 tile", "0 tiles",
                                                                        "3 tiles")  # fmt: skip


def test_info_prints_voxel_size_and_origin_without_float_noise(cli, tmp_path):
    path = tmp_path / "m.mrc"
    array = np.random.default_rng(0).normal(size=(4, 5, 6)).astype(np.float32)
    write_map(path, DensityMap(array, (1.742, 1.742, 1.742), (10.2, -3.1, 0.0)))
    code, out, err = cli("info", path)
    assert code == 0, err
    lines = {line.split()[0]: line.split(None, 1)[1] for line in out.splitlines()}
    assert lines["voxel_size_xyz"] == "[1.742, 1.742, 1.742]"  # float32 1.7419999837875366
    assert lines["origin_xyz"] == "[0, -3.1, 10.2]"  # x, y, z
    assert lines["shape_xyz"] == "[6, 5, 4]"
    assert float(lines["mean"]) == pytest.approx(float(array.astype(np.float64).mean()), 1e-5)


def test_data_info_prints_human_sizes(cli, tmp_path):
    store = tmp_path / "s.zarr"
    code, _, err = cli("data", "build", EXAMPLES / "1orc.pdb.gz", "-o", store, "--resolutions",
                       "3,5", "--voxel-size", "1.5", "--patch", "16", "--patches-per-structure",
                       "2", "--no-progress")  # fmt: skip
    assert code == 0, err
    code, out, err = cli("data", "info", store)
    assert code == 0, err
    size = re.search(r"^size\s+(\S+ \S+) on disk, (\S+ \S+) uncompressed$", out, re.M)
    assert size, out
    # two resolutions x 2 patches of 16^3 float16 values, uncompressed
    assert size.group(2) == human_bytes(2 * 2 * 16**3 * 2)
    assert not re.search(r"\b\d{5,}\b", out)  # no raw byte counts


def test_sharpen_says_1_tile(cli, tmp_path):
    from tests.tiny_models import export_tiny

    model = export_tiny("unet", tmp_path)
    inp = tmp_path / "in.mrc"
    array = np.random.default_rng(1).normal(size=(10, 10, 10)).astype(np.float32)  # < one patch
    write_map(inp, DensityMap(array, (1.0, 1.0, 1.0)))
    code, out, err = cli("sharpen", inp, "-o", tmp_path / "out.mrc", "-c", model,
                         "--input-resolution", "4")  # fmt: skip
    assert code == 0, err
    assert ": 1 tile (0 solvent, skipped)" in out, out


def test_fractional_origin_warning_is_one_line_in_xyz(tmp_path):
    from densitydiff.formats.maps import read_map

    out = tmp_path / "out.map"  # the simulation box starts at the atoms: not on whole voxels
    done = _subprocess("simulate", "map", EXAMPLES / "1orc.pdb.gz", "-o", out, "-r", "6",
                       "--voxel-size", "3")  # fmt: skip
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "ChimeraX" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: "), done.stderr
    x, y, z = (decimal(v) for v in read_map(out).origin[::-1])
    assert f"origin ({x}, {y}, {z}) Å (x, y, z)" in warnings[0], warnings[0]
    assert "UserWarning" not in done.stderr and "warnings.warn" not in done.stderr


def test_progress_policy_terminal_or_flag(cli, monkeypatch):
    class Terminal:
        def isatty(self):
            return True

    assert show_progress(None, Terminal()) and not show_progress(None, open(os.devnull))
    assert show_progress(True, open(os.devnull)) and not show_progress(False, Terminal())
    # the demo asks for a bar only when stderr is a terminal or --progress is given
    import densitydiff.sharpen.demo as demo
    from densitydiff.errors import InputError

    seen = []

    def fake_run_demo(out_dir, **kw):
        seen.append(kw["progress"])
        raise InputError("stop")

    monkeypatch.setattr(demo, "run_demo", fake_run_demo)
    assert cli("demo")[0] == 2 and cli("demo", "--progress")[0] == 2
    assert seen == [False, True]


def test_evaluate_draws_a_bar_only_when_asked(cli):
    args = ["evaluate", EXAMPLES / "1orc.pdb.gz", "--no-models", "--voxel-size", "1"]
    code, out, err = cli(*args)
    assert code == 0 and not BAR.search(err), err
    code, out, err = cli(*args, "--progress")
    assert code == 0 and "evaluate" in err and "1/1" in err, err
    assert not BAR.search(out)  # the table on stdout stays clean


def test_training_prints_no_lightning_banners_and_no_bar_when_redirected(tmp_path):
    from densitydiff.data.build import BuildConfig, build_store

    np.save(tmp_path / "z.npy", np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32))
    done = _subprocess("prior", "train", "z.npy", "-o", "prior", "--epochs", "2",
                       "--batch-size", "32", "--threads", "1", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"wrote {os.path.join('prior', 'prior.pt')}", done.stdout
    for banner in BANNERS:
        assert banner not in done.stderr + done.stdout, (banner, done.stderr)
    assert not BAR.search(done.stderr + done.stdout)

    store = tmp_path / "store.zarr"
    config = BuildConfig(resolutions=(2.0, 4.0), voxel_size=1.0, patch=16,
                         patches_per_structure=2, dtype="float32", val_fraction=0,
                         test_fraction=0)  # fmt: skip
    build_store([EXAMPLES / "1orc.pdb.gz"], store, config, progress=False, log=lambda _: None)
    done = _subprocess("train", "sharpen", "--data", store, "--model", "unet", "-o",
                       tmp_path / "run", "--max-steps", "2", "--batch-size", "2", "--threads",
                       "1")  # fmt: skip
    assert done.returncode == 0, done.stderr
    for banner in BANNERS:
        assert banner not in done.stderr + done.stdout, (banner, done.stderr)
    assert not BAR.search(done.stderr + done.stdout)
    assert done.stdout.startswith("trained unet to step 2")


def test_prior_train_progress_bar_goes_to_stderr_not_stdout(cli, tmp_path):
    np.save(tmp_path / "z.npy", np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32))
    code, out, err = cli("prior", "train", tmp_path / "z.npy", "-o", tmp_path / "run",
                         "--epochs", "2", "--batch-size", "32", "--progress")  # fmt: skip
    assert code == 0, err
    assert out == f"wrote {tmp_path / 'run' / 'prior.pt'}\n"  # the result only
    assert BAR.search(err) and "Epoch" in err, err


def test_hetero_training_prints_no_lightning_warnings(tmp_path):
    """`hetero train` on a redirected stderr: no Lightning remark about its loader or banners."""
    from densitydiff.formats.ctf import CTFParams, save_ctf
    from densitydiff.formats.mrcs import write_particles
    from densitydiff.formats.particles import save_poses

    n, D = 16, 16
    rng = np.random.default_rng(0)
    write_particles(tmp_path / "p.mrcs", rng.normal(size=(n, D, D)).astype(np.float32), 3.0)
    save_poses(tmp_path / "poses.pkl", np.tile(np.eye(3, dtype=np.float32), (n, 1, 1)),
               np.zeros((n, 2), np.float32))  # fmt: skip
    one = np.ones(n)
    save_ctf(tmp_path / "ctf.pkl", CTFParams(D * one, 3.0 * one, 2e4 * one, 2e4 * one, 0 * one,
                                             300 * one, 2.7 * one, 0.1 * one, 0 * one))  # fmt: skip
    done = _subprocess("hetero", "train", "p.mrcs", "--poses", "poses.pkl", "--ctf", "ctf.pkl",
                       "-o", "run", "--epochs", "1", "--config", "tiny", "--zdim", "2",
                       "--threads", "1", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    for banner in BANNERS:
        assert banner not in done.stderr + done.stdout, (banner, done.stderr)
    assert not BAR.search(done.stderr + done.stdout)
