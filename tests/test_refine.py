"""The predict-and-refine model (`model: refine`): a frozen predictor stays the regression model
it started from, one draw is prediction + sampled residual, the sample mean sits on the
prediction, residuals stay in their clip range, resume equals an uninterrupted run, and
train -> export -> sharpen works from the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import yaml
from sharpen_pairs import PairDataset, make_pair
from tiny_models import export_tiny

from densitydiff.errors import InputError
from densitydiff.formats.maps import read_map, write_map
from densitydiff.maps import DensityMap
from densitydiff.sharpen.checkpoint import load_predictor, load_sharpener
from densitydiff.sharpen.config import dump_config, load_config
from densitydiff.sharpen.models import RefineSharpener
from densitydiff.sharpen.train import train_sharpen

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "src" / "densitydiff" / "examples"
# the tiny preset's U-Net, as export_tiny("unet") builds it
TINY_NET = {"widths": [8, 16], "head_channels": 8, "emb_dim": 32, "norm": "group"}

pytestmark = pytest.mark.usefixtures("one_thread")


def _config(steps: int = 4, predictor: str | None = None, **refine):
    return load_config(
        "tiny",
        {
            "model": "refine",
            "refine": {"predictor_net": TINY_NET, "predictor": predictor, **refine},
            "trainer": {
                "max_steps": steps,
                "batch_size": 1,
                "val_every_n_steps": 2,
                "monitor_every_n_steps": 0,
                "log_every_n_steps": 1,
            },
        },
    )


def _offset_model(**refine) -> RefineSharpener:
    """A tiny refine model whose predictor is analytic: out_conv 0, bias 1, so pred = input + 1."""
    torch.manual_seed(0)
    model = RefineSharpener(_config(**refine)).eval()
    out_conv = model.predictor.net.out_conv
    torch.nn.init.zeros_(out_conv.weight)
    torch.nn.init.constant_(out_conv.bias, 1.0)
    return model


def _batch(n: int = 1):
    pair = make_pair(16, 3)
    inp = pair["input"][None].repeat(n, 1, 1, 1, 1)
    return inp, torch.full((n,), 4.0), torch.full((n,), 2.0)


class _Watch(L.Callback):
    """What a frozen predictor looks like during training: its mode and its gradients."""

    def __init__(self):
        self.modes, self.grads = set(), set()

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.modes.add((module.model.training, module.model.predictor.training))

    def on_before_optimizer_step(self, trainer, module, optimizer):
        self.grads.add(any(p.grad is not None for p in module.model.predictor.parameters()))
        self.net_grads = all(p.grad is not None for p in module.model.net.parameters())


def test_frozen_predictor_is_untouched_and_resume_equals_one_run(tmp_path):
    unet = export_tiny("unet", tmp_path)
    reference = load_sharpener(unet).model.state_dict()
    data, val = PairDataset([make_pair(16, 0)]), PairDataset([make_pair(16, 1)])
    watch = _Watch()
    a = train_sharpen(_config(4, str(unet)), tmp_path / "a", dataset=data, val_dataset=val,
                      callbacks=[watch])  # fmt: skip
    c = train_sharpen(_config(2, str(unet)), tmp_path / "c", dataset=data, val_dataset=val)
    two = torch.load(c["last"], weights_only=True)["state_dict"]
    recorded = yaml.safe_load((tmp_path / "c" / "run.yaml").read_text())["predictor"]
    moved = unet.rename(tmp_path / "gone.pt")  # a resume must not read the predictor again
    c = train_sharpen(
        _config(4, str(unet)), tmp_path / "c", dataset=data, val_dataset=val, resume=True
    )
    assert a["global_step"] == c["global_step"] == 4

    # (a) frozen: in eval mode while the residual net trains, no gradient, not optimised
    assert watch.modes == {(True, False)} and watch.grads == {False} and watch.net_grads
    ckpt = torch.load(a["last"], weights_only=True)
    sd = ckpt["state_dict"]
    for key, value in reference.items():  # bit-identical to the model it was started from
        assert torch.equal(sd[f"model.predictor.{key}"], value), key
        assert torch.equal(sd[f"ema.module.predictor.{key}"], value), key
    n_net = sum(1 for _ in RefineSharpener(_config()).net.parameters())
    assert len(ckpt["optimizer_states"][0]["param_groups"][0]["params"]) == n_net
    nets = [k for k in sd if k.startswith("model.net.")]  # the residual network did train
    assert any(not torch.equal(sd[k], two[k]) for k in nets)

    # (g) 2 + 2 resumed steps give the weights of 4 straight steps, EMA included
    sc = torch.load(c["last"], weights_only=True)["state_dict"]
    assert sd.keys() == sc.keys()
    for key in sd:
        torch.testing.assert_close(sd[key], sc[key], rtol=1e-6, atol=1e-7, msg=key)
    record = yaml.safe_load((tmp_path / "c" / "run.yaml").read_text())
    assert record["resume"] is True and record["predictor"] == recorded
    assert recorded["source"] == str(unet) and len(recorded["sha256"]) == 64
    assert recorded["sha256"] == _sha256(moved)


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_unfrozen_predictor_learns_by_regression_only():
    """Not frozen: loss = regression + diffusion, and the predictor's gradient is the
    regression loss's alone (the prediction is detached as the DDPM's condition)."""
    torch.manual_seed(0)
    model = RefineSharpener(_config(freeze_predictor=False)).train()
    pair = make_pair(16, 0)
    batch = {"input": pair["input"][None], "target": pair["target"][None],
             "input_resolution": torch.tensor([4.0]),
             "target_resolution": torch.tensor([2.0])}  # fmt: skip
    loss, extras = model.loss(batch, torch.Generator().manual_seed(1))
    torch.testing.assert_close(loss, extras["regression"] + extras["diffusion"])
    loss.backward()
    total = [p.grad.clone() for p in model.predictor.parameters()]
    model.zero_grad()
    pred = model.predictor(batch["input"], batch["input_resolution"], batch["target_resolution"])
    model.predictor.regression_loss(pred, batch["target"]).backward()
    for g, p in zip(total, model.predictor.parameters(), strict=True):
        torch.testing.assert_close(g, p.grad, rtol=1e-5, atol=1e-8)
    assert model.predictor.training  # not frozen: it trains


def test_one_draw_is_prediction_plus_the_sampled_residual():
    model = _offset_model(clip_residual=[-0.5, 0.5])
    inp, r_in, r_out = _batch(2)
    draw = model.sharpen(inp, r_in, r_out, generator=torch.Generator().manual_seed(5))

    def fn(y_t, t):  # the residual network on [y_t, input, prediction], built here
        return model.net(torch.cat([y_t, inp, inp + 1.0], dim=1), t, r_in, r_out)

    s = model.sampling
    g = torch.Generator().manual_seed(5)
    residual = model.ddpm.sample(fn, tuple(inp.shape), sampler=s.sampler, steps=s.steps,
                                 generator=g, clip_x0=s.clip_x0)  # fmt: skip
    torch.testing.assert_close(draw, inp + 1.0 + residual.clamp(-0.5, 0.5), rtol=0, atol=1e-5)
    assert not torch.allclose(draw[0], draw[1])  # two draws, two samples


def test_draws_share_one_prediction_and_equal_separate_draws():
    """sharpen_draws runs the predictor once for S draws; draw s equals sharpen with seed s."""
    model = _offset_model(clip_residual=[-0.5, 0.5])
    inp, r_in, r_out = _batch(2)
    calls = []
    model.predictor.register_forward_hook(lambda *a: calls.append(1))
    gens = [torch.Generator().manual_seed(s) for s in (3, 4, 5)]
    draws = model.sharpen_draws(inp, r_in, r_out, generators=gens)
    assert len(calls) == 1 and draws.shape == (3, *inp.shape)
    for s, d in zip((3, 4, 5), draws):
        one = model.sharpen(inp, r_in, r_out, generator=torch.Generator().manual_seed(s))
        torch.testing.assert_close(d, one, rtol=0, atol=0)
    assert len(calls) == 4  # 1 shared + 3 separate
    assert not torch.allclose(draws[0], draws[1])


class _GaussianResidual(torch.nn.Module):
    """The exact denoiser of a residual ~ N(0, sigma^2) per voxel: E[y0 | y_t] =
    sqrt(ab) sigma^2 / (ab sigma^2 + 1 - ab) y_t, as the DDPM's eps or v."""

    def __init__(self, ddpm, sigma: float):
        super().__init__()
        self.ddpm, self.sigma = ddpm, sigma

    def forward(self, x, t, *resolutions):
        y_t = x[:, :1]
        ab = self.ddpm.alpha_bar[t].reshape(-1, 1, 1, 1, 1)
        x0 = ab.sqrt() * self.sigma**2 / (ab * self.sigma**2 + 1 - ab) * y_t
        return self.ddpm.output_from_x0(x0, y_t, t)


