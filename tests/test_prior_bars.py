"""The issue's bars on a 4-mode mixture in 8-D with a small network (4 x 128, 800 steps).

MMD of the learned prior to the data: within 2x the two-halves noise floor and at most 0.1x
the N(0, I) prior's. Between-mode samples: this small model is held to < 5 %; the issue's < 2 %
bar is measured with the default 16 x 128 network by bench/prior.py (docs/benchmarks.md), as are
the ring, the curve and cryoDRGN's zvals_het-8_4k.pkl.
"""

from __future__ import annotations

import pytest

from densitydiff.prior.checkpoint import load_prior
from densitydiff.prior.config import PriorConfig
from densitydiff.prior.evaluate import evaluate_prior
from densitydiff.prior.latents import Latents
from densitydiff.prior.sample import sample_prior
from densitydiff.prior.synthetic import chi_radius, compositional, outside_modes
from densitydiff.prior.train import train_prior

pytestmark = pytest.mark.usefixtures("one_thread")


def test_mixture_prior_meets_the_bars(tmp_path):
    mix = compositional(4000, seed=0)
    cfg = PriorConfig(epochs=100, width=128, depth=4, emb_dim=32, batch_size=500, lr=2e-3)
    prior = load_prior(train_prior(Latents(mix.z), tmp_path / "run", cfg, progress=False))

    result = evaluate_prior(prior, mix.z, seed=0)
    floor, learned, gauss = (result[k]["mmd"] for k in ("floor", "learned", "gaussian"))
    assert learned <= 2 * floor, (floor, learned, gauss)
    assert learned <= 0.1 * gauss, (floor, learned, gauss)

    radius = chi_radius(8)  # the 8-D ball holding the mass of +-3 sd in 1-D (99.73 %), 4.86 sd
    z, _ = sample_prior(prior, 4000, "ode", seed=1)
    gaussian, _ = sample_prior(prior, 4000, "gaussian", seed=1)
    assert outside_modes(mix.z, mix.means, mix.sd, radius) < 0.01  # the data themselves
    assert outside_modes(z, mix.means, mix.sd, radius) < 0.05
    assert outside_modes(gaussian, mix.means, mix.sd, radius) > 0.9  # N(0, I) fills the gaps
