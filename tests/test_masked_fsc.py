"""Masked FSC, soft-edged masks and the phase-randomisation correction (Chen et al. 2013),
checked against hand computations and an independent full-spectrum FFT."""

from __future__ import annotations

import json

import numpy as np
import pytest

from densitydiff import DensityMap, InputError, metrics, write_map
from densitydiff.filters import lowpass, soft_edge
from tests.conftest import EXAMPLES


def test_corrected_fsc_by_hand():
    f = np.array([0.0, 0.1, 0.2, 0.3])
    t = metrics.FSCCurve(f, np.array([1.0, 0.9, 0.6, 0.3]), (1.0, 1.0, 1.0))
    n = metrics.FSCCurve(f, np.array([1.0, 0.9, 0.2, 0.1]), (1.0, 1.0, 1.0))
    out = metrics.corrected_fsc(t, n, frequency=0.15)
    np.testing.assert_allclose(out.fsc, [1.0, 0.9, 0.4 / 0.8, 0.2 / 0.9])
    one = metrics.FSCCurve(f, np.array([1.0, 0.9, 1.0, 0.1]), (1.0, 1.0, 1.0))
    assert metrics.corrected_fsc(t, one, frequency=0.15).fsc[2] == 0.0


def test_randomisation_frequency_is_the_08_crossing():
    f = np.array([0.0, 0.1, 0.2, 0.3])
    curve = metrics.FSCCurve(f, np.array([1.0, 0.9, 0.7, 0.3]), (1.0, 1.0, 1.0))
    assert metrics.randomisation_frequency(curve) == pytest.approx(0.15)  # 0.9 -> 0.7: midway


