"""Discrete-time DDPM on any tensor: noise schedules, q_sample, epsilon/v targets, samplers.

Ho et al. 2020 (DDPM), Nichol & Dhariwal 2021 (cosine schedule), Salimans & Ho 2022
(v-prediction), Saharia et al. 2022 (SR3: the condition enters the network, not the process).
Samplers: ancestral DDPM with all T steps (Ho et al. Alg. 2), and DDIM (Song et al. 2021) and
DPM-Solver++(2M) (Lu et al. 2022) with K steps (densitydiff.diffusion.solvers, torch only; the
tests check them against diffusers' schedulers built from our betas).

Everything works in the normalised (z-scored) space; callers map samples back. Because z-scored
density is not bounded, a sampler may drift outside the range the data ever takes.
`clip_x0=(lo, hi)` clamps every x0 prediction to [lo, hi] and re-expresses the model output
consistently with the clamped x0, which works the same for all three samplers; choose the
bounds from the training targets (e.g. their min/max with a margin). Off by default. The
sampler names live in densitydiff.diffusion.sampling.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from densitydiff.diffusion import solvers
from densitydiff.diffusion.sampling import SAMPLERS

ModelFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""model_fn(x_t, t) -> prediction (epsilon or v); t is a (B,) long tensor of timesteps."""

def make_betas(timesteps: int, schedule: str = "linear") -> np.ndarray:
    """Betas (float64, length T) of the linear or cosine schedule."""
    if timesteps < 1:
        raise ValueError(f"timesteps must be >= 1, got {timesteps}")
    if schedule == "linear":
        # Ho et al. 2020 sec. 4: 1e-4 .. 0.02 for T=1000; rescaled by 1000/T so alpha_bar_T is
        # ~0 for any T (Nichol & Dhariwal 2021 sec. 3.2 / their code).
        scale = 1000.0 / timesteps
        return np.linspace(scale * 1e-4, min(scale * 0.02, 0.999), timesteps, dtype=np.float64)
    if schedule == "cosine":
        # Nichol & Dhariwal 2021 eq. 17: alpha_bar(t) = f(t)/f(0),
        # f(t) = cos^2((t/T + s)/(1+s) pi/2)
        s = 0.008
        steps = np.arange(timesteps + 1, dtype=np.float64) / timesteps
        f = np.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
        alpha_bar = f / f[0]
        return np.clip(1 - alpha_bar[1:] / alpha_bar[:-1], 0.0, 0.999)  # their beta clip at 0.999
    raise ValueError(f"unknown schedule {schedule!r}: use 'linear' or 'cosine'")


