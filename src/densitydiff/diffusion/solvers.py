"""Few-step deterministic samplers for a discrete DDPM schedule: DDIM and DPM-Solver++(2M).

Written here (a few lines of formula each) so sampling needs only torch; they follow diffusers'
DDIMScheduler (eta = 0, set_alpha_to_one) and DPMSolverMultistepScheduler (dpmsolver++, order 2,
midpoint, final sigma 0) with `timestep_spacing="trailing"`, which the tests check against.
Both work on any tensor and take `pred(x_t, t) -> (x0, eps)`, the model output converted.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

Prediction = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
"""pred(x_t, t) -> (x0, eps) implied by the model at (x_t, t); t is a (B,) long tensor."""


def trailing_timesteps(timesteps: int, steps: int) -> np.ndarray:
    """K timesteps from T-1 down, evenly spaced from the end (Lin et al. 2024, Table 2)."""
    if not 1 <= steps <= timesteps:
        raise ValueError(f"steps must be in 1..{timesteps} (the training timesteps), got {steps}")
    return np.round(np.arange(timesteps, 0, -timesteps / steps)).astype(np.int64) - 1


def _t(x: torch.Tensor, t: int) -> torch.Tensor:
    return torch.full((x.shape[0],), int(t), device=x.device, dtype=torch.long)


def ddim_sample(
    pred: Prediction, x: torch.Tensor, alpha_bar: torch.Tensor, steps: int
) -> torch.Tensor:
    """DDIM with eta = 0 from x ~ N(0, I) at t = T-1 down the trailing timesteps to x0.

    Song et al. 2021 eq. 12 (sigma_t = 0):
    x_prev = sqrt(ab_prev) x0 + sqrt(1 - ab_prev) eps, with ab_prev = 1 after the last step.
    (diffusers steps to t - T // K instead of the next timestep; the same when K divides T.)
    """
    ts = trailing_timesteps(len(alpha_bar), steps)
    ab = alpha_bar.to(dtype=torch.float64).cpu().numpy()
    for i, t in enumerate(ts):
        x0, eps = pred(x, _t(x, t))
        ab_prev = float(ab[ts[i + 1]]) if i + 1 < len(ts) else 1.0
        x = (math.sqrt(ab_prev) * x0 + math.sqrt(1 - ab_prev) * eps).to(x.dtype)
    return x


def dpmpp_2m_sample(
    pred: Prediction, x: torch.Tensor, alpha_bar: torch.Tensor, steps: int
) -> torch.Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2) in data prediction, down to sigma = 0.

    With alpha_t = sqrt(ab_t), sigma_t = sqrt(1 - ab_t), lambda_t = log(alpha_t / sigma_t),
    h_i = lambda_i - lambda_{i-1}, r_i = h_{i-1} / h_i:
    x_i = (sigma_i / sigma_{i-1}) x_{i-1} - alpha_i (e^{-h_i} - 1) D_i, where
    D_i = (1 + 1/(2 r_i)) x0_{i-1} - 1/(2 r_i) x0_{i-2} (eq. 13 at 2nd order);
    the first step is 1st order (D = x0, i.e. DDIM), and the last, to sigma = 0, returns x0.
    """
    ts = trailing_timesteps(len(alpha_bar), steps)
    ab = alpha_bar.to(dtype=torch.float64).cpu().numpy()
    alpha = np.append(np.sqrt(ab[ts]), 1.0)  # then the final sigma = 0: alpha = 1
    sigma = np.append(np.sqrt(1 - ab[ts]), 0.0)
    lam = np.log(alpha[:-1]) - np.log(sigma[:-1])
    x0_prev = None
    for i, t in enumerate(ts):
        x0, _ = pred(x, _t(x, t))
        if i == len(ts) - 1:  # sigma_{i+1} = 0: the 1st-order step lands on x0 exactly
            return x0.to(x.dtype)
        h = lam[i + 1] - lam[i]
        d = x0
        if x0_prev is not None:
            r = (lam[i] - lam[i - 1]) / h
            d = float(1 + 1 / (2 * r)) * x0 - float(1 / (2 * r)) * x0_prev
        x = (float(sigma[i + 1] / sigma[i]) * x - float(alpha[i + 1] * math.expm1(-h)) * d).to(
            x.dtype
        )
        x0_prev = x0
    return x