@pytest.mark.parametrize("prediction", ["epsilon", "v"])
def test_sample_mean_is_the_prediction_for_a_mean_zero_residual(prediction):
    sigma, n = 0.5, 16
    model = _offset_model()
    model.ddpm.prediction = prediction
    model.net = _GaussianResidual(model.ddpm, sigma)
    inp, r_in, r_out = _batch(n)
    from densitydiff.diffusion.sampling import Sampling

    draws = model.sharpen(inp, r_in, r_out, generator=torch.Generator().manual_seed(0),
                          sampling=Sampling("ddpm", 1, None))  # fmt: skip
    residual = (draws - (inp + 1.0)).numpy()  # the prediction is input + 1, analytically
    mean = residual.mean(axis=0)  # per voxel over n draws: N(0, sigma^2 / n)
    assert np.abs(mean).max() < 5 * sigma / np.sqrt(n)
    assert abs(residual.mean()) < 4 * sigma / np.sqrt(residual.size)
    assert residual.std() == pytest.approx(sigma, rel=0.05)
    # the mean is the prediction, not the input (the two differ by 1 everywhere)
    assert np.abs((draws.mean(0) - inp[0]).numpy() - 1.0).max() < 5 * sigma / np.sqrt(n)


def test_antithetic_pairs_cancel_the_noise_and_each_draw_is_still_a_sample():
    """With the exact Gaussian residual denoiser, DDIM's residual is linear in the noise, so each
    antithetic pair's mean is the prediction exactly, while each draw keeps the residual's
    spread; even draws are the independent draws of their own generators."""
    from densitydiff.diffusion.sampling import Sampling

    sigma = 0.5
    model = _offset_model()
    model.ddpm.prediction = "v"
    model.net = _GaussianResidual(model.ddpm, sigma)
    inp, r_in, r_out = _batch(4)
    pairs, iid = Sampling("ddim", 8, None, antithetic=True), Sampling("ddim", 8, None)
    draws = model.sharpen_draws(inp, r_in, r_out, sampling=pairs,
                                generators=[torch.Generator().manual_seed(s) for s in range(4)])
    free = model.sharpen_draws(inp, r_in, r_out, sampling=iid,
                               generators=[torch.Generator().manual_seed(s) for s in range(4)])
    residual, free_residual = draws - (inp + 1.0), free - (inp + 1.0)
    for a, b in ((0, 1), (2, 3)):
        torch.testing.assert_close(residual[a] + residual[b], torch.zeros_like(inp), rtol=0,
                                   atol=1e-5)  # fmt: skip
        torch.testing.assert_close(draws[a], free[a], rtol=0, atol=0)
    # same marginal as independent DDIM 8 draws (both a little under sigma: 8 ODE steps)
    assert float(residual.std()) == pytest.approx(float(free_residual.std()), rel=0.1)
    assert float(residual.std()) > 0.7 * sigma
    assert (free_residual.mean(0)).abs().max() > 0.3  # independent draws: no such cancelling
    with pytest.raises(ValueError, match="generator"):
        model.sharpen_draws(inp, r_in, r_out, sampling=pairs, generators=[None, None])


