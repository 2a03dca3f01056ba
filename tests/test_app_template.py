"""The shared pieces of every application: config idiom, sampler names, EMA, torch files."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import torch

from densitydiff import configfile
from densitydiff.diffusion.sampling import SAMPLERS, Sampling, sampler_name
from densitydiff.errors import InputError
from densitydiff.nn.ema import ema_copy
from densitydiff.torchfile import read_torch_file


@dataclass
class _Inner:
    width: int = 4
    names: list[str] = field(default_factory=list)


@dataclass
class _Config:
    lr: float = 0.1
    inner: _Inner = field(default_factory=_Inner)

    def validate(self) -> None:
        if self.lr <= 0:
            raise InputError("lr must be > 0")


def test_config_idiom_presets_yaml_overrides_and_checks(tmp_path):
    presets = {"wide": {"inner": {"width": 64}}}
    got = configfile.resolve(_Config, presets, "wide", {"lr": 0.5})
    assert got == _Config(lr=0.5, inner=_Inner(width=64))
    path = tmp_path / "c.yaml"
    path.write_text("inner: {names: [a, b]}\n")
    assert configfile.resolve(_Config, presets, path).inner.names == ["a", "b"]
    for bad, message in [
        ({"inner": {"widht": 1}}, "inner.widht"),
        ({"lr": "1e-3"}, "must be a number"),
        ({"lr": -1.0}, "lr must be > 0"),
        ({"inner": 3}, "mapping"),
    ]:
        with pytest.raises(InputError, match=message):
            configfile.resolve(_Config, presets, None, bad)
    with pytest.raises(InputError, match="neither a preset"):
        configfile.resolve(_Config, presets, "narrow")


def test_one_list_of_sampler_names_with_aliases():
    assert SAMPLERS == ("ddpm", "ddim", "dpmsolver++")
    assert sampler_name("dpmpp") == "dpmsolver++" and Sampling("dpmpp").sampler == "dpmsolver++"
    with pytest.raises(InputError, match="unknown sampler 'euler'"):
        Sampling("euler")
    with pytest.raises(InputError, match="steps"):
        Sampling("ddim", 0)
    assert Sampling("ddim", 5, [-1, 2]).clip_x0 == (-1.0, 2.0)


def test_ema_follows_the_formula():
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    w0 = net.weight.detach().clone()
    for average_initial, first in ((False, None), (True, w0)):
        ema = ema_copy(net, 0.9, average_initial=average_initial)
        expected = first
        for _ in range(3):
            with torch.no_grad():
                net.weight.add_(1.0)
            ema.update_parameters(net)
            w = net.weight.detach()
            expected = w.clone() if expected is None else 0.9 * expected + 0.1 * w
            torch.testing.assert_close(ema.module.weight, expected)
        assert not ema.module.weight.requires_grad
        with torch.no_grad():
            net.weight.copy_(w0)


def test_torch_files_load_weights_only(tmp_path):
    good = tmp_path / "t.pt"
    torch.save({"x": torch.arange(3)}, good)
    assert torch.equal(read_torch_file(good)["x"], torch.arange(3))

    class Payload:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    evil = tmp_path / "evil.pt"
    torch.save({"x": Payload()}, evil)
    with pytest.raises(InputError, match="cannot read checkpoint"):
        read_torch_file(evil)
    assert not (tmp_path / "pwned").exists()
    with pytest.raises(InputError, match="no such latents"):
        read_torch_file(tmp_path / "missing.pt", "latents")
