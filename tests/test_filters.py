"""Filters against analytic results: plane waves, Gaussians (Debye-Waller), centred boxes."""

from __future__ import annotations

import numpy as np
import pytest

from densitydiff import DensityMap, InputError
from densitydiff.filters import (
    MOLECULE_PADDING,
    bfactor,
    lowpass,
    molecule_box,
    otsu_threshold,
    pad_or_crop,
    resample,
    unzscore,
    zscore,
)

VOXEL = (0.8, 1.0, 1.25)  # anisotropic (z, y, x)
SHAPE = (40, 36, 30)  # non-cubic


def _coords(shape, voxel):
    return np.meshgrid(*[np.arange(n) * v for n, v in zip(shape, voxel)], indexing="ij")


def _wave(m, shape=SHAPE, voxel=VOXEL):
    """cos(2 pi s.r) with integer cycles m (z, y, x) across the box; returns (array, |s|)."""
    z, y, x = _coords(shape, voxel)
    s = [mi / (n * v) for mi, n, v in zip(m, shape, voxel)]
    return np.cos(2 * np.pi * (s[0] * z + s[1] * y + s[2] * x)), float(np.linalg.norm(s))


@pytest.mark.parametrize("m", [(0, 0, 3), (4, 0, 0), (2, 3, 1), (0, 5, 2)])
def test_lowpass_kernels_on_plane_waves(m):
    wave, s = _wave(m)
    for resolution in (2.6, 4.0, 7.0, 12.0):
        cutoff = 1 / resolution
        gain = {
            "hard": float(s <= cutoff),
            "gaussian": np.exp(-np.log(2) * (s * resolution) ** 2),
        }
        w = 0.15 * cutoff  # documented default edge
        t = np.clip((s - (cutoff - w)) / w, 0, 1)
        gain["cosine"] = 0.5 * (1 + np.cos(np.pi * t))
        for kind, g in gain.items():
            out = lowpass(wave, VOXEL, resolution, kind=kind)
            np.testing.assert_allclose(out, g * wave, atol=1e-9, err_msg=f"{kind} {resolution}")


def test_lowpass_values_at_the_cutoff_are_as_documented():
    # box of 100 voxels of 1 A: frequency 10/100 = 0.1 1/A = 1/(10 A) exactly
    wave, s = _wave((0, 0, 10), (4, 4, 100), (1.0, 1.0, 1.0))
    assert s == pytest.approx(0.1)
    assert np.abs(lowpass(wave, 1.0, 10.0, "hard")).max() == pytest.approx(1.0)
    assert np.abs(lowpass(wave, 1.0, 10.0, "cosine")).max() < 1e-9
    assert np.abs(lowpass(wave, 1.0, 10.0, "gaussian")).max() == pytest.approx(0.5)
    # a custom cosine width: half way down the edge the gain is 0.5
    wave2, _ = _wave((0, 0, 9), (4, 4, 100), (1.0, 1.0, 1.0))
    assert np.abs(lowpass(wave2, 1.0, 10.0, "cosine", width=0.02)).max() == pytest.approx(0.5)


