"""EDM maths against closed forms: Gaussian data have an exact denoiser, score and ODE flow."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from densitydiff.diffusion import edm
from densitydiff.nn.embeddings import FourierEmbedding, sinusoidal_embedding
from densitydiff.nn.mlp import ResidualMLP

pytestmark = pytest.mark.usefixtures("one_thread")


def gaussian_denoiser(s: float):
    """Optimal D(x; sigma) = s^2 / (s^2 + sigma^2) x for data N(0, s^2 I) (posterior mean)."""

    def d(x, sigma):
        sig = sigma.reshape(-1, *([1] * (x.ndim - 1)))
        return s**2 / (s**2 + sig**2) * x

    return d


def test_preconditioning_gives_unit_variance_targets_and_unit_weight():
    sigma = torch.logspace(-3, 2, 50, dtype=torch.float64)
    sd = 0.5
    c_skip, c_out, c_in, c_noise = edm.preconditioning(sigma, sd)
    # network input c_in (x + n) has unit variance (eq. 8 requirement)
    assert torch.allclose(c_in**2 * (sd**2 + sigma**2), torch.ones_like(sigma))
    # effective target (x - c_skip (x + n)) / c_out has unit variance (eq. 8 / appendix B.6)
    target_var = ((1 - c_skip) ** 2 * sd**2 + c_skip**2 * sigma**2) / c_out**2
    assert torch.allclose(target_var, torch.ones_like(sigma))
    # lambda(sigma) c_out^2 = 1 and c_noise = ln(sigma) / 4
    assert torch.allclose(edm.loss_weight(sigma, sd) * c_out**2, torch.ones_like(sigma))
    assert torch.allclose(c_noise, torch.log(sigma) / 4)


def test_sigma_sampling_is_log_normal():
    g = torch.Generator().manual_seed(0)
    ln = torch.log(edm.sample_sigma(200_000, generator=g)).double()
    assert abs(float(ln.mean()) + 1.2) < 0.01 and abs(float(ln.std()) - 1.2) < 0.01


def test_loss_of_the_optimal_denoiser_matches_quadrature():
    """E lambda |D* - x|^2, D* optimal for N(0, s^2): E lambda(sigma) sigma^2 s^2/(s^2+sigma^2)."""
    s, sd = 2.0, 1.0
    denoiser = edm.EDMDenoiser(torch.nn.Identity(), sigma_data=sd)
    denoiser.forward = gaussian_denoiser(s)  # the exact posterior mean, not a network
    g = torch.Generator().manual_seed(1)
    x = s * torch.randn(400_000, 1, generator=g, dtype=torch.float64)
    loss = float(edm.edm_loss(denoiser, x, generator=g))

    def integrand(u):
        sigma = math.exp(u)
        lam = (sigma**2 + sd**2) / (sigma * sd) ** 2
        return lam * sigma**2 * s**2 / (s**2 + sigma**2) * stats.norm.pdf(u, -1.2, 1.2)

    expected, _ = integrate.quad(integrand, -12, 10)
    assert loss == pytest.approx(expected, rel=0.02)


def test_score_of_gaussian():
    s, sigma = 1.5, 0.7
    x = torch.randn(10, 3, dtype=torch.float64)
    expected = -x / (s**2 + sigma**2)  # grad log N(0, (s^2 + sigma^2) I)
    assert torch.allclose(edm.score(gaussian_denoiser(s), x, sigma), expected)


def test_karras_sigmas_eq5():
    sig = edm.karras_sigmas(18, 0.002, 80.0, 7.0)
    assert len(sig) == 19 and sig[-1] == 0
    assert float(sig[0]) == pytest.approx(80.0) and float(sig[-2]) == pytest.approx(0.002)
    i = 5
    expected = (80 ** (1 / 7) + i / 17 * (0.002 ** (1 / 7) - 80 ** (1 / 7))) ** 7
    assert float(sig[i]) == pytest.approx(expected)
    assert (sig[:-1].diff() < 0).all()


@pytest.mark.parametrize("time", ["log_sigma", "sigma"])
def test_ode_flow_of_gaussian_matches_closed_form(time):
    """For N(0, s^2) data the flow is x(sigma) = x(sigma0) sqrt((s^2+sigma^2)/(s^2+sigma0^2))."""
    s = 0.8
    x0 = torch.randn(64, 3, dtype=torch.float64) * math.sqrt(s**2 + 80.0**2)
    res = edm.ode_solve(gaussian_denoiser(s), x0, 80.0, 0.002, rtol=1e-8, atol=1e-8, time=time)
    expected = x0 * math.sqrt((s**2 + 0.002**2) / (s**2 + 80.0**2))
    assert torch.allclose(res.x, expected, rtol=1e-5, atol=1e-7)
    assert res.nfe > 6
    back = edm.ode_solve(gaussian_denoiser(s), res.x, 0.002, 80.0, rtol=1e-8, atol=1e-8, time=time)
    assert float((back.x - x0).norm() / x0.norm()) < 1e-5


def test_heun_and_sde_sample_the_data_law():
    s, n = 0.5, 40_000
    g = torch.Generator().manual_seed(2)
    x = torch.randn(n, 1, generator=g, dtype=torch.float64) * 80.0
    sigmas = edm.karras_sigmas(32)
    heun = edm.heun_sample(gaussian_denoiser(s), x, sigmas)
    assert heun.nfe == 2 * 32 - 1
    assert float(heun.x.std()) == pytest.approx(s, rel=0.02)
    sde = edm.sde_sample(gaussian_denoiser(s), x, edm.karras_sigmas(200), beta=1.0, generator=g)
    assert float(sde.x.std()) == pytest.approx(s, rel=0.03)
    assert abs(float(sde.x.mean())) < 0.02
    # beta = 0 is the ODE (Euler steps): deterministic and close to the exact flow
    ode = edm.sde_sample(gaussian_denoiser(s), x[:100], edm.karras_sigmas(400), beta=0.0)
    expected = x[:100] * math.sqrt((s**2 + 0.002**2) / (s**2 + 80.0**2))
    assert torch.allclose(ode.x, expected, rtol=0.02, atol=1e-4)


def test_langevin_stationary_law_is_the_blurred_data():
    s, sigma = 1.0, 0.5
    g = torch.Generator().manual_seed(3)
    x = torch.zeros(20_000, 1, dtype=torch.float64)
    res = edm.langevin(gaussian_denoiser(s), x, sigma, n_steps=400, step_size=0.1, generator=g)
    # stationary N(0, s^2 + sigma^2), up to the O(eps) bias of the unadjusted chain
    assert float(res.x.std()) == pytest.approx(math.sqrt(s**2 + sigma**2), rel=0.03)
    assert res.nfe == 400


def test_sinusoidal_embedding_values():
    t = torch.tensor([0.0, 1.0, 2.5])
    e = sinusoidal_embedding(t, 8)
    k = np.arange(4)
    freqs = np.exp(-np.log(10000.0) * k / 4)
    expected = np.concatenate([np.sin(2.5 * freqs), np.cos(2.5 * freqs)])
    assert e.shape == (3, 8)
    assert np.allclose(e[2].numpy(), expected, atol=1e-6)
    assert np.allclose(e[0].numpy(), [0, 0, 0, 0, 1, 1, 1, 1])
    assert sinusoidal_embedding(t, 7).shape == (3, 7)
    f = FourierEmbedding(16)(t)
    assert f.shape == (3, 16) and torch.allclose(f[:, :8] ** 2 + f[:, 8:] ** 2, torch.ones(3, 8))


def test_untrained_mlp_denoiser_is_c_skip_x():
    """Zero-initialised output: D(x; sigma) = c_skip x, the right limit for sigma -> 0 and inf."""
    net = ResidualMLP(5, width=32, depth=3)
    d = edm.EDMDenoiser(net, sigma_data=1.0)
    x = torch.randn(7, 5)
    sigma = torch.full((7,), 0.3)
    assert torch.allclose(d(x, sigma), x / (1 + 0.3**2))
    loss = edm.edm_loss(d, x)
    loss.backward()
    assert net.output.weight.grad is not None and net.output.weight.grad.abs().sum() > 0
