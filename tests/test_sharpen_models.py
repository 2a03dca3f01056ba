"""The three sharpening models overfit one pair; the DDPM's DPM-Solver++ samples beat the input.

Pairs are Gaussian blobs low-passed at 2 Å (target) and 4 Å (input) with numpy FFTs, and the
FSC-AUC is computed in tests/sharpen_pairs.py, independently of the package.
"""

from __future__ import annotations

import pytest
import torch
from sharpen_pairs import fsc_auc, make_pair

from densitydiff.diffusion.sampling import Sampling
from densitydiff.sharpen.config import load_config
from densitydiff.sharpen.models import build_model

pytestmark = pytest.mark.usefixtures("one_thread")


def _batch(pair: dict, copies: int = 1) -> dict:
    out = {}
    for key, value in pair.items():
        v = value[None] if torch.is_tensor(value) else torch.tensor([value])
        out[key] = v.expand(copies, *v.shape[1:])
    return out


def _fixed_loss(model, batch: dict) -> float:
    """Loss on the pair with fixed noise (DDPM: 16 timesteps spread over [0, T))."""
    with torch.no_grad():
        if not hasattr(model, "ddpm"):
            return model.loss(batch, torch.Generator().manual_seed(5))[0].item()
        b = {k: v[:1].expand(16, *v.shape[1:]) for k, v in batch.items()}
        t = torch.linspace(0, model.ddpm.timesteps - 1, 16).long()
        noise = torch.randn(b["target"].shape, generator=torch.Generator().manual_seed(3))
        fn = model.model_fn(b["input"], b["input_resolution"], b["target_resolution"])
        return model.ddpm.loss(fn, b["target"], t, noise).item()


def _overfit(kind: str, steps: int, copies: int = 1, seed: int = 0, **over):
    """Train a tiny model on one pair (Adam, one-cycle LR): (model, batch, loss before, after)."""
    config = load_config("tiny", {"model": kind, **over})
    torch.manual_seed(seed)
    model = build_model(config)
    batch = _batch(make_pair(16, 0), copies)
    before = _fixed_loss(model, batch)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=5e-3, total_steps=steps, pct_start=0.1)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        loss, _ = model.loss(batch, g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return model, batch, before, _fixed_loss(model, batch)


@pytest.mark.parametrize("kind,steps", [("unet", 60), ("vae", 80)])
def test_baselines_overfit_one_pair(kind, steps):
    model, batch, before, after = _overfit(kind, steps)
    assert after < before / 10, (before, after)
    out = model.sharpen(
        batch["input"],
        batch["input_resolution"],
        batch["target_resolution"],
        generator=torch.Generator().manual_seed(0),
    )
    target, inp = batch["target"][0, 0].numpy(), batch["input"][0, 0].numpy()
    assert fsc_auc(out[0, 0].numpy(), target) > fsc_auc(inp, target) + 0.2


@pytest.fixture(scope="module")
def ddpm():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _overfit("ddpm", 200, copies=4, diffusion={"prediction": "v"})
    finally:
        torch.set_num_threads(old)


def test_ddpm_overfits_one_pair(ddpm):
    _, _, before, after = ddpm
    assert after < before / 10, (before, after)


def test_ddpm_dpmsolver_sample_reproduces_the_pair(ddpm):
    model, batch, _, _ = ddpm
    b = {k: v[:1] for k, v in batch.items()}
    args = (b["input"], b["input_resolution"], b["target_resolution"])
    dpm = Sampling("dpmsolver++", model.sampling.steps)
    sample = model.sharpen(*args, generator=torch.Generator().manual_seed(0), sampling=dpm)
    target, inp = b["target"][0, 0].numpy(), b["input"][0, 0].numpy()
    auc_input, auc_sample = fsc_auc(inp, target), fsc_auc(sample[0, 0].numpy(), target)
    assert auc_sample > auc_input + 0.2, (auc_input, auc_sample)
    # same seed, same sample; another seed, another sample
    again = model.sharpen(*args, generator=torch.Generator().manual_seed(0), sampling=dpm)
    torch.testing.assert_close(sample, again, rtol=0, atol=0)
    other = model.sharpen(*args, generator=torch.Generator().manual_seed(1), sampling=dpm)
    assert not torch.allclose(sample, other)


def test_same_seed_same_training():
    runs = [_overfit("vae", 3, seed=4)[0] for _ in range(2)]
    other = _overfit("vae", 3, seed=5)[0]
    for (name, a), b in zip(runs[0].state_dict().items(), runs[1].state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    assert any(not torch.equal(a, c) for a, c in zip(runs[0].parameters(), other.parameters()))


def test_vae_draws_several_plausible_outputs():
    config = load_config("tiny", {"model": "vae"})
    torch.manual_seed(0)
    model = build_model(config)
    for p in model.parameters():  # random weights so z reaches the output
        torch.nn.init.normal_(p, std=0.1)
    batch = _batch(make_pair(16, 0))
    draws = [
        model.sharpen(batch["input"], 4.0, 2.0, generator=torch.Generator().manual_seed(s))
        for s in (0, 1)
    ]
    assert draws[0].shape == batch["input"].shape
    assert not torch.allclose(draws[0], draws[1])


def test_residual_ddpm_diffuses_target_minus_input_and_adds_the_input_back(monkeypatch):
    import torch

    from densitydiff.sharpen.config import load_config
    from densitydiff.sharpen.models import build_model

    model = build_model(load_config("tiny", {"model": "ddpm", "diffusion": {"residual": True}}))
    inp, target = torch.randn(1, 1, 8, 8, 8), torch.randn(1, 1, 8, 8, 8)
    seen = {}

    def loss(fn, y0, generator=None):
        seen["y0"] = y0
        return y0.sum()

    monkeypatch.setattr(model.ddpm, "loss", loss)
    monkeypatch.setattr(model.ddpm, "sample", lambda fn, shape, **kw: torch.full(shape, 0.5))
    model.loss({"input": inp, "target": target})
    assert torch.equal(seen["y0"], target - inp)
    assert torch.allclose(model.sharpen(inp), inp + 0.5)
