"""The issue's bars with a small network (the default 16 x 128 one is in bench/prior.py).

A learned prior on a 4-mode mixture in 8-D and on cryoDRGN's zvals_het-8_4k.pkl must be within
2x the two-halves noise floor in MMD and at most 0.1x the N(0, I) prior's MMD; mixture samples
must not fall between the modes.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import TESTDATA

from densitydiff.prior.evaluate import evaluate_prior
from densitydiff.prior.latents import Latents, load_latents
from densitydiff.prior.sample import load_prior, sample_prior
from densitydiff.prior.synthetic import chi_radius, compositional, outside_modes
from densitydiff.prior.train import PriorConfig, train_prior

SMALL = PriorConfig(epochs=60, width=64, depth=4, emb_dim=32, batch_size=500, lr=2e-3, seed=0)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One BLAS thread: on a shared 2-core machine two threads fight and run ~5x slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def train_small(z: np.ndarray, run_dir, epochs: int):
    cfg = PriorConfig(**{**SMALL.__dict__, "epochs": epochs})
    return load_prior(train_prior(Latents(z), run_dir, cfg, progress=False))


def assert_mmd_bars(result: dict) -> None:
    floor, learned, gauss = (result[k]["mmd"] for k in ("floor", "learned", "gaussian"))
    assert learned <= 2 * floor, (floor, learned, gauss)
    assert learned <= 0.1 * gauss, (floor, learned, gauss)


def test_mixture_prior_meets_the_bars(tmp_path):
    mix = compositional(4000, seed=0)
    prior = train_small(mix.z, tmp_path / "run", epochs=60)
    z, _ = sample_prior(prior, 4000, "ode", seed=1)
    radius = chi_radius(8)  # the 8-D ball holding the mass of +-3 sd in 1-D (99.73 %)
    assert outside_modes(mix.z, mix.means, mix.sd, radius) < 0.01  # the data pass, as they should
    frac = outside_modes(z, mix.means, mix.sd, radius)
    print("outside", frac)
    assert frac < 0.02
    assert_mmd_bars(evaluate_prior(prior, mix.z, seed=0))
    gaussian, _ = sample_prior(prior, 4000, "gaussian", seed=1)
    assert outside_modes(gaussian, mix.means, mix.sd, radius) > 0.5  # N(0, I) fills the gaps


def test_cryodrgn_latents_prior_meets_the_bars(tmp_path):
    z = load_latents(TESTDATA / "zvals_het-8_4k.pkl").mu
    prior = train_small(z, tmp_path / "run", epochs=80)
    assert_mmd_bars(evaluate_prior(prior, z, seed=0))