def test_residuals_stay_in_the_clip_range():
    inp, r_in, r_out = _batch(2)
    from densitydiff.diffusion.sampling import Sampling

    free = _offset_model(clip_residual=None)
    wide = free.sharpen(inp, r_in, r_out, generator=torch.Generator().manual_seed(2)) - inp - 1
    assert wide.abs().max() > 0.2  # unclipped, the random network's residuals go further
    model = _offset_model(clip_residual=[-0.1, 0.2])
    for sampling in (None, Sampling("ddim", 3, None), Sampling("ddim", 3, (-5.0, 5.0))):
        g = torch.Generator().manual_seed(2)
        residual = model.sharpen(inp, r_in, r_out, generator=g, sampling=sampling) - inp - 1
        assert residual.min() >= -0.1 - 1e-6 and residual.max() <= 0.2 + 1e-6
        assert residual.max() > 0.2 - 1e-3  # the bound is reached: the clamp did work
    assert model.sampling.clip_x0 == (-0.1, 0.2)  # the chain's x0 is clamped the same way
    for bad in ([1.0, 0.0], [0.0], "wide"):
        with pytest.raises(InputError, match="clip_residual"):
            load_config("tiny", {"model": "refine", "refine": {"clip_residual": bad}})


def test_predictor_is_refused_unless_a_unet_of_the_shape_and_voxel(tmp_path):
    ddpm, unet = export_tiny("ddpm", tmp_path), export_tiny("unet", tmp_path)
    with pytest.raises(InputError, match="ddpm model; the predictor must be a regression"):
        load_predictor(ddpm, _config())
    with pytest.raises(InputError, match=r"differs from refine.predictor_net: widths \[8, 16\]"):
        load_predictor(unet, load_config("tiny", {"model": "refine"}))  # default: 16, 32
    with pytest.raises(InputError, match="trained on 1 Å voxels, the training data has 2 Å"):
        load_predictor(unet, _config(), voxel_size=2.0)
    # accepted: a unet run's Lightning checkpoint, and the packaged regression model, whose
    # shape is refine.predictor_net's default
    pt = export_tiny("unet", tmp_path, name="pred")
    state, path = load_predictor(tmp_path / "run_unet" / "checkpoints" / "last.ckpt", _config())
    exported = load_sharpener(pt).model.state_dict()
    assert state.keys() == exported.keys() and path.is_file()
    assert all(torch.equal(state[k], exported[k]) for k in state)
    state, path = load_predictor("regression", load_config("tiny", {"model": "refine"}), 1.0)
    assert path.name == "regression_unet.pt" and any(k.startswith("net.") for k in state)
    with pytest.raises(InputError, match="frozen predictor needs"):
        train_sharpen(_config(), tmp_path / "r", dataset=PairDataset([make_pair(16, 0)]))
    assert not (tmp_path / "r").exists()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from densitydiff.data.build import BuildConfig, build_store

    out = tmp_path_factory.mktemp("refine") / "store.zarr"
    config = BuildConfig(resolutions=(2.0, 4.0), voxel_size=1.0, patch=16,
                         patches_per_structure=2, dtype="float32", seed=0, val_fraction=0,
                         test_fraction=0)  # fmt: skip
    build_store([EXAMPLES / "1orc.pdb.gz"], out, config, progress=False, log=lambda _: None)
    return out


