"""Latent files: cryoDRGN's z.pkl layout (read back pickle by pickle), .npy, .txt, .pt."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from densitydiff.errors import InputError
from densitydiff.formats.latents import read_latents, write_latents
from densitydiff.formats.pkl import load_pickles
from tests.conftest import TESTDATA


def test_z_pkl_is_two_pickles_means_then_log_variances(tmp_path):
    rng = np.random.default_rng(0)
    mu, logvar = rng.normal(size=(9, 4)), rng.normal(size=(9, 4))
    write_latents(tmp_path / "z.pkl", mu, logvar)
    # what cryoDRGN's analyze does: two pickles in a row, nothing after (restricted unpickler)
    first, second = load_pickles(tmp_path / "z.pkl")
    assert first.dtype == np.float32 and first.shape == (9, 4)
    np.testing.assert_array_equal(first, mu.astype(np.float32))
    np.testing.assert_array_equal(second, logvar.astype(np.float32))
    m, lv = read_latents(tmp_path / "z.pkl")
    np.testing.assert_array_equal(m, first)
    np.testing.assert_array_equal(lv, second)
    m, lv = read_latents(TESTDATA / "zvals_het-8_4k.pkl")  # cryoDRGN's file: means only
    assert m.shape == (4549, 8) and lv is None


def test_npy_txt_and_pt_hold_the_same_means(tmp_path):
    mu = np.random.default_rng(1).normal(size=(6, 3)).astype(np.float32)
    for name in ("z.npy", "z.txt", "z.pt"):
        write_latents(tmp_path / name, mu)
    np.testing.assert_array_equal(np.load(tmp_path / "z.npy"), mu)
    np.testing.assert_allclose(np.loadtxt(tmp_path / "z.txt"), mu, rtol=1e-7)
    assert torch.equal(torch.load(tmp_path / "z.pt", weights_only=True), torch.from_numpy(mu))
    for name in ("z.npy", "z.txt", "z.pt"):
        m, lv = read_latents(tmp_path / name)
        np.testing.assert_allclose(m, mu, rtol=1e-7)
        assert lv is None
    (tmp_path / "one.txt").write_text("0.5 -1 2\n")  # one particle: still (1, zdim)
    assert read_latents(tmp_path / "one.txt")[0].shape == (1, 3)
    write_latents(tmp_path / "both.pt", mu, mu * 0 - 1)
    assert np.array_equal(read_latents(tmp_path / "both.pt")[1], np.full_like(mu, -1))


def test_bad_latent_files_are_refused(tmp_path):
    (tmp_path / "words.txt").write_text("a b\n")
    np.save(tmp_path / "flat.npy", np.ones(5))
    with pytest.raises(InputError, match="numbers"):
        read_latents(tmp_path / "words.txt")
    with pytest.raises(InputError, match="N x D"):
        read_latents(tmp_path / "flat.npy")
    with pytest.raises(InputError, match="no such file"):
        read_latents(tmp_path / "missing.pkl")
    with pytest.raises(InputError, match="means only"):
        write_latents(tmp_path / "z.npy", np.ones((2, 2)), np.ones((2, 2)))
    with pytest.raises(InputError, match="do not match"):
        write_latents(tmp_path / "z.pkl", np.ones((2, 2)), np.ones((3, 2)))
    assert not (tmp_path / "z.npy").exists() and not (tmp_path / "z.pkl").exists()