def _random_map(shape=(20, 22, 24), seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def test_phase_randomise_keeps_amplitudes_and_low_frequencies_full_spectrum():
    a = _random_map()
    voxel = (1.0, 1.2, 0.9)
    cut = 0.2
    out = metrics.phase_randomise(a, voxel, cut, seed=3)
    assert out.shape == a.shape and out.dtype == np.float64
    fa, fo = np.fft.fftn(a), np.fft.fftn(out)  # full complex spectrum, independent of rfftn
    s = np.sqrt(
        np.fft.fftfreq(20, 1.0)[:, None, None] ** 2
        + np.fft.fftfreq(22, 1.2)[None, :, None] ** 2
        + np.fft.fftfreq(24, 0.9)[None, None, :] ** 2
    )
    np.testing.assert_allclose(np.abs(fo), np.abs(fa), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(fo[s <= cut], fa[s <= cut], rtol=1e-9, atol=1e-9)
    beyond = s > cut
    cos = np.real(fo[beyond] * np.conj(fa[beyond])) / np.abs(fa[beyond]) ** 2
    assert abs(cos.mean()) < 4 / np.sqrt(beyond.sum())  # the phases beyond are unrelated


def test_without_a_mask_the_corrected_fsc_equals_the_unmasked_within_noise():
    rng = np.random.default_rng(1)
    signal = lowpass(rng.standard_normal((32, 32, 32)), 1.0, 4.0)
    a = signal + 0.3 * rng.standard_normal(signal.shape)
    b = signal + 0.3 * rng.standard_normal(signal.shape)
    result = metrics.masked_fsc(a, b, 1.0, np.ones(a.shape), seed=0)
    np.testing.assert_allclose(result.masked.fsc, result.unmasked.fsc, atol=1e-6)
    f = result.corrected.frequencies
    beyond = f > result.frequency
    assert 0.15 < result.frequency < 0.3 and beyond.sum() > 5
    noise = 1 / np.sqrt(result.corrected.counts / 2.0)  # sd of an FSC of unrelated maps
    diff = np.abs(result.corrected.fsc - result.unmasked.fsc)
    assert np.all(diff[beyond] < 4 * noise[beyond])
    assert np.all(diff[~beyond] == 0)
    assert np.all(np.abs(result.randomised.fsc[beyond]) < 4 * noise[beyond])


def test_a_tight_hard_mask_inflates_the_fsc_and_the_correction_removes_it():
    rng = np.random.default_rng(2)
    signal = lowpass(rng.standard_normal((32, 32, 32)), 1.0, 6.0)
    signal = 2.0 + signal / signal.std()  # a molecule on a non-zero background
    a = signal + 1.0 * rng.standard_normal(signal.shape)
    b = signal + 1.0 * rng.standard_normal(signal.shape)
    z, y, x = np.indices(a.shape) - 15.5
    mask = (z**2 + y**2 + x**2) < 8.0**2  # hard edge through the signal
    result = metrics.masked_fsc(a, b, 1.0, mask, seed=0)
    beyond = result.masked.frequencies > result.frequency
    # beyond 6 Å the two maps share nothing (signal low-passed at 6 Å): true FSC ~ 0
    np.testing.assert_allclose(result.unmasked.fsc[beyond], 0.0, atol=0.15)
    assert result.masked.fsc[beyond].mean() > 0.3  # the hard mask's edge correlates them
    assert result.randomised.fsc[beyond].mean() > 0.2  # ... and the correction measures it
    assert abs(result.corrected.fsc[beyond].mean()) < 0.15


def test_soft_edge_is_a_raised_cosine_of_the_distance():
    binary = np.zeros((4, 4, 30), bool)
    binary[..., :11] = True  # x <= 10 inside
    m = soft_edge(binary, (1.0, 1.0, 2.0), width=12.0)  # x voxels of 2 Å
    assert np.all(m[..., :11] == 1.0)
    for i in range(11, 30):
        d = 2.0 * (i - 10)
        want = 0.5 * (1 + np.cos(np.pi * d / 12.0)) if d < 12 else 0.0
        assert m[0, 0, i] == pytest.approx(want, abs=1e-6)
    with pytest.raises(InputError):
        soft_edge(np.zeros((3, 3, 3), bool), 1.0, 3.0)


def _half_maps(tmp_path):
    rng = np.random.default_rng(4)
    signal = np.zeros((40, 40, 40))
    signal[12:28, 12:28, 12:28] = lowpass(rng.standard_normal((16, 16, 16)), 1.5, 5.0) + 2.0
    signal = lowpass(signal, 1.5, 5.0)
    paths = []
    for k in (1, 2):
        half = signal + 0.5 * rng.standard_normal(signal.shape)
        paths.append(write_map(tmp_path / f"half{k}.mrc", DensityMap(half, 1.5, (3.0, 0, 0))))
    return paths


def test_fsc_cli_with_a_threshold_mask_reports_all_curves(cli, tmp_path):
    h1, h2 = _half_maps(tmp_path)
    code, out, err = cli("fsc", h1, h2, "--json")
    assert code == 0, err
    plain = json.loads(out)
    code, out, err = cli("fsc", h1, h2, "--mask-threshold", "1.0", "--mask-soft-edge", "4",
                         "--json", "--plot", tmp_path / "fsc.png")  # fmt: skip
    assert code == 0, err
    record = json.loads(out)
    assert set(record["curves"]) == {"unmasked", "masked", "phase_randomised", "corrected"}
    np.testing.assert_allclose(record["curves"]["unmasked"], plain["fsc"], atol=1e-6)
    assert record["fsc"] == record["curves"]["corrected"]
    assert record["mask"]["kind"] == "threshold" and record["mask"]["soft_edge"] == 4.0
    # removing the solvent noise raises the FSC: finer resolution than unmasked
    assert record["fsc_0.143"] < plain["fsc_0.143"]
    assert record["unmasked"]["fsc_0.143"] == pytest.approx(plain["fsc_0.143"])
    assert (tmp_path / "fsc.png").read_bytes()[:4] == b"\x89PNG"


def test_fsc_cli_mask_from_a_model_and_bad_mask_options(cli, tmp_path):
    from densitydiff.cli import main

    sim = tmp_path / "sim.mrc"
    assert main(["simulate", "map", str(EXAMPLES / "1orc.pdb.gz"), "-o", str(sim), "-r", "5",
                 "--voxel-size", "2"]) == 0  # fmt: skip
    code, out, err = cli("fsc", sim, sim, "--mask-model", EXAMPLES / "1orc.pdb.gz", "--json")
    assert code == 0, err
    record = json.loads(out)
    assert record["mask"]["kind"] == "model"
    np.testing.assert_allclose(record["curves"]["corrected"][1:], 1.0, atol=1e-6)
    code, _, err = cli("fsc", sim, sim, "--mask-threshold", "0.1", "--mask-model",
                       EXAMPLES / "1orc.pdb.gz")  # fmt: skip
    assert code == 2 and err.count("\n") == 1 and "one of" in err
    code, _, err = cli("fsc", sim, sim, "--mask-threshold", "1e9")
    assert code == 2 and "empty" in err
