"""Metrics against independent computations: a direct full-FFT FSC, numpy low-passes, skimage."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from densitydiff.errors import InputError
from densitydiff.metrics import (
    FSCCurve,
    cc,
    compare_maps,
    fsc,
    fsc_auc,
    psnr,
    resolution_at,
    ssim,
)


def _freq_magnitude(shape, voxel):
    """|s| (1/Å) on the full fftn grid, independent of the module's half-spectrum code."""
    axes = [np.fft.fftfreq(n, d=v) for n, v in zip(shape, voxel)]
    sz, sy, sx = np.meshgrid(*axes, indexing="ij")
    return np.sqrt(sz**2 + sy**2 + sx**2)


EPS = Fraction(1, 10**9)  # docs/metrics.md: |s| within 1e-9 shell widths of a boundary is on it


def _exact_shells(shape, voxel):
    """Shell index of every full-fftn voxel in exact rational arithmetic (an independent oracle).

    Voxel sizes are binary floats, so each frequency i/(n v) and the shell width 1/max(n v) are
    exact rationals: t = |s|/w has t^2 = sum (i L / (n v))^2 with L = max(n v), and shell
    k = floor(t + 1/2 + eps) is decided by comparing t^2 with (k - 1/2 - eps)^2 exactly. Floats
    decide every voxel clearly off a boundary; Fractions decide the rest.
    """
    vox = [Fraction(float(v)) for v in voxel]
    edge = max(Fraction(n) * v for n, v in zip(shape, vox))
    idx = [np.fft.fftfreq(n, d=1.0 / n).round().astype(int) for n in shape]  # signed indices
    ratio = [[Fraction(int(i)) * edge / (n * v) for i in ix] for ix, n, v in zip(idx, shape, vox)]
    fz, fy, fx = np.meshgrid(*[np.array([float(r) for r in rs]) for rs in ratio], indexing="ij")
    t = np.sqrt(fz**2 + fy**2 + fx**2)
    k = np.floor(t + 0.5).astype(int)
    near = np.abs((t + 0.5) - np.round(t + 0.5)) < 1e-6
    for z, y, x in zip(*np.nonzero(near)):
        t2 = ratio[0][z] ** 2 + ratio[1][y] ** 2 + ratio[2][x] ** 2
        j = int(np.round(t[z, y, x] + 0.5))  # the boundary j - 1/2 it lies near
        k[z, y, x] = j if t2 >= (Fraction(2 * j - 1, 2) - EPS) ** 2 else j - 1
    return k, 1.0 / float(edge)


def _direct_fsc(a, b, voxel):
    """Slow reference: full complex fftn, shells from exact arithmetic, a selection per shell."""
    voxel = np.broadcast_to(np.asarray(voxel, dtype=float), (3,))
    fa, fb = np.fft.fftn(a), np.fft.fftn(b)
    shell, width = _exact_shells(a.shape, voxel)
    n_shells = int(math.floor(1.0 / (2.0 * voxel.max()) / width + 1e-9)) + 1
    out, counts = [], []
    for k in range(n_shells):
        sel = shell == k
        num = np.sum(fa[sel] * np.conj(fb[sel])).real
        den = math.sqrt(np.sum(np.abs(fa[sel]) ** 2) * np.sum(np.abs(fb[sel]) ** 2))
        out.append(num / den if den > 0 else 0.0)
        counts.append(int(sel.sum()))
    return np.arange(n_shells) * width, np.array(out), np.array(counts)


def _hard_lowpass(a, voxel, cutoff):
    """Zero every Fourier coefficient with |s| > cutoff (1/Å), written here with plain numpy."""
    s = _freq_magnitude(a.shape, np.broadcast_to(np.asarray(voxel, dtype=float), (3,)))
    f = np.fft.fftn(a)
    f[s > cutoff] = 0
    return np.fft.ifftn(f).real


def _z(x):
    x = np.asarray(x, dtype=np.float64)
    return (x - x.mean()) / x.std()


# --------------------------------------------------------------------------------------- FSC


@pytest.mark.parametrize(
    "shape, voxel",
    [((16, 16, 16), 1.0), ((10, 12, 9), (1.2, 0.9, 1.5)), ((9, 11, 14), (0.8, 1.1, 1.0))],
)
def test_identical_maps_give_one_in_every_shell(shape, voxel):
    a = np.random.default_rng(1).standard_normal(shape)
    curve = fsc(a, a, voxel)
    np.testing.assert_allclose(curve.fsc, 1.0, atol=1e-12)
    assert resolution_at(curve, 0.143) == pytest.approx(2.0 * np.max(voxel))


