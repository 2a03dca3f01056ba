"""`densitydiff sharpen`: outputs on the input's grid, the JSON record, samples, bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sharpen_pairs import blobs

from densitydiff.formats.maps import read_map, write_map
from densitydiff.maps import DensityMap
from densitydiff.sharpen.checkpoint import FORMAT
from densitydiff.sharpen.config import load_config, to_dict
from densitydiff.sharpen.models import build_model

pytestmark = pytest.mark.usefixtures("one_thread")


def _model_file(path, kind="unet"):
    """A randomly initialised tiny model in the exported format (1 Å voxels, 16^3 patches)."""
    config = load_config("tiny", {"model": kind})
    torch.manual_seed(0)
    model = build_model(config)
    data = {
        "format": FORMAT,
        "name": f"tiny-{kind}",
        "config": to_dict(config),
        "state_dict": model.state_dict(),
        "voxel_size": 1.0,
        "patch": 16,
        "training_structures": ["none"],
        "extra": {},
    }
    torch.save(data, path)
    return path


@pytest.fixture
def files(tmp_path):
    vol = (blobs(24, np.random.default_rng(0), count=30)[:, :20, :] * 5 + 1).astype(np.float32)
    density = DensityMap(vol, (1.0, 1.1, 0.9), (12.0, -3.0, 40.0))
    write_map(tmp_path / "in.mrc", density)
    return tmp_path, _model_file(tmp_path / "unet.pt"), _model_file(tmp_path / "ddpm.pt", "ddpm")


def test_sharpen_writes_map_on_the_input_grid_and_a_record(cli, files):
    tmp, unet, _ = files
    out = tmp / "out.mrc"
    args = ("sharpen", tmp / "in.mrc", "-o", out, "--checkpoint", unet, "--input-resolution", 4)
    code, stdout, err = cli(*args, "--target-resolution", 2.5, "--seed", 3)
    assert code == 0, err
    a, b = read_map(tmp / "in.mrc"), read_map(out)
    assert b.same_grid(a) and np.all(np.isfinite(b.array))
    record = json.loads((tmp / "out.json").read_text())
    assert record["model"] == "tiny-unet" and record["kind"] == "unet"
    assert record["seed"] == 3 and record["target_resolution"] == 2.5
    assert record["inference"]["resampled"] is True  # 1.1 and 0.9 Å voxels -> 1 Å
    assert record["config"]["net"]["widths"] == [8, 16] and "torch" in record["versions"]
    assert "tiles" in stdout


def test_samples_write_mean_and_std(cli, files):
    tmp, _, ddpm = files
    out, std = tmp / "mean.mrc", tmp / "std.mrc"
    code, _, err = cli(
        "sharpen", tmp / "in.mrc", "-o", out, "--checkpoint", ddpm, "--input-resolution", 4,
        "--samples", 2, "--std-out", std, "--sampler", "ddim", "--steps", 2,
    )  # fmt: skip
    assert code == 0, err
    s = read_map(std)
    assert s.same_grid(read_map(tmp / "in.mrc")) and s.array.min() >= 0 and s.array.max() > 0
    assert json.loads((tmp / "mean.json").read_text())["inference"]["sampler"] == "ddim"


def test_unet_with_samples_says_std_is_zero(cli, files):
    tmp, unet, _ = files
    code, _, err = cli(
        "sharpen", tmp / "in.mrc", "-o", tmp / "o.mrc", "--checkpoint", unet,
        "--input-resolution", 4, "--samples", 2, "--std-out", tmp / "s.mrc",
    )  # fmt: skip
    assert code == 0, err
    assert "deterministic" in err and np.all(read_map(tmp / "s.mrc").array == 0)


def _p222_ccp4(path, shape=(20, 18, 16)):
    """A CCP4 map in space group P222 (orthogonal), symmetric so expansion keeps it; (z, y, x)."""
    import gemmi

    g = np.random.default_rng(0).normal(size=shape)

    def minus(a, axes):  # a(-i) on the periodic grid along `axes`
        for ax in axes:
            a = np.roll(np.flip(a, ax), 1, ax)
        return a

    vol = (g + minus(g, (1, 2)) + minus(g, (0, 2)) + minus(g, (0, 1))).astype(np.float32)
    ccp4 = gemmi.Ccp4Map()
    ccp4.grid = gemmi.FloatGrid(np.ascontiguousarray(vol.transpose(2, 1, 0)))
    ccp4.grid.unit_cell = gemmi.UnitCell(shape[2], shape[1], shape[0], 90, 90, 90)  # 1 Å voxels
    ccp4.grid.spacegroup = gemmi.find_spacegroup_by_name("P 2 2 2")
    ccp4.update_ccp4_header(2)
    ccp4.write_ccp4_map(str(path))
    return vol


def test_xray_map_with_an_orthogonal_cell_is_sharpened_periodically(cli, tmp_path):
    import mrcfile

    vol = _p222_ccp4(tmp_path / "x.ccp4")
    density = read_map(tmp_path / "x.ccp4")
    assert density.unit_cell == (16.0, 18.0, 20.0, 90.0, 90.0, 90.0)  # expanded to the cell
    assert np.allclose(density.array, vol, atol=1e-5)
    model = _model_file(tmp_path / "u.pt")
    code, _, err = cli(
        "sharpen", tmp_path / "x.ccp4", "-o", tmp_path / "y.ccp4", "--checkpoint", model,
        "--input-resolution", 4,
    )  # fmt: skip
    assert code == 0, err
    out = read_map(tmp_path / "y.ccp4")
    assert out.same_grid(density) and np.all(np.isfinite(out.array))
    with mrcfile.open(tmp_path / "y.ccp4") as mrc:  # the cell is written (as P1)
        assert np.allclose(
            [mrc.header.cella.x, mrc.header.cella.y, mrc.header.cella.z], [16, 18, 20]
        )
    assert json.loads((tmp_path / "y.json").read_text())["inference"]["periodic"] is True


def _bad_cases(tmp):
    nan = np.ones((16, 16, 16), np.float32)
    nan[1, 2, 3] = np.nan
    write_map(tmp / "nan.mrc", DensityMap(nan, 1.0))
    write_map(tmp / "small.mrc", DensityMap(np.random.rand(16, 5, 16), 1.0))
    (tmp / "corrupt.pt").write_bytes(b"garbage" * 100)
    ok = ("--input-resolution", "4")
    return {
        "missing map": ("sharpen", tmp / "none.mrc", "-o", tmp / "o.mrc", *ok),
        "nan map": ("sharpen", tmp / "nan.mrc", "-o", tmp / "o.mrc", *ok),
        "small map": ("sharpen", tmp / "small.mrc", "-o", tmp / "o.mrc", *ok),
        "target >= input": ("sharpen", tmp / "in.mrc", "-o", tmp / "o.mrc", *ok,
                            "--target-resolution", "4"),
        "resolution <= 0": ("sharpen", tmp / "in.mrc", "-o", tmp / "o.mrc",
                            "--input-resolution", "0"),
        "no resolution": ("sharpen", tmp / "in.mrc", "-o", tmp / "o.mrc"),
        "samples 0": ("sharpen", tmp / "in.mrc", "-o", tmp / "o.mrc", *ok, "--samples", "0"),
        "std-out with 1 sample": ("sharpen", tmp / "in.mrc", "-o", tmp / "o.mrc", *ok,
                                  "--std-out", tmp / "s.mrc"),
        "unknown sampler": ("sharpen", tmp / "in.mrc", "-o", tmp / "o.mrc", *ok,
                            "--sampler", "euler"),
        "missing checkpoint": ("sharpen", tmp / "in.mrc", "-o", tmp / "o.mrc", *ok,
                               "--checkpoint", tmp / "none.pt"),
        "corrupt checkpoint": ("sharpen", tmp / "in.mrc", "-o", tmp / "o.mrc", *ok,
                               "--checkpoint", tmp / "corrupt.pt"),
        "cuda": ("sharpen", tmp / "in.mrc", "-o", tmp / "o.mrc", *ok, "--device", "cuda"),
        "bad output suffix": ("sharpen", tmp / "in.mrc", "-o", tmp / "o.txt", *ok),
        "exact tiles, GroupNorm": ("sharpen", tmp / "in.mrc", "-o", tmp / "o.mrc", *ok,
                                   "--exact-tiles"),
    }  # fmt: skip


def test_bad_inputs_exit_2_with_one_line_and_write_nothing(cli, files, monkeypatch):
    tmp, unet, _ = files
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as on CI
    for what, args in _bad_cases(tmp).items():
        if "--checkpoint" not in args:
            args = (*args, "--checkpoint", unet)
        code, out, err = cli(*args)
        assert code == 2, (what, err)
        assert err.count("\n") == 1 and err.startswith("densitydiff: error:"), (what, err)
        for name in ("o.mrc", "o.txt", "s.mrc", "o.json"):
            assert not (tmp / name).exists(), (what, name)


def test_without_a_packaged_model_the_error_says_what_to_do(cli, files, monkeypatch):
    from densitydiff.sharpen import checkpoint as ck

    tmp, _, _ = files
    monkeypatch.setattr(ck, "MODELS_DIR", tmp / "nowhere")
    code, _, err = cli("sharpen", tmp / "in.mrc", "-o", tmp / "o.mrc", "--input-resolution", 4)
    assert code == 2 and "--checkpoint" in err and not (tmp / "o.mrc").exists()
