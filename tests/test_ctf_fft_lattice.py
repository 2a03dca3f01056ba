"""The physics shared by the simulator and the models: CTF parameters by name (against cryoDRGN's
ctf2.pkl and the cryoSPARC file it came from), the electron wavelength, Hartley transforms
(against the direct cas sum) and the central-slice lattice (against A^T k written out)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from densitydiff.errors import InputError
from densitydiff.formats.ctf import CTF_COLUMNS, CTFParams, load_ctf, save_ctf
from densitydiff.formats.pkl import load_pickle
from densitydiff.rotations import random_rotations
from densitydiff.simulate import ctf, fft, lattice
from tests.conftest import TESTDATA


def test_ctf_params_name_the_columns_of_cryodrgns_ctf_pkl(tmp_path):
    raw = np.asarray(load_pickle(TESTDATA / "ctf2.pkl"))  # the raw array, no column names
    params = CTFParams.from_array(load_ctf(TESTDATA / "ctf2.pkl"))
    assert len(params) == len(raw) == 2019
    np.testing.assert_array_equal(params.to_array(), raw)
    # the cryoSPARC file cryoDRGN parsed into ctf2.pkl, field by field
    cs = np.load(TESTDATA / "cryosparc_P12_J24_001_particles.cs")
    f32 = np.float32
    np.testing.assert_array_equal(params.D, cs["blob/shape"][:, 0])
    np.testing.assert_array_equal(params.pixel_size.astype(f32), cs["blob/psize_A"])
    np.testing.assert_array_equal(params.defocus_u.astype(f32), cs["ctf/df1_A"])
    np.testing.assert_array_equal(params.defocus_v.astype(f32), cs["ctf/df2_A"])
    np.testing.assert_allclose(params.defocus_angle, np.rad2deg(cs["ctf/df_angle_rad"]), 1e-5)
    np.testing.assert_array_equal(params.voltage.astype(f32), cs["ctf/accel_kv"])
    np.testing.assert_array_equal(params.cs.astype(f32), cs["ctf/cs_mm"])
    np.testing.assert_array_equal(params.amplitude_contrast.astype(f32), cs["ctf/amp_contrast"])
    # round trip through our writer, and selections
    save_ctf(tmp_path / "ctf.pkl", params)
    np.testing.assert_array_equal(load_ctf(tmp_path / "ctf.pkl"), raw)
    np.testing.assert_array_equal(params[5:9].to_array(), raw[5:9])
    np.testing.assert_array_equal(params[[3]].to_array(), raw[[3]])
    assert CTF_COLUMNS[2] == "defocus_u" and len(CTF_COLUMNS) == raw.shape[1]


def test_ctf_params_broadcast_scalars_and_refuse_bad_rows():
    p = CTFParams(64, 2.0, np.array([1e4, 2e4]), 1.5e4, 0.0, 300.0, 2.7, 0.1, 0.0)
    assert len(p) == 2
    np.testing.assert_array_equal(p.to_array()[:, 0], [64, 64])
    with pytest.raises(InputError, match=r"\(N, 9\)"):
        CTFParams.from_array(np.zeros((3, 8)))
    with pytest.raises(InputError, match="NaN"):
        CTFParams.from_array(np.full(9, np.nan))
    with pytest.raises(InputError, match="lengths"):
        CTFParams(64, 2.0, np.ones(2), np.ones(3), 0.0, 300.0, 2.7, 0.1, 0.0)


def test_ctf_of_named_parameters_equals_ctf_of_rows():
    rows = load_ctf(TESTDATA / "ctf2.pkl")[:4]
    a = ctf.ctf(rows).numpy()
    b = ctf.ctf(CTFParams.from_array(rows)).numpy()
    np.testing.assert_array_equal(a, b)


def test_electron_wavelength_is_the_relativistic_de_broglie_wavelength():
    # lambda = h / sqrt(2 m0 e V (1 + e V / (2 m0 c^2))), CODATA constants
    h, m0, e, c = 6.62607015e-34, 9.1093837015e-31, 1.602176634e-19, 299792458.0
    for kv in (100.0, 200.0, 300.0):
        V = kv * 1e3
        exact = h / np.sqrt(2 * m0 * e * V * (1 + e * V / (2 * m0 * c**2))) * 1e10
        assert ctf.electron_wavelength(kv) == pytest.approx(exact, rel=5e-5)  # 12.2639 has 6 digits
        t = ctf.electron_wavelength(torch.tensor([kv], dtype=torch.float64))
        assert float(t[0]) == pytest.approx(float(ctf.electron_wavelength(kv)), rel=1e-15)
    assert float(ctf.electron_wavelength(300.0)) == pytest.approx(0.019687, abs=1e-6)


def test_hartley_transform_is_the_cas_sum_and_its_own_inverse():
    rng = np.random.default_rng(0)
    D = 6
    x = rng.normal(size=(2, D, D))
    k = np.arange(D) - D // 2  # centred indices, real and Fourier space
    arg = 2 * np.pi * (k[:, None, None, None] * k[None, None, :, None]
                       + k[None, :, None, None] * k[None, None, None, :]) / D  # fmt: skip
    cas = np.cos(arg) + np.sin(arg)  # (ky, kx, y, x)
    direct = np.einsum("abyx,nyx->nab", cas, x)
    got = fft.ht2_centered(torch.as_tensor(x)).numpy()
    np.testing.assert_allclose(got, direct, atol=1e-10)
    back = fft.iht2_centered(torch.as_tensor(got)).numpy()
    np.testing.assert_allclose(back, x, atol=1e-12)


def test_lattice_points_turn_as_a_transpose_k():
    D = 8
    plane = lattice.lattice_plane(D)
    assert plane.shape == (D, D, 3)
    k = np.arange(D) - D // 2
    np.testing.assert_array_equal(plane[..., 0].numpy(), np.tile(k, (D, 1)))
    np.testing.assert_array_equal(plane[..., 1].numpy(), np.tile(k[:, None], (1, D)))
    assert not plane[..., 2].any()
    mask = lattice.circular_mask(plane, D / 2)
    assert int(mask.sum()) == int(((k[:, None] ** 2 + k[None, :] ** 2) <= (D / 2) ** 2).sum())
    rot = random_rotations(3, np.random.default_rng(1))
    points = plane.reshape(-1, 3).double()
    got = lattice.rotate(points, torch.as_tensor(rot)).numpy()
    expected = np.einsum("nji,mj->nmi", rot, points.numpy())  # (A^T k)_i = sum_j A_ji k_j
    np.testing.assert_allclose(got, expected, atol=1e-12)
    scaled = lattice.lattice_plane(D, 2.0)
    np.testing.assert_array_equal(scaled.numpy(), 2 * plane.numpy())
