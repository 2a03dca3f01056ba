"""Uncertainty metrics and the std calibration, on Gaussian samples where the answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from densitydiff.errors import InputError
from densitydiff.sharpen.evaluate import fit_std_scale, uncertainty_metrics


def _gaussian(shape=(24, 24, 24), seed=0):
    """mu, a per-voxel s that varies over the box, and truth ~ N(mu, s^2)."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(size=shape)
    s = np.exp(rng.uniform(np.log(0.2), np.log(3.0), size=shape))
    truth = mu + s * rng.normal(size=shape)
    return mu, s, truth


def test_calibrated_std_covers_68_and_95_percent():
    mu, s, truth = _gaussian()
    m = uncertainty_metrics(mu, s, truth)
    assert m["coverage_1"] == pytest.approx(0.6827, abs=0.01)
    assert m["coverage_2"] == pytest.approx(0.9545, abs=0.006)
    # |error| = s |z|: rank correlation of s with s |z|, clearly positive (0.5-0.6 for this s)
    assert 0.4 < m["spearman_box"] < 0.8
    mask = np.zeros(mu.shape, bool)
    mask[4:20, 4:20, 4:20] = True
    inside = uncertainty_metrics(mu, s, truth, mask)
    assert inside["coverage_1"] == pytest.approx(0.6827, abs=0.02)
    assert inside["spearman_mask"] == pytest.approx(m["spearman_box"], abs=0.06)


def test_uninformative_std_has_no_rank_correlation():
    mu, _, truth = _gaussian(seed=1)
    rng = np.random.default_rng(7)
    m = uncertainty_metrics(mu, rng.uniform(0.5, 1.5, mu.shape), truth)
    assert abs(m["spearman_box"]) < 0.05


def test_fit_std_scale_recovers_the_missing_factor():
    mu, s, truth = _gaussian(seed=2)
    assert fit_std_scale([(mu, s, truth)]) == pytest.approx(1.0, abs=0.03)
    assert fit_std_scale([(mu, s / 2, truth)]) == pytest.approx(2.0, abs=0.06)
    assert fit_std_scale([(mu, s / 2, truth)], level=2) == pytest.approx(2.0, abs=0.08)
    c = fit_std_scale([(mu, s * 3, truth)])
    m = uncertainty_metrics(mu, c * s * 3, truth)
    assert m["coverage_1"] == pytest.approx(0.6827, abs=0.005)
    with pytest.raises(InputError):
        fit_std_scale([(mu, np.zeros_like(s), truth)])
    with pytest.raises(InputError):
        uncertainty_metrics(mu, -s, truth)


def test_model_std_scale_multiplies_the_std_map(tmp_path):
    """A model file that carries std_scale = 3 writes 3 x the std of the same draws."""
    import torch
    from tiny_models import export_tiny

    from densitydiff.maps import DensityMap
    from densitydiff.sharpen.checkpoint import export_sharpener, load_sharpener
    from densitydiff.sharpen.infer import sharpen_map

    plain = export_tiny("ddpm", tmp_path, name="plain")  # named: built here, with its run
    ckpt = tmp_path / "run_ddpm" / "checkpoints" / "last.ckpt"
    scaled = export_sharpener(ckpt, tmp_path / "scaled.pt", voxel_size=1.0, patch=16,
                              training_structures=[], std_scale=3.0)  # fmt: skip
    assert load_sharpener(scaled).std_scale == 3.0 and load_sharpener(plain).std_scale == 1.0
    rng = np.random.default_rng(0)
    density = DensityMap(rng.normal(size=(16, 16, 16)).astype(np.float32), (1.0,) * 3)
    torch.manual_seed(0)
    kw = dict(input_resolution=4, target_resolution=2, samples=2, sampler="ddim", steps=2)
    a = sharpen_map(density, plain, **kw)
    b = sharpen_map(density, scaled, **kw)
    np.testing.assert_allclose(b.mean.array, a.mean.array, atol=1e-5)
    np.testing.assert_allclose(b.std.array, 3 * a.std.array, rtol=1e-4, atol=1e-6)
    assert b.info["std_scale"] == 3.0


def test_a_calibrated_std_drawn_with_another_recipe_is_flagged(one_thread):
    """The packaged refine model's std_scale was fitted for its own sampler and steps: other steps
    give a warning, its own give none."""
    from densitydiff.maps import DensityMap
    from densitydiff.sharpen.checkpoint import load_sharpener
    from densitydiff.sharpen.infer import sharpen_map

    model = load_sharpener("refine")
    assert model.std_scale != 1.0
    density = DensityMap(np.random.default_rng(0).normal(size=(16, 16, 16)).astype(np.float32), 1.0)
    own = model.model.sampling.steps
    kw = dict(input_resolution=4.0, target_resolution=2.0, samples=2)
    other = sharpen_map(density, model, steps=own + 1, **kw).info["warnings"]
    assert any("not calibrated" in w and f"{own} steps" in w for w in other), other
    assert not any("calibrated" in w for w in sharpen_map(density, model, **kw).info["warnings"])
    flipped = not model.model.sampling.antithetic  # the other way of pairing the draws
    other = sharpen_map(density, model, antithetic=flipped, **kw).info["warnings"]
    assert any("not calibrated" in w for w in other), other