def test_cubic_shells_are_one_fourier_voxel_wide_up_to_nyquist():
    curve = fsc(np.ones((20, 20, 20)), np.ones((20, 20, 20)), 1.5)
    np.testing.assert_allclose(curve.frequencies, np.arange(11) / (20 * 1.5))
    assert curve.frequencies[-1] == pytest.approx(1 / (2 * 1.5))


@pytest.mark.parametrize(
    "shape, voxel, mask",
    [
        ((10, 12, 9), (1.3, 0.95, 1.5), False),  # odd x: only x-frequency 0 is self-paired
        ((9, 11, 14), (0.8, 1.1, 1.0), True),  # even x: the Nyquist column too; soft mask
        ((12, 12, 12), 1.0, False),
    ],
)
def test_fsc_matches_direct_full_fft_reference(shape, voxel, mask):
    rng = np.random.default_rng(2)
    a = rng.standard_normal(shape)
    b = 0.6 * a + rng.standard_normal(shape)
    m = None
    if mask:
        s = _freq_magnitude(shape, (1, 1, 1))  # any smooth positive field will do as a soft mask
        m = np.exp(-(s**2) * 3.0)
        freq, ref, counts = _direct_fsc(a * m, b * m, voxel)
    else:
        freq, ref, counts = _direct_fsc(a, b, voxel)
    curve = fsc(a, b, voxel, mask=m)
    np.testing.assert_allclose(curve.frequencies, freq, rtol=1e-12)
    np.testing.assert_array_equal(curve.counts, counts)
    np.testing.assert_allclose(curve.fsc, ref, atol=1e-6)
    # float32 maps take the float32 path: same curve to float32 accuracy
    curve32 = fsc(a.astype(np.float32), b.astype(np.float32), voxel, mask=m)
    np.testing.assert_allclose(curve32.fsc, ref, atol=1e-4)


def test_shell_counts_with_exact_boundaries():
    # extents 12, 10.8, 13.5 Å, shell width w = 1/13.5 Å^-1, so |s|/w = |(9kz/8, 5ky/4, kx)| and
    # 64 (|s|/w)^2 is an integer: count shells exactly, boundaries (k +- 1/2) going outward
    shape, voxel = (10, 12, 9), (1.2, 0.9, 1.5)
    kz, ky, kx = np.meshgrid(*[np.fft.fftfreq(n, 1 / n) for n in shape], indexing="ij")
    x64 = (81 * kz**2 + 100 * ky**2 + 64 * kx**2).round().astype(int)
    expected = [
        np.count_nonzero((16 * (2 * k - 1) ** 2 <= x64) & (x64 < 16 * (2 * k + 1) ** 2))
        for k in range(5)  # Nyquist of the 1.5 Å axis is 4.5 widths: shells 0..4
    ]
    expected[0] = 1
    curve = fsc(np.ones(shape), np.ones(shape), voxel)
    np.testing.assert_array_equal(curve.counts, expected)


def test_hard_lowpass_crosses_where_the_filter_cuts():
    n, voxel, k_cut = 48, 1.5, 8
    width = 1.0 / (n * voxel)
    cutoff = (k_cut + 0.5) * width  # a shell boundary: shells <= k_cut kept whole, others gone
    r = 1.0 / cutoff
    a = np.random.default_rng(3).standard_normal((n, n, n))
    b = _hard_lowpass(a, voxel, cutoff)
    curve = fsc(a, b, voxel)
    assert np.all(curve.fsc[1 : k_cut + 1] > 0.999)
    assert np.all(np.abs(curve.fsc[k_cut + 1 :]) < 0.2)
    assert resolution_at(curve, 0.5) == pytest.approx(r, rel=0.02)
    res143 = resolution_at(curve, 0.143)
    assert 1.0 / ((k_cut + 1) * width) < res143 < r


