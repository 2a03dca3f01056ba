"""Image formation checked against analytic projections, a real-space projector, the published
CTF formula on cryoDRGN's reference rows, and a reconstruction from simulated images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from densitydiff.errors import InputError
from densitydiff.formats.ctf import load_ctf
from densitydiff.rotations import (
    euler_to_matrix,
    matrix_to_euler,
    random_rotations,
    rotvec_to_matrix,
)
from densitydiff.simulate import cryoem, ctf
from densitydiff.simulate.reconstruct import backproject
from tests.conftest import TESTDATA


def test_euler_matrix_is_relion_convention_and_round_trips():
    rng = np.random.default_rng(0)
    euler = np.stack(
        [rng.uniform(-180, 180, 200), rng.uniform(0, 180, 200), rng.uniform(-180, 180, 200)], 1
    )
    m = euler_to_matrix(euler)
    # RELION's matrix is the transpose of the intrinsic ZYZ rotation (rot, tilt, psi).
    ref = Rotation.from_euler("ZYZ", euler, degrees=True).as_matrix().transpose(0, 2, 1)
    np.testing.assert_allclose(m, ref, atol=1e-12)
    back = matrix_to_euler(m)
    np.testing.assert_allclose(back, euler, atol=1e-8)
    # gimbal lock (tilt 0 and 180) round-trips as a matrix
    locked = np.array([[30.0, 0.0, 40.0], [-50.0, 180.0, 20.0]])
    np.testing.assert_allclose(euler_to_matrix(matrix_to_euler(euler_to_matrix(locked))),
                               euler_to_matrix(locked), atol=1e-10)  # fmt: skip
    # the explicit RELION element A[2,0] = sin(tilt) cos(rot)
    np.testing.assert_allclose(
        m[:, 2, 0], np.sin(np.deg2rad(euler[:, 1])) * np.cos(np.deg2rad(euler[:, 0])), atol=1e-12
    )
    with pytest.raises(InputError):
        euler_to_matrix(np.array([[np.nan, 0, 0]]))


def test_rotvec_and_uniform_rotations():
    rng = np.random.default_rng(1)
    v = rng.normal(size=(50, 3))
    np.testing.assert_allclose(rotvec_to_matrix(v), Rotation.from_rotvec(v).as_matrix(), atol=1e-12)
    r = random_rotations(20000, rng)
    np.testing.assert_allclose(r @ r.transpose(0, 2, 1), np.broadcast_to(np.eye(3), r.shape),
                               atol=1e-12)  # fmt: skip
    assert np.allclose(np.linalg.det(r), 1.0)
    # Haar measure: the image of a fixed vector is uniform on the sphere (mean 0, each
    # coordinate uniform on [-1, 1] => variance 1/3), and the mean matrix is 0.
    z = r[:, :, 2]
    assert np.abs(z.mean(axis=0)).max() < 0.02
    np.testing.assert_allclose(z.var(axis=0), 1 / 3, atol=0.01)
    hist = np.histogram(z[:, 2], bins=10, range=(-1, 1))[0]
    assert np.abs(hist / len(z) - 0.1).max() < 0.01
    assert np.abs(r.mean(axis=0)).max() < 0.02


def _blobs(D: int):
    """Gaussian blobs: the volume, and its exact projection for pose A and shift t."""
    sigma = 2.0
    centers = np.array([[4.0, -3.0, 2.0], [-5.0, 2.0, -1.0], [0.0, 6.0, 3.0]])  # (x, y, z)
    amps = np.array([1.0, 0.7, 1.3])
    c = np.arange(D) - D // 2
    z, y, x = np.meshgrid(c, c, c, indexing="ij")
    vol = sum(
        a * np.exp(-((x - p[0]) ** 2 + (y - p[1]) ** 2 + (z - p[2]) ** 2) / (2 * sigma**2))
        for a, p in zip(amps, centers)
    )

    def exact(rot, shifts):
        yy, xx = np.meshgrid(c, c, indexing="ij")
        out = np.zeros((len(rot), D, D))
        for i, a_mat in enumerate(rot):
            for a, p in zip(amps, centers):
                # p_image = A r - t: the particle sits at D // 2 - t (cryoDRGN's sign)
                q = a_mat @ p - np.array([shifts[i, 0], shifts[i, 1], 0.0])
                g = np.exp(-((xx - q[0]) ** 2 + (yy - q[1]) ** 2) / (2 * sigma**2))
                out[i] += a * np.sqrt(2 * np.pi) * sigma * g
        return out

    return vol, exact


def test_fourier_projection_matches_analytic_and_real_space_projection():
    D = 32
    vol, exact = _blobs(D)
    rng = np.random.default_rng(2)
    rot = random_rotations(4, rng)
    shifts = rng.uniform(-2.5, 2.5, (4, 2))
    truth = exact(rot, shifts)
    scale = np.abs(truth).max()
    errors = {}
    for oversampling in (2, 4):
        proj = cryoem.Projector(vol, oversampling=oversampling).project(rot, shifts).numpy()
        errors[oversampling] = np.abs(proj - truth).max() / scale
    real = cryoem.project_real_space(vol, rot, shifts)
    assert np.abs(real - truth).max() / scale < 2e-3
    # interpolation error: < 2% at 2x oversampling, and it shrinks with finer sampling
    assert errors[2] < 0.02
    assert errors[4] < errors[2] / 3
    proj2 = cryoem.Projector(vol).project(rot, shifts).numpy()
    assert np.abs(proj2 - real).max() / scale < 0.02
    with pytest.raises(InputError):
        cryoem.Projector(np.zeros((4, 4, 5)))


def _published_ctf(row: np.ndarray, bfactor: float | None = None) -> np.ndarray:
    """cryoDRGN's compute_ctf as published, written out in numpy for one ctf.pkl row."""
    D, apix, dfu, dfv, dfang, kv, cs, w, phase = (float(v) for v in row)
    k = (np.arange(D) - D // 2) / (D * apix)
    y, x = np.meshgrid(k, k, indexing="ij")
    volt = kv * 1000
    lam = 12.2639 / np.sqrt(volt + 0.97845e-6 * volt**2)
    ang = np.arctan2(y, x)
    s2 = x**2 + y**2
    df = 0.5 * (dfu + dfv + (dfu - dfv) * np.cos(2 * (ang - np.deg2rad(dfang))))
    gamma = 2 * np.pi * (-0.5 * df * lam * s2 + 0.25 * cs * 1e7 * lam**3 * s2**2)
    gamma = gamma - np.deg2rad(phase)
    out = np.sqrt(1 - w**2) * np.sin(gamma) - w * np.cos(gamma)
    if bfactor is not None:
        out = out * np.exp(-bfactor / 4 * s2)
    return out


@pytest.mark.parametrize("name", ["test_ctf.pkl", "ctf2.pkl"])
def test_ctf_equals_published_formula_on_reference_rows(name):
    params = load_ctf(TESTDATA / name)
    rows = params[np.linspace(0, len(params) - 1, 12).astype(int)]
    got = ctf.ctf(rows).numpy()
    for row, g in zip(rows, got):
        np.testing.assert_allclose(g, _published_ctf(row), atol=2e-5)
    withb = ctf.ctf(rows[:2], bfactor=80.0).numpy()
    np.testing.assert_allclose(withb[1], _published_ctf(rows[1], 80.0), atol=2e-5)
    # at zero frequency CTF = -w (amplitude contrast; with phase shift: -w cos(-phi) + ...)
    D = int(rows[0, 0])
    w, phi = rows[0, 7], np.deg2rad(rows[0, 8])
    assert got[0, D // 2, D // 2] == pytest.approx(
        np.sqrt(1 - w**2) * np.sin(-phi) - w * np.cos(-phi), abs=1e-6
    )


def test_ctf_rejects_bad_rows():
    with pytest.raises(InputError):
        ctf.ctf(np.zeros((3, 8)))
    bad = load_ctf(TESTDATA / "ctf2.pkl")[:2].copy()
    bad[1, 2] = np.nan
    with pytest.raises(InputError):
        ctf.ctf(bad)


def test_phase_flip_leaves_the_ctf_magnitude():
    rng = np.random.default_rng(3)
    D = 32
    img = torch.as_tensor(rng.normal(size=(3, D, D)), dtype=torch.float32)
    params = np.tile([D, 2.0, 15000, 14000, 30, 300, 2.7, 0.1, 0], (3, 1))
    params[:, 2] = [9000, 15000, 21000]
    flipped = ctf.phase_flip(ctf.apply_ctf(img, params), params)
    # compare transforms inside the Nyquist circle (the unpaired edge row/column of an even
    # box is symmetrised when taking real parts)
    k = np.arange(D) - D // 2
    inside = (k[:, None] ** 2 + k[None, :] ** 2) < (D // 2 - 1) ** 2
    for i in range(3):
        c = _published_ctf(params[i])
        spectrum = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(img[i].numpy())))
        got = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(flipped[i].numpy())))
        np.testing.assert_allclose(got[inside], (spectrum * np.abs(c))[inside], atol=2e-3)


