"""Training the heterogeneity VAE: a homogeneous set reconstructs its volume, z.pkl is
cryoDRGN's, resume equals uninterrupted, the data sign is cryoDRGN's, bad input exits 2."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from densitydiff.formats.pkl import load_pickles
from densitydiff.hetero.checkpoint import load_hetero
from densitydiff.hetero.config import read_config
from densitydiff.hetero.data import open_particles
from densitydiff.hetero.train import train_hetero
from densitydiff.hetero.volume import decode_volume
from densitydiff.metrics import fsc
from densitydiff.simulate.cryoem import Projector
from tests.conftest import run_cli
from tests.hetero_sets import make_set

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """64 images of 32^2 of one structure at SNR 10 in cryoDRGN's default contrast, trained
    with the default --invert-data for 20 epochs of 8 (160 steps, ~15 s on one thread)."""
    folder = tmp_path_factory.mktemp("homogeneous")
    s = make_set(folder, n=64, D=32, snr=10.0, contrast=-1.0)
    config = read_config("tiny", zdim=1, epochs=20, batch_size=8, lr=3e-3, dec_dim=64, dec_layers=2)
    particles = open_particles(s["particles"], s["poses"], s["ctf"])
    train_hetero(particles, folder / "run", config, progress=False)
    return s, folder / "run"


def test_homogeneous_set_trains_to_its_volume(trained):
    """Measured (seed 0): real-space correlation 0.98, FSC >= 0.87 over shells 1-5 (to
    1/25.6 Å); the blobs have little power beyond shell 8, where FSC is noise. An inverted
    sign would give about -0.98; the untrained decoder gives 0.04 (FSC 0.16-0.33)."""
    s, run_dir = trained
    run = load_hetero(run_dir)
    volume = decode_volume(run, np.zeros(1))
    truth = s["volume"]
    curve = fsc(volume, truth, s["pixel"])
    assert np.corrcoef(volume.ravel(), truth.ravel())[0, 1] > 0.9
    assert curve.fsc[1:6].min() > 0.75, curve.fsc[:8]


def test_trained_slices_are_the_projectors_at_any_pose(trained):
    """For a compact volume the field is smooth, so at random poses too the decoder's slice
    is the central slice of the decoded volume (measured: 3-7 % relative error)."""
    from densitydiff.rotations import random_rotations

    _, run_dir = trained
    run = load_hetero(run_dir)
    z = torch.zeros(4, 1)
    volume = decode_volume(run, np.zeros(1))
    rot = random_rotations(4, np.random.default_rng(3)).astype(np.float32)
    with torch.no_grad():
        dec = run.model.slices(z, torch.from_numpy(rot))
    ref = Projector(volume / (run.img_std * run.D), oversampling=4).slices(rot)
    ref = ref.reshape(4, -1)[:, run.model.idx]
    rel = (dec - ref).abs().norm(dim=1) / ref.abs().norm(dim=1)
    assert rel.max() < 0.1, rel


def test_outputs_are_cryodrgns(trained):
    s, run_dir = trained
    mu, logvar = load_pickles(run_dir / "z.pkl")  # cryoDRGN's layout: two pickles in a row
    assert mu.shape == logvar.shape == (64, 1) and mu.dtype == np.float32
    assert (run_dir / "z.0.pkl").is_file() and (run_dir / "z.19.pkl").is_file()
    assert np.array_equal(load_pickles(run_dir / "z.19.pkl")[0], mu)
    import yaml

    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert cfg["config"]["zdim"] == 1 and cfg["dataset"]["n_images"] == 64
    assert "argv" in cfg["command"]
    assert (run_dir / "run.yaml").is_file() and (run_dir / "checkpoints" / "last.ckpt").is_file()


def test_volume_cli_writes_the_images_grid(trained, tmp_path):
    from densitydiff.formats.latents import write_latents
    from densitydiff.formats.maps import read_map

    s, run_dir = trained
    code, _, err = run_cli("hetero", "volume", run_dir, "-o", tmp_path / "v.mrc", "--z", "0.0")
    assert code == 0, err
    m = read_map(tmp_path / "v.mrc")
    assert m.shape == (32, 32, 32) and np.allclose(m.voxel_size, 4.0)
    assert np.allclose(m.origin, 0.0)
    assert np.allclose(m.array, decode_volume(load_hetero(run_dir), np.zeros(1)), atol=1e-6)
    import json

    record = json.loads((tmp_path / "v.json").read_text())
    assert record["z"] == [0.0] and record["inputs"][0]["path"].endswith("weights.pt")
    write_latents(tmp_path / "z.txt", np.array([[0.0], [1.0]]))
    code, _, err = run_cli(
        "hetero", "volume", run_dir, "-o", tmp_path / "vols", "--zfile", tmp_path / "z.txt"
    )
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "vols").glob("vol_*.mrc")) == [
        "vol_000.mrc",
        "vol_001.mrc",
    ]
    assert "versions" in json.loads((tmp_path / "vols" / "volumes.json").read_text())
    code, _, err = run_cli(
        "hetero", "volume", run_dir, "-o", tmp_path / "w.mrc", "--z", "1", "-2.5"
    )
    assert code == 2 and "zdim is 1" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "w.mrc").exists()


def _weights(run_dir):
    return torch.load(run_dir / "weights.pt", weights_only=True)["state_dict"]


def test_resume_equals_uninterrupted(tmp_path):
    s = make_set(tmp_path, n=24, D=16)
    particles = open_particles(s["particles"], s["poses"], s["ctf"])
    config = read_config("tiny", epochs=2, batch_size=8, chunk_size=8)
    train_hetero(particles, tmp_path / "full", config, progress=False)
    train_hetero(
        particles,
        tmp_path / "cut",
        read_config("tiny", epochs=1, batch_size=8, chunk_size=8),
        progress=False,
    )
    train_hetero(particles, tmp_path / "cut", config, resume=True, progress=False)
    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "cut")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    full, cut = load_pickles(tmp_path / "full" / "z.pkl"), load_pickles(tmp_path / "cut" / "z.pkl")
    assert all(np.array_equal(x, y) for x, y in zip(full, cut, strict=True))
    # and the seed matters
    train_hetero(
        particles,
        tmp_path / "other",
        read_config("tiny", epochs=2, batch_size=8, chunk_size=8, seed=1),
        progress=False,
    )
    c = _weights(tmp_path / "other")
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_invert_data_is_cryodrgns_sign(tmp_path):
    """A stack of -CTF * (P V) with the default --invert-data and the same images negated with
    --uninvert-data train to the same weights: the model sees CTF * (P V) either way."""
    from densitydiff.formats.mrcs import write_particles

    s = make_set(tmp_path, n=16, D=16, contrast=-1.0)
    write_particles(tmp_path / "positive.mrcs", -s["images"], s["pixel"])
    args = [
        "--poses",
        s["poses"],
        "--ctf",
        s["ctf"],
        "--config",
        "tiny",
        "--epochs",
        "1",
        "--no-progress",
    ]
    assert run_cli("hetero", "train", s["particles"], "-o", tmp_path / "a", *args)[0] == 0
    code, _, err = run_cli(
        "hetero",
        "train",
        tmp_path / "positive.mrcs",
        "-o",
        tmp_path / "b",
        "--uninvert-data",
        *args,
    )
    assert code == 0, err
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_bad_inputs_exit_2_and_leave_no_run(tmp_path):
    from densitydiff.formats.ctf import save_ctf
    from densitydiff.formats.mrcs import write_particles
    from densitydiff.formats.particles import save_poses

    s = make_set(tmp_path, n=8, D=16)
    nan = s["images"].copy()
    nan[5, 3, 3] = np.nan
    write_particles(tmp_path / "nan.mrcs", nan, 4.0)
    save_poses(tmp_path / "short.pkl", s["rotations"][:7], s["shifts"][:7] / 16)
    mirrored = s["rotations"].copy()
    mirrored[2] *= -1
    save_poses(tmp_path / "mirror.pkl", mirrored, s["shifts"] / 16)
    rows = s["ctf_rows"].copy()
    rows[:, 0] = 32
    save_ctf(tmp_path / "ctf32.pkl", rows)
    data = s["particles"].read_bytes()
    (tmp_path / "cut.mrcs").write_bytes(data[:-200])
    write_particles(tmp_path / "odd.mrcs", np.ones((8, 15, 15), np.float32), 4.0)
    rows[:, 0] = 15
    save_ctf(tmp_path / "ctf15.pkl", rows)
    cases = {
        "lengths": (s["particles"], tmp_path / "short.pkl", s["ctf"], "rows"),
        "box": (s["particles"], s["poses"], tmp_path / "ctf32.pkl", "box size 32"),
        "det": (s["particles"], tmp_path / "mirror.pkl", s["ctf"], "not a rotation"),
        "nan": (tmp_path / "nan.mrcs", s["poses"], s["ctf"], "image 5"),
        "odd": (tmp_path / "odd.mrcs", s["poses"], tmp_path / "ctf15.pkl", "even"),
        "truncated": (tmp_path / "cut.mrcs", s["poses"], s["ctf"], "cut.mrcs"),
    }
    for name, (images, poses, ctf, words) in cases.items():
        out = tmp_path / f"run_{name}"
        code, _, err = run_cli(
            "hetero",
            "train",
            images,
            "--poses",
            poses,
            "--ctf",
            ctf,
            "-o",
            out,
            "--config",
            "tiny",
            "--no-progress",
        )
        assert code == 2, (name, err)
        assert words in err and len(err.strip().splitlines()) == 1, (name, err)
        assert not out.exists(), name


def test_volume_does_not_import_lightning(trained, tmp_path):
    import subprocess
    import sys

    from tests.conftest import REPO

    _, run_dir = trained
    code = (
        "import sys; from densitydiff.cli import main; "
        f"rc = main(['hetero', 'volume', {str(run_dir)!r}, '-o', {str(tmp_path / 'v.mrc')!r}, "
        "'--z', '0.5']); "
        "assert rc == 0 and 'lightning' not in sys.modules, (rc, 'lightning' in sys.modules)"
    )
    env = {"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "v.mrc").is_file()


def test_conv_encoder_trains_from_the_cli(tmp_path):
    s = make_set(tmp_path, n=16, D=16)
    code, out, err = run_cli(
        "hetero",
        "train",
        s["particles"],
        "--poses",
        s["poses"],
        "--ctf",
        s["ctf"],
        "-o",
        tmp_path / "run",
        "--config",
        "tiny",
        "--epochs",
        "1",
        "--encoder",
        "conv",
        "--no-progress",
    )
    assert code == 0, err
    assert load_hetero(tmp_path / "run").config.encoder == "conv"
