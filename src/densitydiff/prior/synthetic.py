"""Synthetic latent sets shaped like cryo-EM heterogeneity: a ring, a curve, a mixture of states.

Each lives in a random orthonormal frame of R^dim so no axis is special, with isotropic noise,
like the aggregate posterior of a VAE trained on a 1-D continuous motion ("circular1d",
"linear1d") or on discrete states ("compositional").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _frame(rng: np.random.Generator, dim: int, k: int) -> np.ndarray:
    """k orthonormal directions in R^dim (rows), uniformly random."""
    if k > dim:
        raise ValueError(f"need dim >= {k}, got {dim}")
    q, r = np.linalg.qr(rng.standard_normal((dim, k)))
    return (q * np.sign(np.diag(r))).T


def circular(n: int, dim: int = 8, radius: float = 2.0, noise: float = 0.1, seed: int = 0):
    """A ring of `radius` in a random plane of R^dim plus N(0, noise^2 I)."""
    rng = np.random.default_rng(seed)
    theta = rng.uniform(0, 2 * np.pi, n)
    plane = np.stack([np.cos(theta), np.sin(theta)], axis=1) * radius
    z = plane @ _frame(rng, dim, 2) + noise * rng.standard_normal((n, dim))
    return z.astype(np.float32)


def linear(n: int, dim: int = 8, length: float = 4.0, noise: float = 0.1, seed: int = 0):
    """A smooth open curve t -> (t, sin(pi t), cos(pi t)/2) scaled to `length`, plus noise."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(-1, 1, n)
    curve = np.stack([t, 0.5 * np.sin(np.pi * t), 0.25 * np.cos(np.pi * t)], axis=1)
    z = curve * (length / 2) @ _frame(rng, dim, 3) + noise * rng.standard_normal((n, dim))
    return z.astype(np.float32)


@dataclass
class Mixture:
    """Samples `z` of an isotropic Gaussian mixture with `means` (K, D), common `sd`, `labels`."""

    z: np.ndarray
    means: np.ndarray
    sd: float
    labels: np.ndarray


def compositional(
    n: int, dim: int = 8, k: int = 4, separation: float = 6.0, sd: float = 0.3, seed: int = 0
) -> Mixture:
    """Equal mixture of k Gaussians N(mu_j, sd^2 I), means +-separation/2 along random axes.

    With the defaults neighbouring modes are 14 sd apart (7 sd from mode to midpoint).
    """
    rng = np.random.default_rng(seed)
    axes = _frame(rng, dim, (k + 1) // 2)
    means = np.concatenate([axes, -axes])[:k] * separation / 2
    labels = rng.integers(0, k, n)
    z = means[labels] + sd * rng.standard_normal((n, dim))
    return Mixture(z.astype(np.float32), means.astype(np.float32), float(sd), labels)


def outside_modes(z: np.ndarray, means: np.ndarray, sd: float, radius: float) -> float:
    """Fraction of rows of z farther than `radius` standard deviations from every mean."""
    d = np.linalg.norm(z[:, None, :] - means[None, :, :], axis=-1) / sd
    return float((d.min(axis=1) > radius).mean())


def chi_radius(dim: int, one_d_sigmas: float = 3.0) -> float:
    """Radius (in sd) holding the same mass of N(0, I_dim) as +-`one_d_sigmas` does in 1-D.

    For 3 sd that mass is 99.73 %; in 8-D the radius is ~4.9 sd (a literal 3-sd ball in 8-D
    holds only ~58 % of a Gaussian, so the literal reading would flag the data themselves).
    """
    from scipy import special, stats

    mass = special.erf(one_d_sigmas / np.sqrt(2))
    return float(np.sqrt(stats.chi2.ppf(mass, dim)))


GENERATORS = {"circular": circular, "linear": linear}
