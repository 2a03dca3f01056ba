"""DDPM schedules, forward process, targets and samplers against analytic answers.

The samplers are checked with exact denoisers: for a point mass the optimal prediction is known
in closed form, and for Gaussian data E[x0 | x_t] is the Gaussian posterior mean, so samples
must reproduce the point or the Gaussian's mean and standard deviation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from densitydiff.diffusion.ddpm import DDPM, make_betas

SAMPLERS = [("ddpm", None), ("ddim", 50), ("dpmsolver++", 25)]


def test_linear_schedule_matches_ho_et_al():
    betas = make_betas(1000, "linear")
    assert betas[0] == pytest.approx(1e-4) and betas[-1] == pytest.approx(0.02)
    d = DDPM(200, "linear")
    assert d.betas_np[0] == pytest.approx(5e-4) and d.betas_np[-1] == pytest.approx(0.1)
    log_ab = np.cumsum(np.log1p(-d.betas_np))
    np.testing.assert_allclose(d.alpha_bar.numpy(), np.exp(log_ab), rtol=1e-5)
    assert d.alpha_bar[-1] < 1e-3  # the last step is (almost) pure noise


def test_cosine_schedule_matches_nichol_dhariwal_eq17():
    t_max = 1000
    d = DDPM(t_max, "cosine")
    t = np.arange(1, t_max + 1)

    def f(tt):
        return np.cos((tt / t_max + 0.008) / 1.008 * math.pi / 2) ** 2

    expected = f(t) / f(0)
    np.testing.assert_allclose(d.alpha_bar.numpy()[:-20], expected[:-20], rtol=1e-4)
    with pytest.raises(ValueError):
        make_betas(10, "quadratic")


def test_q_sample_moments():
    d = DDPM(100, "linear")
    x0 = torch.full((20000, 1), 2.0)
    t = torch.full((20000,), 40)
    x_t = d.q_sample(x0, t, torch.randn(20000, 1, generator=torch.Generator().manual_seed(0)))
    ab = float(np.prod(1 - d.betas_np[:41]))
    assert x_t.mean().item() == pytest.approx(2 * math.sqrt(ab), abs=0.03)
    assert x_t.var().item() == pytest.approx(1 - ab, rel=0.05)


@pytest.mark.parametrize("prediction", ["epsilon", "v"])
def test_target_inverts_to_x0(prediction):
    d = DDPM(50, "cosine", prediction)
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(8, 1, 4, 4, 4, generator=g), torch.randn(8, 1, 4, 4, 4, generator=g)
    t = torch.arange(0, 48, 6)
    x_t = d.q_sample(x0, t, noise)
    target = d.target(x0, noise, t)
    torch.testing.assert_close(d.predict_x0(target, x_t, t), x0, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(d.output_from_x0(x0, x_t, t), target, rtol=1e-3, atol=1e-3)
    if prediction == "v":  # v = sqrt(ab) eps - sqrt(1 - ab) x0 (Salimans & Ho eq. 9)
        ab = torch.tensor(np.cumprod(1 - d.betas_np), dtype=torch.float32)[t].reshape(
            -1, 1, 1, 1, 1
        )
        torch.testing.assert_close(target, ab.sqrt() * noise - (1 - ab).sqrt() * x0)


def _point_mass_oracle(d: DDPM, x_star: torch.Tensor):
    def fn(x_t, t):
        return d.output_from_x0(x_star.expand_as(x_t), x_t, t)

    return fn


@pytest.mark.parametrize("prediction", ["epsilon", "v"])
@pytest.mark.parametrize("sampler,steps", SAMPLERS)
def test_samplers_recover_a_point_mass(prediction, sampler, steps):
    d = DDPM(200, "linear", prediction)
    x_star = torch.linspace(-2, 3, 10).reshape(1, 10)
    g = torch.Generator().manual_seed(1)
    x = d.sample(_point_mass_oracle(d, x_star), (4, 10), sampler=sampler, steps=steps, generator=g)
    torch.testing.assert_close(x, x_star.expand(4, 10), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("sampler,steps", SAMPLERS)
def test_samplers_reproduce_a_gaussian(sampler, steps):
    mu, sig = 1.5, 0.5
    d = DDPM(200, "cosine", "epsilon")

    def oracle(x_t, t):
        a = d.sqrt_alpha_bar[t].reshape(-1, 1)
        s = d.sqrt_one_minus_alpha_bar[t].reshape(-1, 1)
        x0 = mu + a * sig**2 / (a**2 * sig**2 + s**2) * (x_t - a * mu)  # Gaussian posterior mean
        return (x_t - a * x0) / s

    g = torch.Generator().manual_seed(2)
    x = d.sample(oracle, (20000, 1), sampler=sampler, steps=steps, generator=g)
    assert x.mean().item() == pytest.approx(mu, abs=0.02)
    assert x.std().item() == pytest.approx(sig, rel=0.05)


@pytest.mark.parametrize("sampler,steps", SAMPLERS)
def test_sampling_is_deterministic_for_a_seed(sampler, steps):
    d = DDPM(100, "linear")
    x_star = torch.zeros(1, 6)

    def fn(x_t, t):  # a point mass blurred by a fixed nonlinearity, so the path matters
        return d.output_from_x0(torch.tanh(x_t), x_t, t)

    def draw(seed):
        g = torch.Generator().manual_seed(seed)
        return d.sample(fn, (3, 6), sampler=sampler, steps=steps, generator=g)

    torch.testing.assert_close(draw(7), draw(7), rtol=0, atol=0)
    assert not torch.allclose(draw(7), draw(8))
    assert x_star.shape == (1, 6)


@pytest.mark.parametrize("sampler,steps", SAMPLERS)
def test_negated_noise_mirrors_the_sample_of_an_odd_model(sampler, steps):
    """noise_sign -1 negates every noise draw: for a denoiser odd in x_t the whole chain is odd,
    so the antithetic partner is exactly minus the sample (a nonlinear path, all samplers)."""
    d = DDPM(100, "linear")

    def fn(x_t, t):
        return d.output_from_x0(torch.tanh(2 * x_t), x_t, t)

    def draw(sign):
        g = torch.Generator().manual_seed(7)
        return d.sample(fn, (3, 6), sampler=sampler, steps=steps, generator=g, noise_sign=sign)

    plus = draw(1.0)
    torch.testing.assert_close(draw(-1.0), -plus, rtol=0, atol=1e-6)
    assert plus.abs().max() > 0.1


def test_clip_x0_keeps_samples_in_range():
    d = DDPM(100, "linear")
    x_star = torch.full((1, 5), 6.0)  # outside the allowed range
    for sampler, steps in SAMPLERS:
        g = torch.Generator().manual_seed(0)
        fn = _point_mass_oracle(d, x_star)
        x = d.sample(fn, (2, 5), sampler=sampler, steps=steps, generator=g, clip_x0=(-2.0, 3.0))
        assert x.max().item() <= 3.0 + 1e-3 and x.min().item() >= -2.0 - 1e-3
        torch.testing.assert_close(x, torch.full_like(x, 3.0), rtol=1e-3, atol=1e-3)


def test_unknown_sampler_is_refused():
    with pytest.raises(ValueError):
        DDPM(200, "cosine", "v").sample(lambda x, t: x, (1, 2), sampler="euler")


def test_loss_of_exact_and_zero_predictors():
    d = DDPM(100, "linear", "epsilon")
    x_star = torch.randn(1, 1, 4, 4, 4, generator=torch.Generator().manual_seed(0))
    x0 = x_star.expand(64, 1, 4, 4, 4)
    g = torch.Generator().manual_seed(1)
    assert d.loss(_point_mass_oracle(d, x_star), x0, generator=g).item() < 1e-6
    zero = d.loss(lambda x, t: torch.zeros_like(x), x0, generator=g).item()
    assert zero == pytest.approx(1.0, abs=0.05)  # E[eps^2] = 1
