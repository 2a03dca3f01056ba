"""Latent-set distances against closed forms for Gaussians, and their limits."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from densitydiff.prior.metrics import (
    energy_distance,
    median_bandwidth,
    mmd,
    mmd2,
    sliced_wasserstein,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def rbf_mmd2_gaussians(delta: float, s: float, h: float, d: int) -> float:
    """MMD^2 between N(mu1, s^2 I_d), N(mu2, s^2 I_d), |mu1 - mu2| = delta, kernel bandwidth h.

    E exp(-|u|^2/(2h^2)) for u ~ N(m, 2 s^2 I) = (h^2/(h^2+2s^2))^(d/2) exp(-|m|^2/(2(h^2+2s^2))).
    """
    c = (h**2 / (h**2 + 2 * s**2)) ** (d / 2)
    return 2 * c * (1 - math.exp(-(delta**2) / (2 * (h**2 + 2 * s**2))))


def test_mmd2_matches_closed_form_for_shifted_gaussians():
    rng = np.random.default_rng(0)
    d, s, n = 3, 1.0, 2000
    shift = np.array([1.0, 0.5, 0.0])
    x = rng.normal(0, s, (n, d))
    y = rng.normal(0, s, (n, d)) + shift
    for h in (0.7, 1.5, 3.0):
        expected = rbf_mmd2_gaussians(float(np.linalg.norm(shift)), s, h, d)
        assert mmd2(x, y, [h], unbiased=True) == pytest.approx(expected, abs=0.01, rel=0.05)
    multi = mmd2(x, y, [0.7, 3.0], unbiased=True)
    expected = 0.5 * sum(
        rbf_mmd2_gaussians(float(np.linalg.norm(shift)), s, h, d) for h in (0.7, 3)
    )
    assert multi == pytest.approx(expected, abs=0.01, rel=0.05)


def test_energy_distance_matches_closed_form_in_1d():
    rng = np.random.default_rng(1)
    m, n = 1.0, 4000
    x, y = rng.normal(0, 1, (n, 1)), rng.normal(m, 1, (n, 1))
    sd = math.sqrt(2)  # X - Y ~ N(-m, 2): folded-normal mean
    e_xy = sd * math.sqrt(2 / math.pi) * math.exp(-(m**2) / (2 * sd**2)) + m * (
        1 - 2 * stats.norm.cdf(-m / sd)
    )
    e_xx = 2 / math.sqrt(math.pi)
    assert energy_distance(x, y) == pytest.approx(2 * e_xy - 2 * e_xx, rel=0.06)
    # point masses a, b: 2|a - b|
    assert energy_distance(np.zeros((5, 2)), np.full((3, 2), 3.0)) == pytest.approx(
        2 * 3 * math.sqrt(2)
    )


def test_sliced_wasserstein_matches_closed_forms():
    rng = np.random.default_rng(2)
    d, n = 2, 3000
    m = np.array([1.5, 0.0])
    x, y = rng.normal(size=(n, d)), rng.normal(size=(n, d)) + m
    # equal covariances: W2^2 along theta is (m . theta)^2, whose sphere average is |m|^2 / d
    sw = sliced_wasserstein(x, y, n_projections=1000)
    assert sw == pytest.approx(math.sqrt(1.5**2 / d), rel=0.04)
    # N(0, I) vs N(0, 4 I): every projection has W2 = |1 - 2|
    assert sliced_wasserstein(x, 2 * rng.normal(size=(n, d))) == pytest.approx(1.0, rel=0.04)
    # unequal set sizes go through quantiles
    assert sliced_wasserstein(x, y[:2000], n_projections=1000) == pytest.approx(sw, rel=0.05)


def test_identical_sets_give_zero_and_distances_grow_with_shift():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(500, 8))
    s = 0.3
    assert mmd(x, x) == pytest.approx(0.0, abs=1e-6)
    assert energy_distance(x, x) == pytest.approx(0.0, abs=1e-9)
    assert sliced_wasserstein(x, x) == pytest.approx(0.0, abs=1e-12)
    near = [mmd(x, x + s), energy_distance(x, x + s), sliced_wasserstein(x, x + s)]
    far = [mmd(x, x + 3 * s), energy_distance(x, x + 3 * s), sliced_wasserstein(x, x + 3 * s)]
    assert all(0 < a < b for a, b in zip(near, far))


def test_median_bandwidth_of_standard_normal():
    rng = np.random.default_rng(4)
    d = 8
    x = rng.normal(size=(1500, d))
    # |x - x'|^2 / 2 ~ chi^2_d: median distance sqrt(2 median(chi^2_d))
    expected = math.sqrt(2 * stats.chi2.ppf(0.5, d))
    assert median_bandwidth(x) == pytest.approx(expected, rel=0.03)
