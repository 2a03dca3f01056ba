"""Held-out evaluation "as real maps look": inputs with the atoms' B-factors, a global B and
half-map-FSC noise (checked against direct simulate_map calls and the noise's FSC), and the
uncertainty columns of generative models (against uncertainty_metrics on the returned maps)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import EXAMPLES

from densitydiff import metrics
from densitydiff.sharpen.evaluate import (
    UNCERTAINTY,
    evaluate_structure,
    evaluate_structures,
    uncertainty_metrics,
)

STRUCTURE = EXAMPLES / "1orc.pdb.gz"
PAD = 4.0  # Å: a small box (38 x 40 x 39)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def clean():
    """The structure, the 2 Å truth (B = 0) and the 3 Å atom mask, simulated here directly."""
    from densitydiff.simulate.density import atom_mask, simulate_map
    from densitydiff.structures import read_structure

    st = read_structure(STRUCTURE)
    truth = simulate_map(st, 2.0, 1.0, padding=PAD)
    return st, truth, atom_mask(st, like=truth, radius=3.0)


def _input(**kw):
    return evaluate_structure(STRUCTURE, [], baselines=("input",), padding=PAD, **kw)


def test_input_b_factors_blur_the_input_as_simulate_map_does(clean):
    from densitydiff.simulate.density import simulate_map

    st, truth, mask = clean
    ev = _input(input_b_factors=True)
    expected = simulate_map(st, 4.0, like=truth, use_b_factors=True).array
    plain = simulate_map(st, 4.0, like=truth).array
    np.testing.assert_allclose(ev.maps["input"].array, expected, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(ev.maps["truth"].array, truth.array)  # truth stays B = 0
    assert np.abs(expected - plain).max() > 0.05 * np.abs(plain).max()  # the B-factors matter
    direct = metrics.compare_maps(expected, truth.array, 1.0, mask)
    for key, value in direct.items():
        assert ev.rows[0][key] == pytest.approx(value, rel=1e-6), key
    assert ev.input_info == {"b_factors": True, "global_b": 0.0, "snr0": None,
                             "postprocess_b": None}  # fmt: skip
    # the default is the clean input of the training data
    np.testing.assert_allclose(_input().maps["input"].array, plain, rtol=0, atol=1e-6)


def test_global_b_is_drawn_from_the_seed_and_applied_as_simulate_map_extra_b(clean):
    from densitydiff.simulate.density import simulate_map

    st, truth, _ = clean
    fixed = _input(input_global_b=50)
    np.testing.assert_allclose(fixed.maps["input"].array,
                               simulate_map(st, 4.0, like=truth, extra_b=50.0).array,
                               rtol=0, atol=1e-6)  # fmt: skip
    drawn = [_input(input_global_b="20:60", seed=s).input_info["global_b"] for s in (0, 0, 1)]
    assert drawn[0] == drawn[1] != drawn[2] and all(20 <= b <= 60 for b in drawn)
    ev = _input(input_global_b="20:60", input_b_factors=True, seed=1)
    both = simulate_map(st, 4.0, like=truth, use_b_factors=True, extra_b=drawn[2]).array
    np.testing.assert_allclose(ev.maps["input"].array, both, rtol=0, atol=1e-6)


def test_noise_has_its_half_map_fsc_crossing_at_the_input_resolution(clean):
    """Two seeds: two independent noise draws on the same signal, i.e. two half maps whose FSC
    crosses 0.143 at the input resolution by construction (simulate.realism.fsc_snr)."""
    a, b = (_input(input_snr=5, seed=s) for s in (0, 1))
    plain = _input().maps["input"].array
    na, nb = a.maps["input"].array - plain, b.maps["input"].array - plain
    assert na.std() > 0.01 * plain.std() and abs(np.corrcoef(na.ravel(), nb.ravel())[0, 1]) < 0.1
    curve = metrics.fsc(a.maps["input"].array, b.maps["input"].array, 1.0)
    assert metrics.resolution_at(curve, 0.143) == pytest.approx(4.0, rel=0.1)
    assert a.input_info["snr0"] == pytest.approx(5.0)
    np.testing.assert_array_equal(_input(input_snr=5, seed=0).maps["input"].array,
                                  a.maps["input"].array)  # fmt: skip
    snr = _input(input_snr="2:30", seed=3).input_info["snr0"]
    assert 2 <= snr <= 30


def test_postprocess_sharpens_the_input_as_a_deposited_map(clean):
    """--input-postprocess: exp(+scale B s^2 / 4) with B the input's Guinier fall-off, then a
    cosine low-pass at the input resolution, written out here on the full FFT grid."""
    from densitydiff.filters import guinier_bfactor

    blurred = _input(input_global_b=60).maps["input"].array
    ev = _input(input_global_b=60, input_postprocess=0.8)
    b = guinier_bfactor(blurred, 1.0, 4.0)
    assert ev.input_info["postprocess_b"] == pytest.approx(-0.8 * b)
    f = [np.fft.fftfreq(n) for n in blurred.shape]
    s = np.sqrt(f[0][:, None, None] ** 2 + f[1][None, :, None] ** 2 + f[2][None, None, :] ** 2)
    edge = np.clip((s - 0.85 / 4.0) / (0.15 / 4.0), 0, 1)
    kernel = np.exp(0.8 * b * s**2 / 4) * 0.5 * (1 + np.cos(np.pi * edge))
    expected = np.fft.ifftn(np.fft.fftn(blurred) * kernel).real
    np.testing.assert_allclose(ev.maps["input"].array, expected,
                               atol=1e-5 * np.abs(expected).max())  # fmt: skip
    drawn = [_input(input_postprocess="0.5:1", seed=k).input_info["postprocess_b"] for k in (0, 1)]
    plain_b = guinier_bfactor(_input().maps["input"].array, 1.0, 4.0)
    assert drawn[0] != drawn[1] and all(-plain_b <= d <= -0.5 * plain_b for d in drawn)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A tiny DDPM as trained (plain), the same weights with std_scale 3, a tiny U-Net."""
    from tiny_models import export_tiny

    from densitydiff.sharpen.checkpoint import export_sharpener

    folder = tmp_path_factory.mktemp("models")
    plain = export_tiny("ddpm", folder, name="plain")  # named: built here, with its run
    ckpt = folder / "run_ddpm" / "checkpoints" / "last.ckpt"
    scaled = export_sharpener(ckpt, folder / "scaled.pt", voxel_size=1.0, patch=16,
                              training_structures=[], std_scale=3.0)  # fmt: skip
    return plain, scaled, export_tiny("unet", folder)


