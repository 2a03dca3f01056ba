"""bench/calibrate.py: the std scale on a synthetic case with a known answer, a store's
validation split as the structures, and the re-exported model (weights untouched)."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch
from conftest import EXAMPLES, REPO

pytestmark = pytest.mark.usefixtures("one_thread")


def _bench(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_std_half_the_error_spread_gets_scale_two():
    """truth - mean ~ N(0, (2 std)^2) per voxel: c = 2, and 1-std coverage before is P(|z| <=
    1/2) = 0.383, 2-std 0.683; after, 0.683 and 0.954 (normal quantiles, not the code's)."""
    calibrate = _bench("calibrate").calibrate
    rng = np.random.default_rng(0)
    pairs = []
    for n in (20_000, 30_000):  # two maps, pooled
        mean = rng.normal(size=n)
        std = np.exp(rng.uniform(np.log(0.1), np.log(2.0), n))
        pairs.append((mean, std, mean + 2 * std * rng.normal(size=n)))
    for level in (1, 2):
        out = calibrate(pairs, current_scale=1.0, level=level)
        assert out["scale"] == pytest.approx(2.0, rel=0.03), level
        assert out["voxels"] == 50_000 and out["zero_std"] == 0
        assert out["before"]["coverage_1"] == pytest.approx(0.3829, abs=0.01)
        assert out["before"]["coverage_2"] == pytest.approx(0.6827, abs=0.01)
        assert out["after"]["coverage_1"] == pytest.approx(0.6827, abs=0.01)
        assert out["after"]["coverage_2"] == pytest.approx(0.9545, abs=0.006)
        # a scale does not change ranks
        assert out["after"]["spearman_box"] == pytest.approx(out["before"]["spearman_box"])
    # a model already carrying 2: "before" is already calibrated
    assert calibrate(pairs, 2.0)["before"]["coverage_2"] == pytest.approx(0.9545, abs=0.006)


def test_export_keeps_the_weights_and_their_precision(tmp_path):
    from tiny_models import export_tiny

    from densitydiff.sharpen.checkpoint import export_sharpener, load_sharpener
    from densitydiff.torchfile import read_torch_file

    calibrate = _bench("calibrate")
    export_tiny("ddpm", tmp_path, name="plain")  # named: built here, with its run
    ckpt = tmp_path / "run_ddpm" / "checkpoints" / "last.ckpt"
    pairs = [[4.0, 2.0], [3.0, 2.0]]
    for half in (False, True):
        source = export_sharpener(ckpt, tmp_path / f"src{half}.pt", voxel_size=1.0, patch=16,
                                  training_structures=["1abc"], half=half, name="m",
                                  training_pairs=pairs)  # fmt: skip
        out = tmp_path / f"out{half}.pt"
        calibrate.export_with_scale(load_sharpener(source), source, out, 2.5)
        a, b = read_torch_file(source, "model"), read_torch_file(out, "model")
        assert b["extra"]["std_scale"] == 2.5 and "std_scale" not in a["extra"]
        assert b["extra"]["training_pairs"] == pairs and b["training_structures"] == ["1abc"]
        assert b["name"] == "m" and b["config"] == a["config"] and b["patch"] == 16
        assert a["state_dict"].keys() == b["state_dict"].keys()
        for k, v in a["state_dict"].items():
            assert b["state_dict"][k].dtype == v.dtype, k
            torch.testing.assert_close(b["state_dict"][k], v, rtol=0, atol=0, msg=k)
        assert load_sharpener(out).std_scale == 2.5
    # a scale fitted with another recipe writes that recipe as the file's default
    out = tmp_path / "steps.pt"
    calibrate.export_with_scale(load_sharpener(source), source, out, 3.0, "ddim", 4)
    d = read_torch_file(out, "model")["config"]["diffusion"]
    assert (d["sampler"], d["sample_steps"]) == ("ddim", 4)
    assert read_torch_file(source, "model")["config"]["diffusion"]["sample_steps"] != 4


@pytest.fixture
def store(tmp_path):
    """A store root whose split puts 1orc in val (the layout's own writer, no patches)."""
    from densitydiff.data.build import BuildConfig
    from densitydiff.data.layout import open_root, root_attrs

    path = tmp_path / "s.zarr"
    split = {"1orc": "val", "1aki": "train", "3mfp": "test"}
    sources = {"1orc": "1orc.pdb.gz", "1aki": "1aki.cif.gz", "3mfp": "3mfp.pdb.gz"}
    open_root(path, root_attrs(BuildConfig(resolutions=(2.0, 4.0)), split, sources, None))
    return path


def test_split_structures_reads_the_store(store):
    from densitydiff.data.layout import split_structures
    from densitydiff.errors import InputError

    assert split_structures(store, "val") == {"1orc": "1orc.pdb.gz"}
    assert split_structures(store, "train") == {"1aki": "1aki.cif.gz"}
    with pytest.raises(InputError):
        split_structures(store, "nope")


def test_calibrate_on_the_validation_split_then_evaluate_with_the_scale(store, tmp_path, capsys):
    """The fitted c is the 95.4 % quantile of |error| / std over the validation voxels, so the
    exported model's 2-std coverage on the same maps (bench/evaluate.py, same seed) is 95.4 %
    of the voxels with a std (one map: up to a voxel)."""
    from tiny_models import export_tiny

    from densitydiff.sharpen.checkpoint import load_sharpener

    model = export_tiny("ddpm", tmp_path)
    common = ["--structures-dir", str(EXAMPLES), "--samples", "2", "--steps", "2",
              "--b-factors", "--store", str(store), "--split", "val"]  # fmt: skip
    out, result = tmp_path / "cal.pt", tmp_path / "cal.json"
    code = _bench("calibrate").main(["--checkpoint", str(model), *common, "--export", str(out),
                                     "--out", str(result)])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    record = json.loads(result.read_text())
    assert [p.split("/")[-1] for p in record["structures"]] == ["1orc.pdb.gz"]
    assert f"std_scale = {record['scale']:.4g}" in printed
    assert load_sharpener(out).std_scale == pytest.approx(record["scale"])

    rows_json = tmp_path / "rows.json"
    assert (
        _bench("evaluate").main(["--checkpoint", str(out), *common, "--out", str(rows_json)]) == 0
    )
    table = capsys.readouterr().out
    assert "2-std cover" in table and "val structures of" in table
    rows = json.loads(rows_json.read_text())["rows"]
    assert {r["structure"] for r in rows} == {"1orc"}
    row = next(r for r in rows if r["method"] == "tiny_ddpm")
    expected = 0.9545 * (1 - record["zero_std"])
    assert row["coverage_2"] == pytest.approx(expected, abs=2.0 / record["voxels"] + 1e-4)
