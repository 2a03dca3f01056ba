"""`hetero analyze` and `prior sample/interpolate --volumes`: PCA and k-means against independent
computations, the analysis folder, volumes decoded from prior latents, a zdim mismatch."""

from __future__ import annotations

import json
from math import comb

import mrcfile
import numpy as np
import pytest
import torch

from densitydiff.hetero.analyze import kmeans, pc_path, principal_axes
from tests.conftest import run_cli
from tests.hetero_sets import make_set


def adjusted_rand_index(a, b) -> float:
    """Hubert & Arabie's ARI from the contingency table (written here, not from the package)."""
    a, b = np.asarray(a), np.asarray(b)
    table = np.array([[np.sum((a == i) & (b == j)) for j in np.unique(b)] for i in np.unique(a)])
    index = sum(comb(int(n), 2) for n in table.ravel())
    rows = sum(comb(int(n), 2) for n in table.sum(1))
    cols = sum(comb(int(n), 2) for n in table.sum(0))
    expected = rows * cols / comb(len(a), 2)
    return (index - expected) / ((rows + cols) / 2 - expected)


def test_principal_axes_recover_known_axes():
    """Data with variances 9, 4, 1 along a random orthonormal frame: the axes come back as that
    frame (up to sign) and the ratios as 9/14, 4/14, 1/14; the projections match numpy's SVD."""
    rng = np.random.default_rng(0)
    frame, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    z = (rng.normal(size=(20000, 3)) * [3.0, 2.0, 1.0]) @ frame.T + [5.0, -1.0, 2.0]
    mean, axes, explained = principal_axes(z)
    assert np.allclose(np.abs(axes @ frame), np.eye(3), atol=0.03)
    assert np.allclose(explained, np.array([9, 4, 1]) / 14, atol=0.01)
    assert np.allclose(mean, [5, -1, 2], atol=0.05)
    centred = z - z.mean(0)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    assert np.allclose(np.abs(centred @ axes.T), np.abs(u * s), atol=1e-8)


def test_pc_path_spans_the_5th_to_95th_percentile():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(5000, 2)) * [4.0, 0.5]
    path = pc_path(z, 5)
    assert path.shape == (5, 2)
    assert np.allclose(np.abs(path[[0, -1], 0]), 1.645 * 4, rtol=0.05)  # N(0, 4^2) 5/95 %
    assert np.abs(path[:, 1]).max() < 0.05


def test_kmeans_recovers_well_separated_clusters():
    rng = np.random.default_rng(2)
    truth_centres = np.array([[0, 0, 0], [10, 0, 0], [0, 10, 0], [0, 0, 10], [10, 10, 10]], float)
    truth = rng.integers(0, 5, 600)
    z = truth_centres[truth] + rng.normal(scale=0.5, size=(600, 3))
    centres, labels = kmeans(z, 5, seed=0)
    assert adjusted_rand_index(truth, labels) == pytest.approx(1.0)
    for c in truth_centres:
        assert np.linalg.norm(centres - c, axis=1).min() < 0.2