def test_lowpass_of_random_blobs_anisotropic():
    rng = np.random.default_rng(4)
    shape, voxel = (40, 36, 44), (1.0, 1.2, 0.9)
    grid = np.stack(np.meshgrid(*[np.arange(s) * v for s, v in zip(shape, voxel)], indexing="ij"))
    a = np.zeros(shape)
    for _ in range(30):
        c = rng.uniform(0, 1, 3) * np.array(shape) * np.array(voxel)
        c = c[:, None, None, None]
        a += np.exp(-np.sum((grid - c) ** 2, axis=0) / (2 * 1.2**2))
    width = 1.0 / max(n * v for n, v in zip(shape, voxel))
    cutoff = 6.5 * width
    curve = fsc(a, _hard_lowpass(a, voxel, cutoff), voxel)
    assert resolution_at(curve, 0.5) == pytest.approx(1.0 / cutoff, rel=0.03)


def test_independent_noise_is_uncorrelated_at_the_expected_level():
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((2, 40, 40, 40))
    curve = fsc(a, b, 1.0)
    k = slice(3, None)  # shells with enough voxels for the normal approximation
    z = curve.fsc[k] * np.sqrt(curve.counts[k])  # FSC of white noise has variance 1/count
    assert np.all(np.abs(z) < 5)
    assert 0.6 < np.mean(z**2) < 1.5


@given(
    shape=st.tuples(*[st.integers(2, 7)] * 3),
    voxel=st.tuples(*[st.floats(0.5, 3.0)] * 3),
    seed=st.integers(0, 2**32 - 1),
    scale=st.floats(1e-3, 1e3),
)
# found by hypothesis: |s| = 1/(2 * 0.8359375) is exactly 2.5 shell widths, a boundary that a
# float oracle put in shell 2 (2.4999999999999996); the convention puts it in shell 3
@example(shape=(2, 2, 5), voxel=(1.0, 0.8359375, 0.8359375), seed=0, scale=1.0)
@example(shape=(2, 2, 3), voxel=(0.5, 0.5000000000000001, 0.5), seed=0, scale=1.0)  # 1 ulp off
def test_fsc_symmetric_and_bounded(shape, voxel, seed, scale):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape) * scale
    b = rng.standard_normal(shape) + 0.5 * a
    ab, ba = fsc(a, b, voxel), fsc(b, a, voxel)
    np.testing.assert_allclose(ab.fsc, ba.fsc, atol=1e-12)
    assert np.all(np.abs(ab.fsc) <= 1.0)
    np.testing.assert_allclose(ab.fsc, _direct_fsc(a, b, voxel)[1], atol=1e-6)


# ------------------------------------------------------------------ resolution_at and AUC


def test_resolution_interpolates_linearly_in_frequency():
    curve = FSCCurve(np.array([0.0, 0.1, 0.2, 0.3]), np.array([0.0, 0.9, 0.3, 0.1]), (1, 1, 1))
    # 0.5 crossing: 0.1 + (0.9-0.5)/(0.9-0.3)*0.1 = 1/6 1/Å; shell 0 (0.0 < 0.5) is skipped
    assert resolution_at(curve, 0.5) == pytest.approx(6.0)
    # 0.143 crossing: 0.2 + (0.3-0.143)/(0.3-0.1)*0.1
    assert resolution_at(curve, 0.143) == pytest.approx(1 / (0.2 + 0.157 / 0.2 * 0.1))
    # below already at shell 1: shell 1's resolution
    assert resolution_at(curve, 0.95) == pytest.approx(10.0)


def test_resolution_never_crossing_is_nyquist():
    curve = FSCCurve(np.arange(5) * 0.1, np.ones(5), (1.0, 1.25, 1.1))
    assert resolution_at(curve, 0.143) == pytest.approx(2.5)


@pytest.mark.parametrize("bad", [1.0, -1.0, float("nan"), 2.0])
def test_resolution_rejects_bad_threshold(bad):
    curve = FSCCurve(np.arange(5) * 0.1, np.ones(5), (1, 1, 1))
    with pytest.raises(InputError):
        resolution_at(curve, bad)


def test_auc_of_analytic_curves():
    f = np.arange(11) * 0.05
    assert fsc_auc(FSCCurve(f, np.ones(11), (1, 1, 1))) == pytest.approx(1.0)
    assert fsc_auc(FSCCurve(f, np.full(11, 0.3), (1, 1, 1))) == pytest.approx(0.3)
    lin = FSCCurve(f, 1.0 - f, (1, 1, 1))  # mean of 1 - f over [0.05, F] is 1 - (0.05 + F)/2
    assert fsc_auc(lin) == pytest.approx(1 - 0.55 / 2)
    assert fsc_auc(lin, 0.3) == pytest.approx(1 - 0.35 / 2)
    assert fsc_auc(lin, 0.33) == pytest.approx(1 - 0.38 / 2)  # between shells
    assert fsc_auc(lin, 5.0) == pytest.approx(1 - 0.55 / 2)  # clipped to the last shell
    with pytest.raises(InputError):
        fsc_auc(lin, 0.01)


