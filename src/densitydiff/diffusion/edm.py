"""EDM (Karras et al. 2022, "Elucidating the design space of diffusion-based generative models").

Works on tensors of any shape (B, ...): a per-sample sigma broadcasts over the trailing axes.
A `denoiser` is any callable D(x, sigma) -> x_hat with sigma of shape (B,); samplers count its
calls (the number of function evaluations, NFE). Equation numbers refer to the paper.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

Denoiser = Callable[[Tensor, Tensor], Tensor]

SIGMA_MIN = 0.002
SIGMA_MAX = 80.0
RHO = 7.0
P_MEAN = -1.2
P_STD = 1.2


def _per_sample(sigma: Tensor | float, x: Tensor) -> Tensor:
    """sigma as shape (B, 1, ..., 1) so it broadcasts against x of shape (B, ...)."""
    sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).reshape(-1)
    if sigma.numel() == 1:
        sigma = sigma.expand(x.shape[0])
    return sigma.reshape(-1, *([1] * (x.ndim - 1)))


def preconditioning(sigma: Tensor, sigma_data: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(c_skip, c_out, c_in, c_noise) of Table 1 ("Ours" column), eq. 7."""
    s2 = sigma**2 + sigma_data**2
    c_skip = sigma_data**2 / s2
    c_out = sigma * sigma_data / torch.sqrt(s2)
    c_in = 1.0 / torch.sqrt(s2)
    c_noise = torch.log(sigma) / 4.0
    return c_skip, c_out, c_in, c_noise


def loss_weight(sigma: Tensor, sigma_data: float) -> Tensor:
    """lambda(sigma) = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2 = 1 / c_out^2 (Table 1)."""
    return (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2


class EDMDenoiser(nn.Module):
    """D(x; sigma) = c_skip x + c_out F(c_in x, c_noise) around a network F(x, noise) (eq. 7)."""

    def __init__(self, net: nn.Module, sigma_data: float = 1.0) -> None:
        super().__init__()
        self.net = net
        self.sigma_data = float(sigma_data)

    def forward(self, x: Tensor, sigma: Tensor | float) -> Tensor:
        s = _per_sample(sigma, x)
        c_skip, c_out, c_in, c_noise = preconditioning(s, self.sigma_data)
        return c_skip * x + c_out * self.net(c_in * x, c_noise.reshape(-1))


def sample_sigma(
    n: int, *, p_mean: float = P_MEAN, p_std: float = P_STD, generator=None, device=None
) -> Tensor:
    """Training noise levels: ln(sigma) ~ N(P_mean, P_std^2) (Table 1, "Ours")."""
    return torch.exp(p_mean + p_std * torch.randn(n, generator=generator, device=device))


def edm_loss(
    denoiser: EDMDenoiser,
    x: Tensor,
    *,
    p_mean: float = P_MEAN,
    p_std: float = P_STD,
    generator=None,
) -> Tensor:
    """E_{sigma, n} lambda(sigma) |D(x + n; sigma) - x|^2 (eq. 2 with Table 1's choices).

    Averaged over samples and elements, so its scale does not depend on the dimension.
    """
    sigma = sample_sigma(x.shape[0], p_mean=p_mean, p_std=p_std, generator=generator)
    sigma = sigma.to(device=x.device, dtype=x.dtype)
    n = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    s = _per_sample(sigma, x)
    d = denoiser(x + s * n, sigma)
    weight = _per_sample(loss_weight(sigma, denoiser.sigma_data), x)
    return (weight * (d - x) ** 2).mean()


def score(denoiser: Denoiser, x: Tensor, sigma: Tensor | float) -> Tensor:
    """grad_x log p(x; sigma) = (D(x; sigma) - x) / sigma^2 (eq. 3)."""
    s = _per_sample(sigma, x)
    return (denoiser(x, s.reshape(-1)) - x) / s**2


def karras_sigmas(
    n: int, sigma_min: float = SIGMA_MIN, sigma_max: float = SIGMA_MAX, rho: float = RHO
) -> Tensor:
    """Decreasing noise levels sigma_0 = sigma_max ... sigma_{n-1} = sigma_min, then 0 (eq. 5)."""
    if n < 1:
        raise ValueError(f"need at least one step, got {n}")
    i = torch.arange(n, dtype=torch.float64)
    frac = i / max(n - 1, 1)
    inv = sigma_max ** (1 / rho) + frac * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))
    return torch.cat([inv**rho, torch.zeros(1, dtype=torch.float64)])


class _Counted:
    """Wrap a denoiser and count its calls (NFE)."""

    def __init__(self, denoiser: Denoiser) -> None:
        self.denoiser, self.nfe = denoiser, 0

    def __call__(self, x: Tensor, sigma: Tensor) -> Tensor:
        self.nfe += 1
        return self.denoiser(x, sigma)


@dataclass
class SolveResult:
    """Integrated state `x` and the number of denoiser evaluations `nfe` it took."""

    x: Tensor
    nfe: int