def test_adjusted_rand_index_of_the_test_is_right():
    """The helper itself: 1 for the same partition under renaming,
    and a small case worked by hand."""
    assert adjusted_rand_index([0, 0, 1, 1], [1, 1, 0, 0]) == 1.0
    a, b = [0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 2, 2]
    # contingency [[2,1,0],[0,1,2]]: index 2, rows 6, cols 3, expected 6*3/15 = 1.2
    assert adjusted_rand_index(a, b) == pytest.approx((2 - 1.2) / (4.5 - 1.2))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny hetero run (32 images of 16^2, zdim 2, 2 epochs) and a tiny prior on its z.pkl."""
    from densitydiff.hetero.config import read_config
    from densitydiff.hetero.data import open_particles
    from densitydiff.hetero.train import train_hetero
    from densitydiff.prior.config import PriorConfig
    from densitydiff.prior.train import train_prior

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("analyze")
    s = make_set(folder, n=32, D=16, pixel=5.0, snr=10.0)
    cfg = read_config("tiny", zdim=2, epochs=2, batch_size=8)
    train_hetero(open_particles(s["particles"], s["poses"], s["ctf"]), folder / "run", cfg,
                 progress=False)  # fmt: skip
    pcfg = PriorConfig(epochs=2, width=16, depth=1, emb_dim=8, batch_size=32, seed=0)
    train_prior(folder / "run" / "z.pkl", folder / "prior", pcfg, progress=False)
    z3 = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    np.save(folder / "z3.npy", z3)
    train_prior(folder / "z3.npy", folder / "prior3", pcfg, progress=False)
    torch.set_num_threads(threads)
    return folder


def _voxel_and_origin(path):
    with mrcfile.open(path, permissive=True) as m:
        return float(m.voxel_size.x), (float(m.header.origin.x), float(m.header.origin.y),
                                       float(m.header.origin.z)), m.data.shape  # fmt: skip


def test_analyze_writes_the_folder(runs, one_thread):
    out = runs / "analysis"
    code, _, err = run_cli("hetero", "analyze", runs / "run", "-o", out, "--k", "3",
                           "--pc-points", "4")  # fmt: skip
    assert code == 0, err
    assert sorted(p.name for p in (out / "kmeans3").glob("vol_*.mrc")) == [
        "vol_000.mrc", "vol_001.mrc", "vol_002.mrc"]  # fmt: skip
    assert len(list((out / "pc1").glob("vol_*.mrc"))) == 4
    centres = np.loadtxt(out / "kmeans3" / "centres.txt")
    labels = np.loadtxt(out / "kmeans3" / "labels.txt", dtype=int)
    assert centres.shape == (3, 2) and labels.shape == (32,)
    from densitydiff.formats.latents import read_latents

    mu, _ = read_latents(runs / "run" / "z.pkl")
    for j in range(3):  # each centre is the mean of its latents (a Lloyd fixed point)
        assert np.allclose(centres[j], mu[labels == j].mean(0), atol=1e-5)
    assert _voxel_and_origin(out / "kmeans3" / "vol_000.mrc") == (5.0, (0.0, 0.0, 0.0),
                                                                   (16, 16, 16))  # fmt: skip
    page = (out / "index.html").read_text()
    assert page.count('src="data:image/png;base64,') == 3 and "<img" in page
    record = json.loads((out / "analyze.json").read_text())
    assert record["k"] == 3 and record["n"] == 32 and record["seed"] == 0
    assert sum(record["kmeans_counts"]) == 32
    assert np.isclose(sum(record["explained_variance"]), 1.0)
    code, _, err = run_cli("hetero", "analyze", runs / "run", "-o", runs / "a2", "--epoch", "7")
    assert code == 2 and "z.7.pkl" in err and len(err.strip().splitlines()) == 1
    assert not (runs / "a2").exists()


def test_prior_sample_and_interpolate_decode_volumes(runs, one_thread):
    out = runs / "sampled"
    code, _, err = run_cli("prior", "sample", runs / "prior", "-n", "3", "--method", "heun",
                           "--steps", "4", "--volumes", runs / "run", "-o", out)  # fmt: skip
    assert code == 0, err
    z = np.loadtxt(out / "z.txt")
    assert z.shape == (3, 2) and np.allclose(np.load(out / "z.npy"), z)
    assert len(list(out.glob("vol_*.mrc"))) == 3
    assert _voxel_and_origin(out / "vol_002.mrc") == (5.0, (0.0, 0.0, 0.0), (16, 16, 16))
    # the volumes are the run's decoder at those latents (hetero space, no re-standardising)
    from densitydiff.hetero.checkpoint import load_hetero
    from densitydiff.hetero.volume import decode_volume

    with mrcfile.open(out / "vol_001.mrc", permissive=True) as m:
        assert np.allclose(m.data, decode_volume(load_hetero(runs / "run"), z[1]), atol=1e-5)
    assert json.loads((out / "volumes.json").read_text())["n"] == 3

    path = runs / "path"
    code, _, err = run_cli("prior", "interpolate", runs / "prior", "--start", "0", "--end", "5",
                           "--points", "4", "--through", "noise", "--volumes", runs / "run",
                           "-o", path)  # fmt: skip
    assert code == 0, err
    assert len(list(path.glob("vol_*.mrc"))) == 4 and np.loadtxt(path / "z.txt").shape == (4, 2)
    assert (path / "path.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_prior_of_another_dimension_is_refused(runs, one_thread):
    out = runs / "mismatch"
    code, _, err = run_cli("prior", "sample", runs / "prior3", "-n", "2", "--volumes",
                           runs / "run", "-o", out)  # fmt: skip
    assert code == 2 and "dimension 3" in err and "zdim 2" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


def test_analyze_of_a_one_dimensional_run_and_bad_counts(tmp_path, one_thread):
    """zdim 1 (PC1 only: a histogram, explained variance [1]); --k above the number of latents
    and --pc-points 1 are one line and exit 2, with nothing written."""
    from densitydiff.formats.latents import write_latents
    from densitydiff.hetero.checkpoint import save_hetero
    from densitydiff.hetero.config import read_config
    from densitydiff.hetero.model import HeteroVAE

    cfg = read_config("tiny", zdim=1)
    save_hetero(tmp_path / "run" / "weights.pt", HeteroVAE(16, cfg), cfg, D=16, pixel_size=3.0,
                img_std=1.0, n_images=10, epochs_trained=0, versions={})  # fmt: skip
    z = np.linspace(-1, 1, 10, dtype=np.float32)[:, None]
    write_latents(tmp_path / "run" / "z.pkl", z, np.zeros_like(z))
    out = tmp_path / "an"
    code, _, err = run_cli("hetero", "analyze", tmp_path / "run", "-o", out, "--k", "2",
                           "--pc-points", "3")  # fmt: skip
    assert code == 0, err
    assert json.loads((out / "analyze.json").read_text())["explained_variance"] == [1.0]
    assert np.allclose(np.loadtxt(out / "pc1" / "z_values.txt"), [-0.9, 0.0, 0.9], atol=1e-6)
    # the two halves of 10 evenly spaced points: means -5/9 and 5/9
    assert sorted(np.loadtxt(out / "kmeans2" / "centres.txt")) == pytest.approx([-5 / 9, 5 / 9])
    for flags, words in ((["--k", "11"], "--k 11"), (["--pc-points", "1"], "--pc-points 1")):
        code, _, err = run_cli("hetero", "analyze", tmp_path / "run", "-o", tmp_path / "b", *flags)
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / "b").exists()