def test_cli_refuses_a_wrong_predictor_in_one_line(cli, tmp_path, store):
    ddpm, unet = export_tiny("ddpm", tmp_path), export_tiny("unet", tmp_path)
    yaml_config = tmp_path / "refine.yaml"
    yaml_config.write_text(dump_config(_config(2)))
    base = ["train", "sharpen", "--data", store, "-o", tmp_path / "r"]
    cases = {
        "the predictor must be a regression U-Net": [*base, "--model", "refine", "--predictor",
                                                     ddpm, "--config", yaml_config],
        "differs from refine.predictor_net": [*base, "--model", "refine", "--predictor", unet],
        "--predictor is for --model refine": [*base, "--model", "unet", "--predictor", unet],
        "no such checkpoint": [*base, "--model", "refine", "--predictor", tmp_path / "no.pt"],
    }  # fmt: skip
    for message, args in cases.items():
        code, _, err = cli(*args)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "r").exists()


def test_cli_train_export_sharpen_with_samples(cli, tmp_path, store):
    unet = export_tiny("unet", tmp_path)
    yaml_config = tmp_path / "refine.yaml"
    yaml_config.write_text(dump_config(_config(2)))
    run, model = tmp_path / "run", tmp_path / "refine.pt"
    code, out, err = cli("train", "sharpen", "--data", store, "--model", "refine", "--predictor",
                         unet, "--config", yaml_config, "-o", run, "--batch-size", "2")  # fmt: skip
    assert code == 0, err
    assert "trained refine to step 2" in out
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["model"] == "refine" and saved["refine"]["predictor"] == str(unet)
    code, out, err = cli("train", "export", run, "-o", model)
    assert code == 0, err

    loaded = load_sharpener(model)
    assert loaded.kind == "refine" and loaded.is_generative and not loaded.model.is_local
    ema = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    for key, value in loaded.model.state_dict().items():  # the EMA weights, in float16
        torch.testing.assert_close(value, ema[f"ema.module.{key}"].half().float(), msg=key)
    reference = load_sharpener(unet).model.state_dict()
    for key, value in reference.items():
        torch.testing.assert_close(loaded.model.predictor.state_dict()[key], value.half().float())

    vol = make_pair(24, 4)["input"][0].numpy() * 3 + 1
    density = DensityMap(vol.astype(np.float32), (1.0, 1.0, 1.0), (12.0, -3.0, 40.0))
    write_map(tmp_path / "in.mrc", density)
    out_map, std = tmp_path / "out.mrc", tmp_path / "std.mrc"
    code, _, err = cli("sharpen", tmp_path / "in.mrc", "-o", out_map, "--checkpoint", model,
                       "--input-resolution", 4, "--samples", 2, "--std-out", std,
                       "--steps", 2)  # fmt: skip
    assert code == 0, err
    a, b, s = read_map(tmp_path / "in.mrc"), read_map(out_map), read_map(std)
    assert b.same_grid(a) and s.same_grid(a)
    assert b.voxel_size == a.voxel_size and tuple(b.origin) == (12.0, -3.0, 40.0)
    assert np.all(np.isfinite(b.array)) and s.array.min() >= 0 and s.array.max() > 0
    record = json.loads((tmp_path / "out.json").read_text())
    assert record["kind"] == "refine" and record["inference"]["samples"] == 2
