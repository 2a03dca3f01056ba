"""Real-map evaluation against a deposited model, half maps, and the sharpening guards."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import EXAMPLES

from densitydiff import metrics
from densitydiff.formats.maps import read_map, write_map
from densitydiff.maps import DensityMap

MAP = EXAMPLES / "emd_5168_monomer.mrc"  # EMD-5168, ~6.6 Å, a crop around one actin subunit
MODEL = EXAMPLES / "3mfp.pdb.gz"  # its deposited model


def test_real_map_against_its_model_with_the_regression_model():
    from densitydiff.sharpen.realmap import evaluate_real_map
    from densitydiff.simulate.density import simulate_map

    ev = evaluate_real_map(MAP, MODEL, ["regression"], input_resolution=6.6)
    rows = {r["method"]: r for r in ev.rows}
    assert set(rows) == {"input", "guinier", "regression_unet"}
    # independent check of the input's row: the model simulated on the map's grid, by hand
    density = read_map(MAP)
    ref = simulate_map(MODEL, 2 * max(density.voxel_size), like=density).array
    assert rows["input"]["cc_box"] == pytest.approx(metrics.cc(density.array, ref), abs=1e-6)
    # a 6.6 Å map fitted by its model: the map-model FSC crosses 0.5 between 6 and 11 Å
    assert 6.0 < rows["input"]["fsc_0.5"] < 11.0
    assert 0.3 < rows["input"]["cc_mask"] < 0.9
    assert ev.info["target_resolution"] == pytest.approx(2 * 1.742, abs=1e-3)  # the grid's best
    assert 200 < ev.info["guinier_b"] < 800  # a 6.6 Å map falls off steeply
    # the packaged models were trained on 3-5 Å inputs: the 6.6 Å map is outside, and said so
    assert any("outside the model's training range" in w for w in ev.warnings)
    for r in ev.rows:
        assert all(np.isfinite(r[k]) for k in ("fsc_0.5", "fsc_auc", "cc_box", "cc_mask"))


def test_half_maps_give_the_input_resolution_and_the_noise(tmp_path):
    from densitydiff.sharpen.realmap import evaluate_real_map
    from densitydiff.simulate.density import simulate_map
    from densitydiff.simulate.realism import fsc_noise

    signal = simulate_map(EXAMPLES / "1aki.cif.gz", 2.0, 1.0, padding=8)
    rng = np.random.default_rng(0)
    n1, n2 = (fsc_noise(signal.array, 1.0, 5.0, 8.0, rng) for _ in range(2))
    halves = [signal.with_array((signal.array + n).astype(np.float32)) for n in (n1, n2)]
    for name, h in zip(("a.mrc", "b.mrc"), halves):
        write_map(tmp_path / name, h)
    full = signal.with_array(((halves[0].array + halves[1].array) / 2).astype(np.float32))
    write_map(tmp_path / "full.mrc", full)
    ev = evaluate_real_map(tmp_path / "full.mrc", EXAMPLES / "1aki.cif.gz", [],
                           half_maps=(tmp_path / "a.mrc", tmp_path / "b.mrc"))  # fmt: skip
    assert ev.info["half_map_resolution"] == pytest.approx(5.0, rel=0.08)
    assert ev.info["input_resolution"] == ev.info["half_map_resolution"]
    # the noise of the mean of two halves: std((n1 - n2) / 2) = std(n) / sqrt(2)
    assert ev.info["noise_std"] == pytest.approx(np.std(n1) / np.sqrt(2), rel=0.05)
    assert [r["method"] for r in ev.rows] == ["input", "guinier"]


def test_evaluate_map_cli(cli, tmp_path):
    code, out, err = cli("evaluate", "--map", MAP, "--model", MODEL, "--input-resolution", 6.6,
                         "--no-models", "--json")  # fmt: skip
    assert code == 0, err
    data = json.loads(out)
    assert [r["method"] for r in data["rows"]] == ["input", "guinier"]
    assert data["settings"]["input_resolution"] == 6.6
    code, out, err = cli("evaluate", "--map", MAP, "--no-models", "--input-resolution", 6)
    assert code == 2 and "--model" in err and len(err.strip().splitlines()) == 1
    code, out, err = cli("evaluate", "--map", MAP, "--model", MODEL, "--no-models")
    assert code == 2 and "--half-maps" in err
    code, out, err = cli("evaluate", "--map", tmp_path / "none.mrc", "--model", MODEL,
                         "--input-resolution", 6)  # fmt: skip
    assert code == 2 and "not found" in err


def test_sharpen_warns_outside_the_training_range_and_the_output_grid(cli, tmp_path):
    """A model trained on 4 -> 2 Å pairs, given a 6 Å map on 1.5 Å voxels and asked for 2 Å:
    both warnings on stderr and in OUT.json; the output stays on the input's grid."""
    from tiny_models import export_tiny

    from densitydiff.sharpen.checkpoint import export_sharpener, load_sharpener

    export_tiny("unet", tmp_path, name="base")  # named: built here, with its run
    ckpt = tmp_path / "run_unet" / "checkpoints" / "last.ckpt"
    pairs = [(4.0, 2.0), (3.0, 2.0)]
    model = export_sharpener(ckpt, tmp_path / "m.pt", voxel_size=1.0, patch=16,
                             training_structures=[], training_pairs=pairs)  # fmt: skip
    assert load_sharpener(model).training_range == {"input": [3.0, 4.0], "target": [2.0, 2.0]}
    rng = np.random.default_rng(0)
    write_map(tmp_path / "in.mrc", DensityMap(rng.normal(size=(16, 16, 16)).astype(np.float32),
                                              (1.5,) * 3))  # fmt: skip
    code, out, err = cli("sharpen", tmp_path / "in.mrc", "-o", tmp_path / "o.mrc", "--checkpoint",
                         model, "--input-resolution", 6, "--target-resolution", 2)  # fmt: skip
    assert code == 0, err
    warnings = json.loads((tmp_path / "o.json").read_text())["warnings"]
    assert len(warnings) == 2
    assert "finer than the output grid holds" in warnings[0] and "3 Å" in warnings[0]
    assert "input resolution 6 Å lies outside the model's training range (3-4 Å)" in warnings[1]
    assert err.count("warning:") == 2
    assert read_map(tmp_path / "o.mrc").same_grid(read_map(tmp_path / "in.mrc"))
    # inside the range on a grid that holds the target: no warning
    write_map(tmp_path / "in1.mrc", DensityMap(rng.normal(size=(16, 16, 16)).astype(np.float32),
                                               (1.0,) * 3))  # fmt: skip
    code, out, err = cli("sharpen", tmp_path / "in1.mrc", "-o", tmp_path / "o1.mrc",
                         "--checkpoint", model, "--input-resolution", 4)  # fmt: skip
    assert code == 0 and "warning" not in err
    assert json.loads((tmp_path / "o1.json").read_text())["warnings"] == []