def test_uncertainty_columns_for_generative_models_with_samples(models, clean):
    from densitydiff.sharpen.evaluate import resolve_sharpeners

    _, truth, mask = clean
    loaded = resolve_sharpeners(models)
    kw = dict(baselines=("input",), padding=PAD, sampler="ddim", steps=2, input_b_factors=True)
    ev = evaluate_structure(STRUCTURE, loaded, samples=2, **kw)
    rows = {r["method"]: r for r in ev.rows}
    assert set(rows) == {"input", "plain", "scaled", "tiny_unet"}
    for method in ("input", "tiny_unet"):
        assert all(rows[method][k] is None for k in UNCERTAINTY), method
    mean, std = ev.maps["plain"].array, ev.maps["plain std"].array
    direct = uncertainty_metrics(mean, std, truth.array, mask)
    for key in UNCERTAINTY:
        assert rows["plain"][key] == pytest.approx(direct[key], abs=1e-9), key
    # std_scale 3 (same weights, same draws): the metrics of 3 x the plain model's std
    scaled = uncertainty_metrics(mean, 3 * std, truth.array, mask)
    for key in ("coverage_1", "coverage_2"):
        assert rows["scaled"][key] == pytest.approx(scaled[key], abs=1e-3), key
    assert rows["scaled"]["coverage_2"] > rows["plain"]["coverage_2"]
    # one sample: no std map, no uncertainty anywhere
    one = evaluate_structure(STRUCTURE, loaded, samples=1, **kw)
    assert all(r[k] is None for r in one.rows for k in UNCERTAINTY)
    assert "plain std" not in one.maps


@pytest.fixture(scope="module")
def with_b_direct(clean):
    """The input row's FSC-AUC and CC_mask with atomic B in the default box (10 Å), directly."""
    from densitydiff.simulate.density import atom_mask, simulate_map

    st = clean[0]
    truth = simulate_map(st, 2.0, 1.0)
    inp = simulate_map(st, 4.0, like=truth, use_b_factors=True)
    return metrics.compare_maps(inp.array, truth.array, 1.0, atom_mask(st, like=truth, radius=3))


def test_evaluate_structures_passes_samples_and_the_input_options(models, with_b_direct):
    rows = evaluate_structures([STRUCTURE], [models[0]], samples=2, sampler="ddim", steps=2,
                               baselines=("input",), input_b_factors=True)  # fmt: skip
    ddpm = next(r for r in rows if r["method"] == "plain")
    assert all(ddpm[k] is not None for k in UNCERTAINTY)
    for key in ("fsc_auc", "cc_mask"):
        assert rows[0][key] == pytest.approx(with_b_direct[key], rel=1e-6), key


def test_cli_input_options_and_bad_values(cli, models, with_b_direct, tmp_path):
    code, out, err = cli("evaluate", STRUCTURE, "--no-models", "--json", "--input-b-factors")
    assert code == 0, err
    row = json.loads(out)["rows"][0]
    assert row["method"] == "input"
    for key in ("fsc_auc", "cc_mask"):
        assert row[key] == pytest.approx(with_b_direct[key], rel=1e-6), key
    code, out, err = cli("evaluate", STRUCTURE, "-c", models[0], "--samples", "2", "--steps",
                         "2", "--csv", tmp_path / "rows.csv")  # fmt: skip
    assert code == 0, err
    assert "cover2std" in out.splitlines()[0]
    header = (tmp_path / "rows.csv").read_text().splitlines()[0].split(",")
    assert header[-4:] == list(UNCERTAINTY)
    for bad, fragment in ((["--input-snr", "0.1"], "noise_snr"),
                          (["--input-global-b", "-5"], "global_b"),
                          (["--input-global-b", "x"], "global B"),
                          (["--input-postprocess", "1:0.5"], "postprocess_scale"),
                          (["--samples", "0"], "samples")):  # fmt: skip
        code, out, err = cli("evaluate", STRUCTURE, "--no-models", *bad)
        assert code == 2 and len(err.strip().splitlines()) == 1 and fragment in err, err
    code, out, err = cli("evaluate", "--map", EXAMPLES / "emd_5168_monomer.mrc", "--model",
                         EXAMPLES / "3mfp.pdb.gz", "--input-resolution", "6.6",
                         "--input-b-factors")  # fmt: skip
    assert code == 2 and "--map" in err
    code, out, err = cli("evaluate", "--map", EXAMPLES / "emd_5168_monomer.mrc", "--model",
                         EXAMPLES / "3mfp.pdb.gz", "--input-postprocess", "1")  # fmt: skip
    assert code == 2 and "--map" in err