def ode_solve(
    denoiser: Denoiser,
    x: Tensor,
    sigma_start: float,
    sigma_end: float,
    *,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    method: str = "dopri5",
    time: str = "log_sigma",
) -> SolveResult:
    """Integrate the probability-flow ODE from sigma_start to sigma_end (either direction).

    dx = -sigma'(t) sigma(t) grad log p(x; sigma(t)) dt (eq. 1, with s(t) = 1). With
    time="sigma", sigma(t) = t and dx/dt = (x - D(x; t)) / t (eq. 4 of the EDM choice);
    with time="log_sigma", sigma(t) = e^t and dx/dt = x - D(x; e^t), the same trajectories in a
    variable where the right side stays O(1), so the adaptive solver needs fewer steps.
    Uses torchdiffeq's adaptive Runge-Kutta (`method`, e.g. "dopri5") with `rtol`/`atol`.
    """
    from torchdiffeq import odeint

    if sigma_start <= 0 or sigma_end <= 0:
        raise ValueError("the ODE needs sigma > 0 at both ends (use sigma_min, e.g. 0.002)")
    counted = _Counted(denoiser)
    ones = torch.ones(x.shape[0], dtype=x.dtype, device=x.device)

    if time == "log_sigma":

        def f(t: Tensor, y: Tensor) -> Tensor:
            return y - counted(y, torch.exp(t) * ones)

        t = torch.tensor([math.log(sigma_start), math.log(sigma_end)], dtype=x.dtype)
    elif time == "sigma":

        def f(t: Tensor, y: Tensor) -> Tensor:
            return (y - counted(y, t * ones)) / t

        t = torch.tensor([sigma_start, sigma_end], dtype=x.dtype)
    else:
        raise ValueError(f"time must be 'log_sigma' or 'sigma', got {time!r}")
    with torch.no_grad():
        y = odeint(f, x, t.to(x.device), rtol=rtol, atol=atol, method=method)[-1]
    return SolveResult(y, counted.nfe)


def heun_sample(denoiser: Denoiser, x: Tensor, sigmas: Tensor) -> SolveResult:
    """Deterministic 2nd-order Heun sampler (Algorithm 1) from x at sigmas[0] down sigmas.

    Ends with an Euler step when the last sigma is 0 (as the paper does). NFE = 2N - 1.
    """
    counted = _Counted(denoiser)
    ones = torch.ones(x.shape[0], dtype=x.dtype, device=x.device)
    sigmas = sigmas.to(dtype=x.dtype, device=x.device)
    with torch.no_grad():
        for s_cur, s_next in zip(sigmas[:-1], sigmas[1:]):
            d_cur = (x - counted(x, s_cur * ones)) / s_cur  # eq. 4 with sigma(t) = t
            x_next = x + (s_next - s_cur) * d_cur
            if s_next > 0:  # 2nd-order correction (Algorithm 1, lines 9-11)
                d_next = (x_next - counted(x_next, s_next * ones)) / s_next
                x_next = x + (s_next - s_cur) * (0.5 * d_cur + 0.5 * d_next)
            x = x_next
    return SolveResult(x, counted.nfe)


def sde_sample(
    denoiser: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    beta: float | Callable[[Tensor], Tensor] = 1.0,
    generator=None,
) -> SolveResult:
    """Langevin-regularised reverse SDE (eq. 6, "-" branch) by Euler-Maruyama down `sigmas`.

    dx = -sigma' sigma grad log p dt - beta(t) sigma^2 grad log p dt + sqrt(2 beta(t)) sigma dW,
    with sigma(t) = t and dt < 0. beta may be a number or a function of sigma; beta = 0 is
    the probability-flow ODE (Euler steps). The last step (to sigma = 0 if present) is a
    plain denoising x = D(x; sigma).
    """
    counted = _Counted(denoiser)
    ones = torch.ones(x.shape[0], dtype=x.dtype, device=x.device)
    sigmas = sigmas.to(dtype=x.dtype, device=x.device)
    with torch.no_grad():
        for s_cur, s_next in zip(sigmas[:-1], sigmas[1:]):
            d = counted(x, s_cur * ones)
            if s_next == 0:
                x = d
                break
            b = beta(s_cur) if callable(beta) else torch.as_tensor(beta, dtype=x.dtype)
            grad_log_p = (d - x) / s_cur**2  # eq. 3
            dt = s_next - s_cur  # negative: integrating backward in time
            drift = -s_cur * grad_log_p - b * s_cur**2 * grad_log_p  # sigma'(t) = 1
            noise = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
            x = x + drift * dt + torch.sqrt(2 * b * (-dt)) * s_cur * noise
    return SolveResult(x, counted.nfe)


def langevin(
    denoiser: Denoiser,
    x: Tensor,
    sigma: float,
    *,
    n_steps: int = 500,
    step_size: float = 0.1,
    generator=None,
) -> SolveResult:
    """Unadjusted Langevin dynamics at a fixed small sigma with the learned score.

    x_{n+1} = x_n + eps grad log p(x_n; sigma) + sqrt(2 eps) N(0, I), eps = step_size sigma^2
    (the step scales with sigma^2 because the score at noise sigma scales with 1/sigma^2).
    Its stationary law is p(x; sigma), the data blurred by N(0, sigma^2 I).
    """
    counted = _Counted(denoiser)
    eps = step_size * sigma**2
    with torch.no_grad():
        for _ in range(n_steps):
            g = score(counted, x, sigma)
            noise = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
            x = x + eps * g + math.sqrt(2 * eps) * noise
    return SolveResult(x, counted.nfe)
