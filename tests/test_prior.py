"""The latent prior end to end: formats, training run, samplers, round trip, CLI, bad inputs."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
import yaml
from conftest import TESTDATA, run_cli

from densitydiff.errors import InputError
from densitydiff.formats.pkl import load_pickle, load_pickles, save_pickles
from densitydiff.prior.latents import Latents, LatentStats, load_latents, save_latents
from densitydiff.prior.synthetic import circular

SMALL = {"width": 64, "depth": 4, "emb_dim": 32, "batch_size": 500, "lr": 2e-3}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def run(tmp_path_factory, one_thread):
    """A small prior trained through the CLI on a noisy ring in 8-D (3000 latents)."""
    root = tmp_path_factory.mktemp("prior")
    z = circular(3000, seed=5)
    np.save(root / "z.npy", z)
    (root / "small.yaml").write_text(yaml.safe_dump(SMALL))
    code, out, err = run_cli(
        "prior", "train", root / "z.npy", "-o", root / "run", "--epochs", "40",
        "--config", root / "small.yaml", "--seed", "3", "--no-progress",
    )  # fmt: skip
    assert code == 0, err
    return root


def test_latent_files_round_trip_and_posterior(tmp_path):
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(50, 3)).astype(np.float32)
    logvar = np.full((50, 3), np.log(0.25), np.float32)
    save_pickles(tmp_path / "z.pkl", mu, logvar)  # cryoDRGN layout: means then log-variances
    torch.save((torch.from_numpy(mu), torch.from_numpy(logvar)), tmp_path / "z.pt")
    np.save(tmp_path / "z.npy", mu)
    for name in ("z.pkl", "z.pt"):
        lat = load_latents(tmp_path / name)
        assert np.array_equal(lat.mu, mu) and np.array_equal(lat.logvar, logvar)
    lat = load_latents(tmp_path / "z.npy")
    assert lat.logvar is None and np.array_equal(lat.mu, mu)
    real = load_latents(TESTDATA / "zvals_het-8_4k.pkl")
    assert real.mu.shape == (4549, 8) and real.mu.dtype == np.float32
    # posterior samples: mu + 0.5 eps; aggregate std = sqrt(var(mu) + 0.25)
    big = Latents(np.zeros((20000, 2), np.float32), np.full((20000, 2), np.log(0.25), np.float32))
    draw = big.posterior_sample(np.random.default_rng(1))
    assert draw.std() == pytest.approx(0.5, rel=0.02)
    stats = LatentStats.fit(Latents(mu, logvar), posterior=True)
    assert np.allclose(stats.std, np.sqrt(mu.var(axis=0) + 0.25), rtol=1e-5)
    assert np.allclose(stats.unstandardise(stats.standardise(mu)), mu, atol=1e-5)
    # output in cryoDRGN's z.pkl layout: a single float32 N x D array
    save_latents(tmp_path / "out.pkl", mu.astype(np.float64))
    objs = load_pickles(tmp_path / "out.pkl")
    assert len(objs) == 1 and objs[0].dtype == np.float32 and np.allclose(objs[0], mu)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_bad_latents_are_refused(tmp_path, cli):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps(_Evil(marker)))
    nan = np.ones((10, 2), np.float32)
    nan[3, 1] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    np.save(tmp_path / "flat.npy", np.ones(10, np.float32))
    np.save(tmp_path / "const.npy", np.ones((10, 2), np.float32))
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    torch.save({"evil": _Evil(marker)}, tmp_path / "evil.pt")
    cases = ["evil.pkl", "nan.npy", "flat.npy", "const.npy", "junk.pt", "evil.pt", "missing.pkl"]
    for name in cases:
        with pytest.raises(InputError):
            LatentStats.fit(load_latents(tmp_path / name))
        code, out, err = cli(
            "prior", "train", tmp_path / name, "-o", tmp_path / "r", "--no-progress"
        )
        assert code == 2, (name, err)
        assert err.count("\n") == 1 and err.startswith("densitydiff: error:"), err
    assert not marker.exists()  # the payload never ran
    assert not (tmp_path / "r" / "prior.pt").exists()


def test_training_run_records_and_loads_weights_only(run):
    path = run / "run" / "prior.pt"
    blob = torch.load(path, weights_only=True)
    assert blob["dim"] == 8 and blob["config"]["seed"] == 3 and blob["epochs_trained"] == 40
    record = yaml.safe_load((run / "run" / "config.yaml").read_text())
    assert record["config"]["width"] == 64 and record["config"]["epochs"] == 40
    assert {"torch", "lightning", "densitydiff", "numpy"} <= set(record["versions"])
    assert (run / "run" / "checkpoints" / "last.ckpt").is_file()
    assert np.allclose(blob["mean"].numpy(), np.load(run / "z.npy").mean(0), atol=1e-5)


def test_training_is_deterministic_and_resumes(tmp_path):
    from densitydiff.prior.train import PriorConfig, train_prior

    z = Latents(circular(600, dim=3, seed=1))
    cfg = PriorConfig(epochs=2, width=16, depth=2, emb_dim=8, batch_size=200, seed=7)
    a = torch.load(train_prior(z, tmp_path / "a", cfg, progress=False), weights_only=True)
    b = torch.load(train_prior(z, tmp_path / "b", cfg, progress=False), weights_only=True)
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    # a checkpoint is written at every epoch end (not only at the end of training)
    assert len(list((tmp_path / "a" / "checkpoints").glob("epoch=1-step=*.ckpt"))) == 1
    with pytest.raises(InputError):  # a finished run is not overwritten silently
        train_prior(z, tmp_path / "a", cfg, progress=False)
    cfg4 = PriorConfig(**{**cfg.__dict__, "epochs": 4})
    resumed = train_prior(z, tmp_path / "a", cfg4, resume=True, progress=False)
    c = torch.load(resumed, weights_only=True)
    assert c["epochs_trained"] == 4
    assert not torch.equal(
        c["state_dict"]["net.output.weight"], a["state_dict"]["net.output.weight"]
    )
    with pytest.raises(InputError):
        train_prior(z, tmp_path / "none", cfg, resume=True, progress=False)


@pytest.mark.parametrize(
    "method", ["ode", "heun", "sde", "langevin", "gaussian", "gaussian-langevin"]
)
def test_sample_cli_every_method(run, cli, method):
    out = run / f"s_{method}.pkl"
    code, text, err = cli("prior", "sample", run / "run", "-n", "200", "-o", out,
                          "--method", method, "--steps", "16", "--seed", "4", "--json")  # fmt: skip
    assert code == 0, err
    info = json.loads(text)
    z = load_pickle(out)
    assert z.shape == (200, 8) and z.dtype == np.float32 and np.isfinite(z).all()
    if method in ("ode", "heun", "sde", "langevin"):
        assert info["nfe"] > 0
    if method == "heun":
        assert info["nfe"] == 2 * 16 - 1
    # same seed, same samples
    code, _, _ = cli("prior", "sample", run / "run", "-n", "200", "-o", run / "again.npy",
                     "--method", method, "--steps", "16", "--seed", "4")  # fmt: skip
    assert code == 0 and np.array_equal(np.load(run / "again.npy"), z)


def test_ode_round_trip_returns_the_latents(run):
    from densitydiff.prior.interpolate import decode, encode
    from densitydiff.prior.sample import load_prior

    prior = load_prior(run / "run")
    z = prior.latents[:32]
    noise = encode(prior, z, rtol=1e-7, atol=1e-7)
    assert float(noise.std()) > 20  # it really went to sigma_max = 80
    back = decode(prior, noise, rtol=1e-7, atol=1e-7)
    rel = np.linalg.norm(back - z) / np.linalg.norm(z)
    assert rel < 1e-3, rel


def test_interpolate_cli(run, cli):
    z = np.load(run / "z.npy")
    code, _, err = cli("prior", "interpolate", run / "run", "--start", "0", "--end", "7",
                       "--steps", "6", "-o", run / "path.npy")  # fmt: skip
    assert code == 0, err
    path = np.load(run / "path.npy")
    assert path.shape == (6, 8)
    assert np.allclose(path[0], z[0], atol=2e-2) and np.allclose(path[-1], z[7], atol=2e-2)
    za = ",".join(f"{v:.6f}" for v in z[1])
    zb = ",".join(f"{v:.6f}" for v in z[2])
    code, _, err = cli("prior", "interpolate", run / "run", "--za", za, "--zb", zb, "--steps",
                       "5", "--through", "latent", "-o", run / "line.npy")  # fmt: skip
    assert code == 0, err
    line = np.load(run / "line.npy")
    assert np.allclose(line[2], (z[1] + z[2]) / 2, atol=1e-5)
    for bad in (
        ["--start", "0", "--end", "99999"],
        ["--start", "0", "--zb", "1,2"],
        ["--end", "1"],
    ):
        code, _, err = cli("prior", "interpolate", run / "run", *bad, "-o", run / "x.npy")
        assert code == 2 and err.startswith("densitydiff: error:"), err


def test_evaluate_json_and_plot(run, cli):
    code, out, err = cli(
        "prior", "evaluate", run / "run", run / "z.npy", "--json", "--threads", "1"
    )
    assert code == 0, err
    result = json.loads(out)
    assert set(result) >= {
        "floor", "learned", "gaussian", "sampling", "mmd_learned_over_floor",
        "learned_all", "gaussian_all", "mmd_learned_over_gaussian_all",
    }  # fmt: skip
    for key in ("floor", "learned", "gaussian", "learned_all", "gaussian_all"):
        assert set(result[key]) == {"mmd", "energy", "sw2"}
    assert result["learned"]["mmd"] < 0.5 * result["gaussian"]["mmd"]
    code, out, err = cli("prior", "plot", run / "run", run / "z.npy", "-n", "300",
                         "-o", run / "fig.png")  # fmt: skip
    assert code == 0, err
    assert (run / "fig.png").read_bytes()[:4] == b"\x89PNG"
    np.save(run / "z3.npy", np.zeros((10, 3), np.float32))
    code, _, err = cli("prior", "evaluate", run / "run", run / "z3.npy")
    assert code == 2 and "dimension" in err
    code, _, err = cli("prior", "sample", run / "missing", "-n", "3", "-o", run / "x.npy")
    assert code == 2 and err.startswith("densitydiff: error:")
    code, _, err = cli(
        "prior", "sample", run / "run", "-n", "3", "-o", run / "x.npy", "--threads", "0"
    )
    assert code == 2 and "--threads" in err