# ------------------------------------------------------------------------ real-space metrics


def test_psnr_and_ssim_match_skimage_after_zscore():
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    rng = np.random.default_rng(6)
    truth = rng.gamma(2.0, size=(16, 18, 20)) * 3 + 5
    est = 0.5 * truth + rng.standard_normal(truth.shape) - 2
    tz, ez = _z(truth), _z(est)
    dr = tz.max() - tz.min()
    assert psnr(est, truth) == pytest.approx(peak_signal_noise_ratio(tz, ez, data_range=dr))
    assert ssim(est, truth) == pytest.approx(structural_similarity(tz, ez, data_range=dr))
    # z-scoring makes both invariant to an affine change of the estimate's scale
    assert psnr(3 * est + 7, truth) == pytest.approx(psnr(est, truth))


def test_cc_matches_corrcoef():
    rng = np.random.default_rng(7)
    a = rng.standard_normal((8, 9, 10))
    b = a + rng.standard_normal(a.shape)
    m = rng.uniform(size=a.shape) > 0.6
    assert cc(a, b) == pytest.approx(np.corrcoef(a.ravel(), b.ravel())[0, 1])
    assert cc(a, b, m) == pytest.approx(np.corrcoef(a[m], b[m])[0, 1])
    assert cc(a, b, m.astype(np.uint8)) == pytest.approx(np.corrcoef(a[m], b[m])[0, 1])
    assert cc(a, np.zeros_like(a)) == 0.0


def test_compare_maps_keys_and_identical_maps():
    rng = np.random.default_rng(8)
    truth = rng.standard_normal((16, 16, 16)).astype(np.float32)
    est = truth + 0.5 * rng.standard_normal(truth.shape).astype(np.float32)
    mask = truth > 0
    out = compare_maps(est, truth, 1.2, mask=mask)
    assert set(out) == {"fsc_0.5", "fsc_0.143", "fsc_auc", "psnr", "ssim", "cc_box", "cc_mask"}
    assert out["cc_box"] == pytest.approx(np.corrcoef(est.ravel(), truth.ravel())[0, 1], abs=1e-6)
    assert out["cc_mask"] == pytest.approx(np.corrcoef(est[mask], truth[mask])[0, 1], abs=1e-6)
    # white noise at SNR 4 in every shell: FSC ~ 1/sqrt(1 + 1/4) = 0.894 everywhere
    assert out["fsc_auc"] == pytest.approx(1 / math.sqrt(1.25), abs=0.03)
    assert out["fsc_0.143"] == pytest.approx(2.4)
    same = compare_maps(truth, truth, 1.2)
    assert same["cc_mask"] is None
    assert same["fsc_0.5"] == pytest.approx(2.4) and same["fsc_auc"] == pytest.approx(1.0)
    assert same["ssim"] == pytest.approx(1.0) and same["cc_box"] == pytest.approx(1.0)
    assert same["psnr"] == math.inf


# ------------------------------------------------------------------------------- bad inputs


def test_bad_inputs_raise_input_error():
    a = np.zeros((8, 8, 8))
    a[0, 0, 0] = 1
    nan = a.copy()
    nan[1, 2, 3] = np.nan
    cases = [
        lambda: fsc(a, np.zeros((8, 8, 9)), 1.0),
        lambda: fsc(a, nan, 1.0),
        lambda: fsc(a, a + np.inf, 1.0),
        lambda: fsc(a, a, -1.0),
        lambda: fsc(a, a, (1.0, 1.0)),
        lambda: fsc(a, a, 1.0, mask=np.ones((8, 8))),
        lambda: fsc(a[0], a[0], 1.0),
        lambda: compare_maps(nan, a, 1.0),
        lambda: compare_maps(a, a[:7], 1.0),
        lambda: cc(a, a, np.full(a.shape, 0.5)),
        lambda: cc(a, nan),
        lambda: psnr(a, np.ones_like(a)),
        lambda: ssim(a[:5], a[:5]),
    ]
    for case in cases:
        with pytest.raises(InputError):
            case()
