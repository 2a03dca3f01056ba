"""Our DDIM and DPM-Solver++(2M) against diffusers' schedulers (an independent implementation).

The samplers were diffusers' DDIMScheduler / DPMSolverMultistepScheduler until they moved into
densitydiff.diffusion.solvers (so the base install needs no diffusers); these tests check that
the same noise gives the same samples, on toy networks and on the packaged refine model (its
residual DDPM).
diffusers is installed in every test environment (the `train` extra); only a base install
without it skips the cross-check.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from densitydiff.diffusion import solvers
from densitydiff.diffusion.ddpm import DDPM

diffusers = pytest.importorskip("diffusers")


def diffusers_scheduler(d: DDPM, sampler: str):
    """The diffusers scheduler the package used before: our betas, trailing spacing."""
    common = dict(
        num_train_timesteps=d.timesteps,
        trained_betas=d.betas_np.tolist(),
        prediction_type="epsilon" if d.prediction == "epsilon" else "v_prediction",
        timestep_spacing="trailing",
    )
    if sampler == "ddim":
        return diffusers.DDIMScheduler(clip_sample=False, set_alpha_to_one=True, **common)
    return diffusers.DPMSolverMultistepScheduler(
        algorithm_type="dpmsolver++", solver_order=2, **common
    )


def diffusers_sample(d: DDPM, fn, x: torch.Tensor, sampler: str, steps: int) -> torch.Tensor:
    """The loop of the old DDPM.sample: scheduler.step(model_output, t, sample)."""
    scheduler = diffusers_scheduler(d, sampler)
    scheduler.set_timesteps(steps)
    x = x * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        tb = torch.full((x.shape[0],), int(t), dtype=torch.long)
        x = scheduler.step(fn(x, tb), t, x).prev_sample
    return x


def ours(d: DDPM, fn, x: torch.Tensor, sampler: str, steps: int) -> torch.Tensor:
    def pred(x_t, t):
        out = fn(x_t, t)
        return d.predict_x0(out, x_t, t), d.predict_eps(out, x_t, t)

    solve = solvers.ddim_sample if sampler == "ddim" else solvers.dpmpp_2m_sample
    return solve(pred, x, d.alpha_bar, steps)


@pytest.mark.parametrize("sampler", ["ddim", "dpmsolver++"])
@pytest.mark.parametrize("schedule,prediction", [("linear", "epsilon"), ("cosine", "v")])
@pytest.mark.parametrize("steps", [1, 2, 10, 20])
def test_solvers_match_diffusers_on_a_nonlinear_network(sampler, schedule, prediction, steps):
    d = DDPM(200, schedule, prediction)
    w = torch.randn(8, 8, generator=torch.Generator().manual_seed(3)) / 3

    def fn(x_t, t):  # depends on x and t nonlinearly, so every coefficient matters
        return torch.tanh(x_t @ w) * (1 + t.float().reshape(-1, 1) / 200)

    x = torch.randn(5, 8, generator=torch.Generator().manual_seed(4))
    ref = diffusers_sample(d, fn, x, sampler, steps)
    got = ours(d, fn, x, sampler, steps)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5 * ref.abs().max().item())


def test_trailing_timesteps_match_diffusers():
    for steps in (1, 3, 7, 20, 200):
        sch = diffusers_scheduler(DDPM(200, "cosine", "v"), "dpmsolver++")
        sch.set_timesteps(steps)
        np.testing.assert_array_equal(solvers.trailing_timesteps(200, steps), sch.timesteps)
    with pytest.raises(ValueError):
        solvers.trailing_timesteps(200, 201)


def test_packaged_refine_gives_the_samples_diffusers_gives(one_thread):
    """Same seed, same noise, tiny map: the packaged refine model (predict-and-refine) samples its
    residual with our DDIM and DPM-Solver++ exactly as diffusers' schedulers do."""
    from densitydiff.diffusion.sampling import Sampling
    from densitydiff.sharpen.checkpoint import load_sharpener

    model = load_sharpener("refine").model
    assert model.clip_residual is not None
    inp = torch.randn(1, 1, 16, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        pred = model.predictor(inp)
        fn = model.model_fn(inp, pred)
        x = torch.randn(inp.shape, generator=torch.Generator().manual_seed(1))
        for sampler, steps in ((model.sampling.sampler, model.sampling.steps), ("dpmsolver++", 10)):
            ref = diffusers_sample(model.ddpm, fn, x, sampler, steps)
            got = ours(model.ddpm, fn, x, sampler, steps)
            err = (got - ref).abs().max().item() / ref.abs().max().item()
            assert err < 1e-5, (sampler, err)
            # and through the model's own entry point (the noise drawn from the same seed)
            g = torch.Generator().manual_seed(1)
            y = model.sharpen(inp, generator=g, sampling=Sampling(sampler, steps))
            expected = pred + ref.clamp(*model.clip_residual)
            assert (y - expected).abs().max().item() / expected.abs().max().item() < 1e-5