def _gauss_density(B, shape=(48, 40, 44), voxel=(0.5, 0.6, 0.55)):
    """rho(r) = (4 pi / B)^1.5 exp(-4 pi^2 r^2 / B): Fourier transform exp(-B s^2 / 4)."""
    z, y, x = _coords(shape, voxel)
    c = [(n // 2) * v for n, v in zip(shape, voxel)]
    r2 = (z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2
    return (4 * np.pi / B) ** 1.5 * np.exp(-4 * np.pi**2 * r2 / B)


def test_bfactor_blurs_and_sharpens_gaussians():
    v = (0.5, 0.6, 0.55)
    g40, g70 = _gauss_density(40.0), _gauss_density(70.0)
    np.testing.assert_allclose(bfactor(g40, v, 30.0), g70, atol=1e-5 * g40.max())
    np.testing.assert_allclose(bfactor(g70, v, -30.0), g40, atol=1e-3 * g40.max())


def test_resample_anisotropic_to_isotropic_matches_the_analytic_function():
    # extent 32 x 36 x 37.5 A; 1 A voxels keep x's extent only to within half a voxel
    m1, m2 = (2, 1, 3), (1, 4, 2)
    w1, _ = _wave(m1)
    w2, _ = _wave(m2)
    origin = (5.0, -3.0, 11.0)
    src = DensityMap(w1 + 0.5 * w2, VOXEL, origin)
    out = resample(src, 1.0)
    assert out.voxel_size == (1.0, 1.0, 1.0) and out.origin == origin
    extent = np.array(SHAPE) * VOXEL
    assert out.shape == tuple(int(round(e)) for e in extent)
    # the periodic band-limited function evaluated on the new grid (positions from the origin)
    z, y, x = _coords(out.shape, (1.0, 1.0, 1.0))
    expect = np.zeros(out.shape)
    for m, a in ((m1, 1.0), (m2, 0.5)):
        s = [mi / e for mi, e in zip(m, extent)]
        expect += a * np.cos(2 * np.pi * (s[0] * z + s[1] * y + s[2] * x))
    np.testing.assert_allclose(out.array, expect, atol=1e-5)


def test_resample_down_removes_frequencies_beyond_the_new_nyquist():
    low, _ = _wave((0, 2, 0), (20, 40, 40), (1.0, 1.0, 1.0))
    high, _ = _wave((0, 0, 15), (20, 40, 40), (1.0, 1.0, 1.0))  # 0.375 1/A > 1/(2*2 A)
    out = resample(DensityMap(low + high, 1.0), 2.0)
    assert out.shape == (10, 20, 20)
    np.testing.assert_allclose(out.array, low[::2, ::2, ::2], atol=1e-5)


def test_pad_or_crop_keeps_the_centre_voxel():
    a = np.zeros((7, 8, 9))
    a[3, 4, 4] = 1.0  # the n//2 voxel
    for shape in [(12, 10, 5), (4, 4, 4), (7, 8, 9), (9, 3, 20)]:
        out = pad_or_crop(a, shape, value=-1.0)
        assert out.shape == shape
        assert out[shape[0] // 2, shape[1] // 2, shape[2] // 2] == 1.0
        assert out.sum() == 1.0 - np.sum(out == -1.0)
    b = np.random.default_rng(0).normal(size=(6, 7, 8))
    np.testing.assert_array_equal(pad_or_crop(pad_or_crop(b, (11, 12, 13)), b.shape), b)


def test_zscore_and_inverse():
    rng = np.random.default_rng(1)
    a = rng.normal(3.0, 2.0, size=(10, 11, 12))
    z, (mean, std) = zscore(a)
    assert abs(z.mean()) < 1e-9 and abs(z.std() - 1) < 1e-9
    assert mean == pytest.approx(a.mean()) and std == pytest.approx(a.std())
    np.testing.assert_allclose(unzscore(z, (mean, std)), a)
    mask = a > 3.0
    zm, (mm, sm) = zscore(a, mask)
    assert mm == pytest.approx(a[mask].mean()) and sm == pytest.approx(a[mask].std())
    assert abs(zm[mask].mean()) < 1e-9
    box = (slice(2, 7), slice(0, 11), slice(5, 12))  # a box of slices: stats over it alone
    zb, (mb, sb) = zscore(a, box)
    assert mb == pytest.approx(a[2:7, :, 5:].mean()) and sb == pytest.approx(a[2:7, :, 5:].std())
    assert zb.shape == a.shape and abs(zb[box].mean()) < 1e-9


def test_bad_inputs():
    a = np.zeros((8, 8, 8))
    for res in (0.0, -2.0, float("nan")):
        with pytest.raises(InputError, match="resolution"):
            lowpass(a, 1.0, res)
    with pytest.raises(InputError, match="kind"):
        lowpass(a, 1.0, 4.0, kind="box")
    with pytest.raises(InputError, match="voxel_size"):
        lowpass(a, 0.0, 4.0)
    with pytest.raises(InputError, match="3-D"):
        bfactor(np.zeros((4, 4)), 1.0, 10.0)
    with pytest.raises(InputError, match="constant"):
        zscore(np.ones((3, 3, 3)))
    with pytest.raises(InputError, match="no voxels"):
        zscore(a, np.zeros_like(a, bool))
    with pytest.raises(InputError, match="voxel_size"):
        resample(DensityMap(a, 1.0), -1.0)


def test_hard_lowpass_keeps_a_frequency_exactly_on_the_cutoff():
    # on an 8^3 grid of 0.9 Å voxels the (3, 4, 0) coefficient has |s| = 5/(8 * 0.9) 1/Å exactly
    # (a 3-4-5 triangle), but the float sqrt lands one ulp above 1/r for r = 8 * 0.9 / 5 Å; the
    # convention (filters module doc, as FSC shells) keeps a frequency on the cutoff
    from densitydiff.filters import frequency_magnitude, lowpass_kernel

    s = frequency_magnitude((8, 8, 8), 0.9)
    r = 8 * 0.9 / 5
    assert s[3, 4, 0] > 1.0 / r  # the float noise this test is about
    assert lowpass_kernel(s, r, "hard")[3, 4, 0] == 1.0
    assert lowpass_kernel(s, r * (1 + 1e-6), "hard")[3, 4, 0] == 0.0  # truly beyond: cut


def test_otsu_threshold_falls_between_two_populations():
    """Two well-separated normal populations (means 0 and 10, std 1): Otsu's split lies in the
    gap between them (beyond 3 std of each), where it misclassifies under 0.2 % of either."""
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(0, 1, 20000), rng.normal(10, 1, 20000)])
    assert 3.0 < otsu_threshold(values) < 7.0
    # a minority class (5 %) is still split from the majority
    values = np.concatenate([rng.normal(0, 1, 38000), rng.normal(10, 1, 2000)])
    assert 2.0 < otsu_threshold(values) < 8.0


@pytest.mark.parametrize("voxel", [1.0, (1.0, 1.5, 2.0)])
def test_molecule_box_is_the_density_box_grown_by_the_padding(voxel):
    """A block of density in a large, noisy solvent box: the box is the block plus the padding
    (in voxels per axis), clipped to the map where the block nears its edge."""
    a = np.random.default_rng(1).normal(0, 0.05, (96, 80, 72)).astype(np.float32)
    a[30:50, 40:60, 60:70] += 1.0
    box = molecule_box(a, voxel)
    pads = [int(np.ceil(MOLECULE_PADDING / v)) for v in np.broadcast_to(voxel, 3)]
    for sl, (lo, hi), pad, n in zip(box, [(30, 50), (40, 60), (60, 70)], pads, a.shape):
        assert abs(sl.start - max(0, lo - pad)) <= 1, (sl, lo, pad)
        assert abs(sl.stop - min(n, hi + pad)) <= 1, (sl, hi, pad)
    assert box[2].stop == 72  # the block is 2 voxels from the x edge: clipped


def test_molecule_box_of_a_constant_or_filled_map_is_the_whole_grid():
    assert molecule_box(np.ones((10, 12, 14)), 1.0) == (slice(0, 10), slice(0, 12), slice(0, 14))
    with pytest.raises(InputError, match="NaN"):
        molecule_box(np.full((10, 12, 14), np.nan), 1.0)
    filled = np.random.default_rng(2).normal(0, 1, (30, 30, 30))
    box = molecule_box(filled, 1.0)
    assert all(sl.start == 0 and sl.stop == 30 for sl in box), box