def _cryodrgn_lattice(D: int) -> np.ndarray:
    """cryoDRGN's 2-D frequency lattice (D+1)^2 x 2 in cycles/px, written out from its docs:
    linspace(-D/2, D/2, D+1) / D on a 'xy' meshgrid, so x runs along an image row (last axis)."""
    line = np.linspace(-D / 2, D / 2, D + 1) / D
    x, y = np.meshgrid(line, line)
    return np.stack([x.ravel(), y.ravel()], 1)


def _cryodrgn_ht(images: np.ndarray) -> np.ndarray:
    """cryoDRGN's centred Hartley transform (Re - Im of the centred FFT), symmetrised to D+1."""
    f = np.fft.fftshift(np.fft.fft2(np.fft.fftshift(images, axes=(-2, -1))), axes=(-2, -1))
    h = f.real - f.imag
    out = np.concatenate([h, h[:, :1]], axis=1)
    return np.concatenate([out, out[:, :, :1]], axis=2)  # last row/column repeat the first


def test_shift_sign_is_cryodrgns_particle_at_centre_minus_t():
    """Regression (cryoDRGN backproject_voxel FSC flipped sign at sinc(2 * 2 t_max k) zeros):
    our shifted images must be re-centred by cryoDRGN's published Hartley shift with +t."""
    D = 32
    vol, _ = _blobs(D)
    rng = np.random.default_rng(5)
    rot = random_rotations(3, rng)
    t = np.array([[3.0, -2.0], [-1.5, 2.5], [0.7, 1.9]])
    projector = cryoem.Projector(vol)
    centred = cryoem.form_images(projector, rot, None, None).numpy().astype(np.float64)
    shifted = cryoem.form_images(projector, rot, t, None).numpy().astype(np.float64)
    # translate_ht: H'(k) = cos(2 pi k.t) H(k) + sin(2 pi k.t) H(-k); H(-k) is the reversed
    # flattened symmetric lattice
    k = _cryodrgn_lattice(D)
    h = _cryodrgn_ht(shifted).reshape(3, -1)
    phase = 2 * np.pi * (t @ k.T)  # (3, (D+1)^2)
    recentred = np.cos(phase) * h + np.sin(phase) * h[:, ::-1]
    inside = (k**2).sum(1) < (0.5 - 2 / D) ** 2
    want = _cryodrgn_ht(centred).reshape(3, -1)
    scale = np.abs(want).max()
    assert np.abs(recentred - want)[:, inside].max() / scale < 1e-4
    wrong = np.cos(phase) * h - np.sin(phase) * h[:, ::-1]  # the old sign: D // 2 + t
    assert np.abs(wrong - want)[:, inside].max() / scale > 0.1
    # in real space: a blob at the volume centre lands at pixel (x, y) = D // 2 - t
    c = np.arange(D) - D // 2
    z, y, x = np.meshgrid(c, c, c, indexing="ij")
    one = np.exp(-(x**2 + y**2 + z**2) / 8.0)
    img = cryoem.form_images(cryoem.Projector(one), np.eye(3)[None], t[:1], None).numpy()[0]
    yy, xx = np.meshgrid(np.arange(D), np.arange(D), indexing="ij")
    centroid = np.array([(img * xx).sum(), (img * yy).sum()]) / img.sum()
    np.testing.assert_allclose(centroid, D // 2 - t[0], atol=0.05)


def test_effective_ctf_in_images_is_cryodrgns_on_its_lattice():
    """FFT(image with CTF) / FFT(image without) equals the published compute_ctf on cryoDRGN's
    frequency lattice (x along rows, 1 / (D * pixel) spacing), astigmatism orientation included."""
    D = 32
    vol, _ = _blobs(D)
    rot = random_rotations(2, np.random.default_rng(6))
    params = np.array([[D, 2.0, 15000, 13500, 35, 300, 2.7, 0.1, 0],
                       [D, 2.0, 21000, 20000, -70, 300, 2.7, 0.07, 0]])  # fmt: skip
    projector = cryoem.Projector(vol)
    with_ctf = cryoem.form_images(projector, rot, None, params).numpy().astype(np.float64)
    without = cryoem.form_images(projector, rot, None, None).numpy().astype(np.float64)
    fa = np.fft.fftshift(np.fft.fft2(np.fft.fftshift(with_ctf, axes=(-2, -1))), axes=(-2, -1))
    fb = np.fft.fftshift(np.fft.fft2(np.fft.fftshift(without, axes=(-2, -1))), axes=(-2, -1))
    k = _cryodrgn_lattice(D).reshape(D + 1, D + 1, 2)[:D, :D]  # drop the repeated edge
    for i, row in enumerate(params):
        _, apix, dfu, dfv, dfang, kv, cs, w, _ = row
        x, y = k[..., 0] / apix, k[..., 1] / apix
        volt = kv * 1000
        lam = 12.2639 / np.sqrt(volt + 0.97845e-6 * volt**2)
        ang, s2 = np.arctan2(y, x), x**2 + y**2
        df = 0.5 * (dfu + dfv + (dfu - dfv) * np.cos(2 * (ang - np.deg2rad(dfang))))
        gamma = 2 * np.pi * (-0.5 * df * lam * s2 + 0.25 * cs * 1e7 * lam**3 * s2**2)
        want = np.sqrt(1 - w**2) * np.sin(gamma) - w * np.cos(gamma)
        keep = np.abs(fb[i]) > 1e-3 * np.abs(fb[i]).max()
        measured = fa[i][keep] / fb[i][keep]
        assert np.abs(measured.imag).max() < 1e-3
        assert np.abs(measured.real - want[keep]).max() < 1e-3
        assert np.abs(measured.real - want.T[keep]).max() > 0.05  # x/y swapped would fail


def test_noise_has_the_requested_snr():
    rng = np.random.default_rng(4)
    clean = torch.as_tensor(rng.normal(size=(64, 32, 32)) * 3.0, dtype=torch.float32)
    sigma = cryoem.noise_sigma(clean, snr=0.25)
    assert sigma == pytest.approx(6.0, rel=0.02)
    noisy = cryoem.add_noise(clean, sigma, torch.Generator().manual_seed(0))
    measured = clean.var() / (noisy - clean).var()
    assert float(measured) == pytest.approx(0.25, rel=0.03)
    with pytest.raises(InputError):
        cryoem.noise_sigma(clean, -1.0)


def _fsc(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    D = a.shape[0]
    fa, fb = np.fft.fftshift(np.fft.fftn(a)), np.fft.fftshift(np.fft.fftn(b))
    c = np.arange(D) - D // 2
    z, y, x = np.meshgrid(c, c, c, indexing="ij")
    shell = np.round(np.sqrt(x**2 + y**2 + z**2)).astype(int)
    out = []
    for r in range(D // 2 + 1):
        m = shell == r
        num = np.sum(fa[m] * fb[m].conj()).real
        out.append(num / np.sqrt(np.sum(np.abs(fa[m]) ** 2) * np.sum(np.abs(fb[m]) ** 2)))
    return np.array(out)


def test_reconstruction_from_noiseless_images_reproduces_the_volume():
    D, N = 32, 2000
    rng = np.random.default_rng(5)
    c = np.arange(D) - D // 2
    z, y, x = np.meshgrid(c, c, c, indexing="ij")
    vol = np.zeros((D, D, D))
    for _ in range(30):
        p, s = rng.uniform(-8, 8, 3), rng.uniform(1.0, 2.0)
        vol += rng.uniform(0.5, 1) * np.exp(-((x - p[0]) ** 2 + (y - p[1]) ** 2 + (z - p[2]) ** 2)
                                            / (2 * s * s))  # fmt: skip
    rot = random_rotations(N, rng)
    shifts = rng.uniform(-3, 3, (N, 2))
    params = np.zeros((N, 9))
    params[:, 0], params[:, 1] = D, 3.0
    params[:, 2] = rng.uniform(10000, 25000, N)
    params[:, 3] = params[:, 2] - 300
    params[:, 4] = rng.uniform(-90, 90, N)
    params[:, 5:8] = 300, 2.7, 0.1
    images = cryoem.form_images(cryoem.Projector(vol), rot, shifts, params).numpy()
    rec = backproject(images, rot, shifts, params)
    fsc = _fsc(rec, vol)
    # FSC > 0.5 out to 2/3 of Nyquist (shell D/3)
    assert fsc[: D // 3 + 1].min() > 0.5, fsc
    # and a reconstruction with wrong poses (transposed matrices) does not
    wrong = backproject(images[:500], rot[:500].transpose(0, 2, 1), shifts[:500], params[:500])
    assert _fsc(wrong, vol)[D // 4 : D // 3].max() < 0.5
