"""The base install's main commands in-process, with every extra's modules blocked.

`make test-base` (in .ci/run) checks the same in a fresh venv without extras; this test keeps
an import of lightning, diffusers, zarr, starfile or pandas from creeping back into the
sharpening, simulation or prior-sampling paths between those runs.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from tests.conftest import EXAMPLES, run_cli

BLOCKED = ("lightning", "lightning.pytorch", "diffusers", "zarr", "starfile", "pandas")


@pytest.fixture
def no_extras(monkeypatch):
    for name in BLOCKED:
        monkeypatch.setitem(sys.modules, name, None)  # `import name` now fails


def test_main_commands_run_without_extras(no_extras, tmp_path, one_thread):
    from densitydiff.prior.checkpoint import save_prior
    from densitydiff.prior.config import PriorConfig
    from densitydiff.prior.latents import LatentStats
    from densitydiff.prior.network import build_denoiser

    a = tmp_path / "a6.mrc"
    for argv in (
        ["simulate", "map", EXAMPLES / "1orc.pdb.gz", "-o", a, "-r", "6"],
        ["sharpen", a, "-o", tmp_path / "s.mrc", "--input-resolution", "6", "--steps", "1"],
        ["simulate", "particles", "-o", tmp_path / "p", "--device", "cpu", "--structures",
         EXAMPLES / "1orc.pdb.gz", EXAMPLES / "1orc.pdb.gz", "--n-images", "4", "--box", "16",
         "--pixel-size", "4"],
    ):  # fmt: skip
        code, _, err = run_cli(*argv)
        assert code == 0, (argv[:2], err)
    assert (tmp_path / "p" / "particles.star").is_file()
    z = np.random.default_rng(0).normal(size=(16, 2)).astype(np.float32)
    cfg = PriorConfig(width=8, depth=1, emb_dim=8)
    stats = LatentStats(z.mean(0), z.std(0))
    save_prior(tmp_path / "prior" / "prior.pt", build_denoiser(2, cfg), cfg, stats, z,
               epochs_trained=0, versions={})  # fmt: skip
    code, _, err = run_cli("prior", "sample", tmp_path / "prior", "-n", "8", "-o",
                           tmp_path / "z.npy")  # fmt: skip
    assert code == 0, err
    assert np.load(tmp_path / "z.npy").shape == (8, 2)
    # a hetero run as `hetero train` would leave it (untrained): analyze and decode prior latents
    from densitydiff.formats.latents import write_latents
    from densitydiff.hetero.checkpoint import save_hetero
    from densitydiff.hetero.config import read_config
    from densitydiff.hetero.model import HeteroVAE

    hcfg = read_config("tiny", zdim=2)
    save_hetero(tmp_path / "het" / "weights.pt", HeteroVAE(16, hcfg), hcfg, D=16, pixel_size=4.0,
                img_std=1.0, n_images=16, epochs_trained=0, versions={})  # fmt: skip
    write_latents(tmp_path / "het" / "z.pkl", z, np.zeros_like(z))
    for argv in (
        ["hetero", "analyze", tmp_path / "het", "-o", tmp_path / "an", "--k", "2",
         "--pc-points", "2"],
        ["prior", "sample", tmp_path / "prior", "-n", "2", "--volumes", tmp_path / "het", "-o",
         tmp_path / "vols"],
    ):  # fmt: skip
        code, _, err = run_cli(*argv)
        assert code == 0, (argv[:2], err)
    assert (tmp_path / "an" / "index.html").is_file()
    assert (tmp_path / "vols" / "vol_001.mrc").is_file()


def test_training_names_its_extra(no_extras, tmp_path):
    code, _, err = run_cli("prior", "train", tmp_path / "z.npy", "-o", tmp_path / "r")
    assert code == 2 and err.count("\n") == 1
    assert "pip install 'densitydiff[train]'" in err
