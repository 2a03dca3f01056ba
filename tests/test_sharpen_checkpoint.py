"""Loading models for inference: training checkpoints (EMA for the DDPM), exported files, errors."""

from __future__ import annotations

import pytest
import torch
from sharpen_pairs import PairDataset, make_pair

from densitydiff.errors import InputError
from densitydiff.sharpen import checkpoint as ck
from densitydiff.sharpen.checkpoint import export_sharpener, load_sharpener
from densitydiff.sharpen.config import load_config

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def ddpm_run(tmp_path_factory):
    """A real 3-step DDPM training run (tiny preset, EMA decay 0.5 so EMA != weights)."""
    from densitydiff.sharpen.train import train_sharpen

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("ddpm") / "run"
    config = load_config(
        "tiny",
        {
            "model": "ddpm",
            "optim": {"ema_decay": 0.5},
            "trainer": {"max_steps": 3, "batch_size": 1, "monitor_every_n_steps": 0},
        },
    )
    result = train_sharpen(config, run, dataset=PairDataset([make_pair(16, 0)]), progress_bar=False)
    torch.set_num_threads(old)
    return run, result


def test_training_checkpoint_loads_with_ema_weights(ddpm_run):
    run, result = ddpm_run
    sharpener = load_sharpener(run / "checkpoints" / "last.ckpt")
    assert sharpener.kind == "ddpm" and sharpener.is_generative
    assert not sharpener.model.training
    sd = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    name = "net.in_conv.weight"
    assert torch.equal(sharpener.model.state_dict()[name], sd["ema.module." + name])
    assert not torch.equal(sd["ema.module." + name], sd["model." + name])  # EMA was picked
    # the run's store is unknown (in-memory dataset): the documented assumptions hold
    assert (sharpener.voxel_size, sharpener.patch) == (ck.ASSUMED_VOXEL_SIZE, ck.ASSUMED_PATCH)
    assert "assumed" in sharpener.extra["geometry"]


def test_export_round_trip_is_small_and_same_model(ddpm_run, tmp_path):
    run, _ = ddpm_run
    ckpt = run / "checkpoints" / "last.ckpt"
    out = export_sharpener(
        ckpt, tmp_path / "m.pt", voxel_size=1.25, patch=16, training_structures=["1abc", "2xyz"]
    )
    assert out.stat().st_size < ckpt.stat().st_size  # no optimizer state, one weight copy
    a, b = load_sharpener(ckpt), load_sharpener(out)
    assert (b.voxel_size, b.patch, b.training_structures) == (1.25, 16, ["1abc", "2xyz"])
    assert b.name == "m" and b.kind == "ddpm"
    x = torch.randn(1, 1, 16, 16, 16)
    r = torch.tensor([4.0]), torch.tensor([2.0])
    t = torch.tensor([5])
    assert torch.allclose(
        a.model.net(torch.cat([x, x], 1), t, *r), b.model.net(torch.cat([x, x], 1), t, *r)
    )
    half = export_sharpener(
        ckpt, tmp_path / "h.pt", voxel_size=1.0, patch=16, training_structures=[], half=True
    )
    assert half.stat().st_size < out.stat().st_size
    h = load_sharpener(half)
    assert torch.allclose(
        h.model.net(torch.cat([x, x], 1), t, *r),
        b.model.net(torch.cat([x, x], 1), t, *r),
        atol=1e-2,
    )


def test_missing_packaged_model_says_to_pass_checkpoint(monkeypatch, tmp_path):
    monkeypatch.setattr(ck, "MODELS_DIR", tmp_path)
    for name in (None, "default", "unet"):
        with pytest.raises(InputError, match="--checkpoint"):
            load_sharpener(name)


def test_bad_checkpoints_raise_input_errors(tmp_path):
    with pytest.raises(InputError, match="no such checkpoint"):
        load_sharpener(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00not a torch file" * 50)
    with pytest.raises(InputError, match="cannot read checkpoint"):
        load_sharpener(junk)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(InputError, match="not a densitydiff"):
        load_sharpener(other)
    bad = tmp_path / "bad.pt"
    torch.save({"format": ck.FORMAT, "config": {"model": "unet"}, "state_dict": {}}, bad)
    with pytest.raises(InputError):
        load_sharpener(bad)


def test_train_export_command_packages_the_ema_weights(ddpm_run, tmp_path, cli):
    run, _ = ddpm_run
    out = tmp_path / "model.pt"
    assert not load_sharpener(run / "checkpoints" / "last.ckpt").model.sampling.antithetic
    code, stdout, err = cli("train", "export", run, "-o", out, "--float32", "--sampler", "ddim",
                            "--steps", "7", "--antithetic")  # fmt: skip
    assert code == 0, err
    exported = load_sharpener(out)
    assert (exported.model.sampling.sampler, exported.model.sampling.steps) == ("ddim", 7)
    assert exported.model.sampling.antithetic  # the recipe travels in the file
    from densitydiff.sharpen.infer import resolve_sampling

    assert resolve_sampling(exported.model, None, None, "auto").antithetic
    assert not resolve_sampling(exported.model, None, None, "auto", False).antithetic
    from_ckpt = load_sharpener(run / "checkpoints" / "last.ckpt")
    for name, value in from_ckpt.model.state_dict().items():
        assert torch.equal(exported.model.state_dict()[name], value), name
    code, _, err = cli("train", "export", tmp_path / "nowhere", "-o", tmp_path / "x.pt")
    assert code == 2 and err.count("\n") == 1 and not (tmp_path / "x.pt").exists()