def _gather(values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """values[t] broadcast to the shape of `like` (B, 1, 1, ...)."""
    out = values.to(like.device)[t.to(like.device).long()]
    return out.reshape(-1, *([1] * (like.ndim - 1))).to(like.dtype)


class DDPM:
    """A discrete noise schedule with its forward process, training target and samplers."""

    def __init__(
        self, timesteps: int = 1000, schedule: str = "linear", prediction: str = "epsilon"
    ):
        if prediction not in ("epsilon", "v"):
            raise ValueError(f"unknown prediction {prediction!r}: use 'epsilon' or 'v'")
        self.timesteps = int(timesteps)
        self.schedule = schedule
        self.prediction = prediction
        self.betas_np = make_betas(self.timesteps, schedule)
        self.betas = torch.tensor(self.betas_np, dtype=torch.float32)
        alpha_bar = np.cumprod(1.0 - self.betas_np)  # Ho et al. eq. 4: alpha_bar_t = prod alpha_s
        self.alpha_bar = torch.tensor(alpha_bar, dtype=torch.float32)
        self.sqrt_alpha_bar = torch.tensor(np.sqrt(alpha_bar), dtype=torch.float32)
        self.sqrt_one_minus_alpha_bar = torch.tensor(np.sqrt(1 - alpha_bar), dtype=torch.float32)

    # ---- forward process and targets -------------------------------------------------------
    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps (Ho et al. eq. 4)."""
        return (
            _gather(self.sqrt_alpha_bar, t, x0) * x0
            + _gather(self.sqrt_one_minus_alpha_bar, t, x0) * noise
        )

    def target(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Network target: eps, or v = sqrt(ab) eps - sqrt(1-ab) x0 (Salimans & Ho 2022 eq. 9)."""
        if self.prediction == "epsilon":
            return noise
        return (
            _gather(self.sqrt_alpha_bar, t, x0) * noise
            - _gather(self.sqrt_one_minus_alpha_bar, t, x0) * x0
        )

    def predict_x0(self, output: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x0 implied by a model output at (x_t, t)."""
        a = _gather(self.sqrt_alpha_bar, t, x_t)
        s = _gather(self.sqrt_one_minus_alpha_bar, t, x_t)
        if self.prediction == "epsilon":
            return (x_t - s * output) / a  # inverse of eq. 4
        return a * x_t - s * output  # Salimans & Ho 2022 sec. 4

    def predict_eps(self, output: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """eps implied by a model output at (x_t, t): itself, or sqrt(ab) v + sqrt(1 - ab) x_t."""
        if self.prediction == "epsilon":
            return output
        a = _gather(self.sqrt_alpha_bar, t, x_t)
        s = _gather(self.sqrt_one_minus_alpha_bar, t, x_t)
        return a * output + s * x_t  # Salimans & Ho 2022 eq. 9 with x_t = a x0 + s eps

    def output_from_x0(self, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The model output (eps or v) consistent with a given x0 at (x_t, t)."""
        a = _gather(self.sqrt_alpha_bar, t, x_t)
        s = _gather(self.sqrt_one_minus_alpha_bar, t, x_t)
        eps = (x_t - a * x0) / s
        return eps if self.prediction == "epsilon" else a * eps - s * x0

    def sample_t(self, batch: int, device=None, generator: torch.Generator | None = None):
        """Uniform timesteps in [0, T)."""
        return torch.randint(0, self.timesteps, (batch,), device=device, generator=generator)

    def loss(
        self,
        model_fn: ModelFn,
        x0: torch.Tensor,
        t: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Simple loss ||f(y_t, t) - target||^2 averaged over elements (Ho et al. eq. 14)."""
        t = self.sample_t(x0.shape[0], x0.device, generator) if t is None else t
        if noise is None:
            noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        x_t = self.q_sample(x0, t, noise)
        return torch.mean((model_fn(x_t, t).float() - self.target(x0, noise, t).float()) ** 2)

    # ---- sampling ----------------------------------------------------------------------------
    def _clipped(self, model_fn: ModelFn, clip_x0: tuple[float, float] | None) -> ModelFn:
        if clip_x0 is None:
            return model_fn
        lo, hi = float(clip_x0[0]), float(clip_x0[1])

        def fn(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            out = model_fn(x_t, t)
            x0 = self.predict_x0(out, x_t, t).clamp(lo, hi)
            return self.output_from_x0(x0, x_t, t)

        return fn

    @torch.no_grad()
    def sample(
        self,
        model_fn: ModelFn,
        shape: tuple[int, ...],
        *,
        sampler: str = "dpmsolver++",
        steps: int | None = None,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        clip_x0: tuple[float, float] | None = None,
        noise_sign: float = 1.0,
    ) -> torch.Tensor:
        """Draw samples of `shape` from pure noise; deterministic for a seeded generator.

        sampler: "ddpm" (ancestral, all T steps; `steps` ignored), "ddim" (eta=0) or
        "dpmsolver++" (2nd-order multistep) with `steps` steps (default 20). `noise_sign` -1
        negates every noise draw (the antithetic partner of the same generator's +1 sample).
        """
        device = torch.device(device) if device is not None else torch.device("cpu")
        fn = self._clipped(model_fn, clip_x0)
        x = noise_sign * torch.randn(shape, generator=generator, device=device)
        if sampler == "ddpm":
            return self._ancestral(fn, x, generator, noise_sign)
        if sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {sampler!r}: use one of {SAMPLERS}")

        def pred(x_t: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            out = fn(x_t, t)
            return self.predict_x0(out, x_t, t), self.predict_eps(out, x_t, t)

        solve = solvers.ddim_sample if sampler == "ddim" else solvers.dpmpp_2m_sample
        return solve(pred, x, self.alpha_bar, int(steps or 20))

    def _ancestral(self, fn: ModelFn, x: torch.Tensor, generator, noise_sign: float = 1.0
                   ) -> torch.Tensor:  # fmt: skip
        """Ho et al. 2020 Alg. 2 with the posterior variance beta_tilde (eq. 7)."""
        betas = self.betas.to(x.device)
        alpha_bar = self.alpha_bar.to(x.device)
        for i in reversed(range(self.timesteps)):
            t = torch.full((x.shape[0],), i, device=x.device, dtype=torch.long)
            x0 = self.predict_x0(fn(x, t), x, t)
            ab = alpha_bar[i]
            ab_prev = alpha_bar[i - 1] if i > 0 else torch.ones((), device=x.device)
            beta = betas[i]
            # Posterior mean of q(x_{t-1} | x_t, x0), Ho et al. eq. 7
            mean = (ab_prev.sqrt() * beta / (1 - ab)) * x0 + (
                (1 - beta).sqrt() * (1 - ab_prev) / (1 - ab)
            ) * x
            if i > 0:
                var = beta * (1 - ab_prev) / (1 - ab)
                noise = noise_sign * torch.randn(x.shape, generator=generator, device=x.device)
                x = mean + var.sqrt() * noise
            else:
                x = mean
        return x
