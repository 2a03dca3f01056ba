"""Sharpening configs: presets, YAML files, overrides, bad keys/values; the LR schedule."""

from __future__ import annotations

import math

import pytest

from densitydiff.errors import InputError
from densitydiff.sharpen.config import PRESETS, dump_config, load_config


def test_presets_and_overrides():
    for name in PRESETS:
        assert load_config(name).trainer.max_steps == PRESETS[name]["trainer"]["max_steps"]
    cfg = load_config("small", {"model": "vae", "trainer": {"batch_size": 3}})
    assert cfg.model == "vae" and cfg.trainer.batch_size == 3
    assert cfg.net.widths == [16, 32, 64] and cfg.net.attention_levels == [2]  # from the preset
    assert cfg.trainer.max_steps == 5000


def test_yaml_round_trip_and_partial_files(tmp_path):
    cfg = load_config("base", {"seed": 7})
    path = tmp_path / "c.yaml"
    path.write_text(dump_config(cfg))
    assert load_config(path) == cfg
    partial = tmp_path / "p.yaml"
    partial.write_text("model: unet\nloss: l1\nnet: {widths: [8, 8]}\n")
    got = load_config(partial)
    assert (got.model, got.loss, got.net.widths, got.net.emb_dim) == ("unet", "l1", [8, 8], 64)


@pytest.mark.parametrize(
    "text,message",
    [
        ("net: {widthz: [8]}\n", "net.widthz"),
        ("model: gan\n", "unknown model"),
        ("diffusion: {schedule: quadratic}\n", "unknown schedule"),
        ("trainer: {max_steps: 0}\n", ">= 1"),
        ("- a list\n", "mapping"),
        ("net: {widths: [8\n", "not valid YAML"),
    ],
)
def test_bad_configs_raise_input_error(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        load_config(path)


def test_warmup_then_cosine():
    from densitydiff.sharpen.module import warmup_cosine

    assert warmup_cosine(0, 10, 110, 0.1) == pytest.approx(0.1)  # (0 + 1) / 10
    assert warmup_cosine(9, 10, 110, 0.1) == pytest.approx(1.0)
    assert warmup_cosine(10, 10, 110, 0.1) == pytest.approx(1.0)
    mid = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5))
    assert warmup_cosine(60, 10, 110, 0.1) == pytest.approx(mid)
    assert warmup_cosine(110, 10, 110, 0.1) == pytest.approx(0.1)
    assert warmup_cosine(500, 10, 110, 0.1) == pytest.approx(0.1)
