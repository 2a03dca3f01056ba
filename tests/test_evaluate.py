"""`densitydiff evaluate`: rows per method, metrics checked against direct computations, the
optimal-B search against a brute-force real-space scan, the report, and bad inputs."""

from __future__ import annotations

import csv
import json
import math
import re

import numpy as np
import pytest
from conftest import EXAMPLES

STRUCTURE = EXAMPLES / "1orc.pdb.gz"  # the smallest packaged structure (64 residues)
KEYS = {
    "structure",
    "method",
    "fsc_0.5",
    "fsc_0.143",
    "fsc_auc",
    "psnr",
    "ssim",
    "cc_box",
    "cc_mask",
    "seconds",
}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def simulated():
    """Truth (2 Å) and input (4 Å) on one grid and the 3 Å atom mask, computed here directly."""
    from densitydiff.simulate.density import atom_mask, simulate_map
    from densitydiff.structures import read_structure

    st = read_structure(STRUCTURE)
    truth = simulate_map(st, 2.0, 1.0)
    inp = simulate_map(st, 4.0, like=truth)
    return truth, inp, atom_mask(st, like=truth, radius=3.0)


@pytest.fixture(scope="module")
def baseline_rows():
    from conftest import run_cli

    code, out, err = run_cli(
        "evaluate",
        STRUCTURE,
        "--no-models",
        "--json",
        "--input-resolution",
        "4",
        "--target-resolution",
        "2",
    )
    assert code == 0, err
    return json.loads(out)


def _pearson(a, b) -> float:
    return float(np.corrcoef(np.ravel(a).astype(float), np.ravel(b).astype(float))[0, 1])


def test_baseline_rows_and_the_input_row_match_direct_metrics(baseline_rows, simulated):
    from densitydiff import metrics

    rows = {r["method"]: r for r in baseline_rows["rows"]}
    assert set(rows) == {"input", "bfactor", "lowpass"}
    assert all(KEYS <= set(r) for r in rows.values())
    assert set(baseline_rows["summary"]) == set(rows)
    truth, inp, mask = simulated
    direct = metrics.compare_maps(inp.array, truth.array, 1.0, mask)
    for key, value in direct.items():
        assert rows["input"][key] == pytest.approx(value, rel=1e-9), key
    # independent of the package: Pearson CC by numpy, in the box and inside the atom mask
    assert rows["input"]["cc_box"] == pytest.approx(_pearson(inp.array, truth.array), abs=1e-6)
    assert rows["input"]["cc_mask"] == pytest.approx(
        _pearson(inp.array[mask], truth.array[mask]), abs=1e-6
    )
    # a 4 Å map against its 2 Å truth: FSC falls through 0.5 near 4 Å
    assert 3.6 < rows["input"]["fsc_0.5"] < 4.4


def test_optimal_b_is_at_least_as_good_as_the_input(baseline_rows, simulated):
    from densitydiff.filters import bfactor

    rows = {r["method"]: r for r in baseline_rows["rows"]}
    b = rows["bfactor"]["b_factor"]
    assert -400 <= b <= 100
    # B = 0 is a candidate, so CC_box (the criterion) is never below the input's; the FSC is
    # nearly blind to a radial scaling, so FSC-AUC stays within a hair of the input's
    assert rows["bfactor"]["cc_box"] >= rows["input"]["cc_box"] - 1e-9
    assert rows["bfactor"]["fsc_auc"] >= rows["input"]["fsc_auc"] - 1e-3
    # brute force in real space: no B on a 5 Å^2 grid beats the chosen one
    truth, inp, _ = simulated
    best = max(_pearson(bfactor(inp.array, 1.0, x), truth.array) for x in range(-200, 101, 5))
    assert rows["bfactor"]["cc_box"] >= best - 1e-6
    assert rows["bfactor"]["cc_box"] == pytest.approx(
        _pearson(bfactor(inp.array, 1.0, b), truth.array), abs=1e-6
    )


def test_lowpass_baseline_removes_everything_beyond_the_input_resolution(simulated):
    from densitydiff.sharpen.baselines import lowpass_baseline

    _, inp, _ = simulated
    rng = np.random.default_rng(0)
    noisy = inp.array + rng.normal(0, inp.array.std(), inp.shape).astype(np.float32)
    out = lowpass_baseline(noisy, 1.0, 4.0)
    f = [np.fft.fftfreq(n) for n in out.shape]
    s = np.sqrt(f[0][:, None, None] ** 2 + f[1][None, :, None] ** 2 + f[2][None, None, :] ** 2)
    power = np.abs(np.fft.fftn(out)) ** 2
    assert power[s > 0.25 + 1e-6].sum() < 1e-8 * power.sum()
    assert _pearson(out, inp.array) > _pearson(noisy, inp.array)  # the noise went


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    from tiny_models import export_tiny

    folder = tmp_path_factory.mktemp("models")
    return export_tiny("ddpm", folder), export_tiny("unet", folder)


def test_models_and_report(tiny_models, tmp_path, cli):
    ddpm, unet = tiny_models
    report = tmp_path / "report"
    code, out, err = cli(
        "evaluate",
        STRUCTURE,
        "--checkpoint",
        ddpm,
        "--checkpoint",
        unet,
        "--steps",
        "2",
        "--json",
        "--report",
        report,
        "--csv",
        tmp_path / "rows.csv",
    )
    assert code == 0, err
    result = json.loads(out)
    methods = [r["method"] for r in result["rows"]]
    assert sorted(methods) == sorted(["input", "bfactor", "lowpass", "tiny_ddpm", "tiny_unet"])
    for r in result["rows"]:
        assert KEYS <= set(r)
        assert r["structure"] == "1orc"
        assert all(math.isfinite(r[k]) for k in ("fsc_auc", "ssim", "cc_box", "cc_mask"))
    with open(tmp_path / "rows.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["method"] for r in rows] == methods
    assert float(rows[0]["fsc_auc"]) == pytest.approx(result["rows"][0]["fsc_auc"])

    page = (report / "report.html").read_text()
    assert "data:image/png;base64," in page
    srcs = re.findall(r'src="([^"]*)"', page)
    assert len(srcs) == 2 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert not re.search(r'(href|src)="(?!data:)', page)  # nothing external
    for name in ("fsc_1orc.png", "slices_1orc.png", "results.csv", "results.json"):
        assert (report / name).stat().st_size > 0
    assert (report / "fsc_1orc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((report / "results.json").read_text())
    assert [r["method"] for r in saved["rows"]] == methods


def test_text_table_lists_every_method(cli):
    code, out, err = cli("evaluate", STRUCTURE, "--no-models")
    assert code == 0, err
    lines = out.splitlines()
    assert "FSC-AUC" in lines[0] and "SSIM" in lines[0]
    assert [line.split()[1] for line in lines[2:5]] == ["input", "bfactor", "lowpass"]


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["missing.pdb"], "not found"),
        ([STRUCTURE, "--input-resolution", "2", "--target-resolution", "4"], "finer"),
        ([STRUCTURE, "--input-resolution", "4", "--target-resolution", "4"], "finer"),
        ([STRUCTURE, "--input-resolution", "-4"], "positive"),
        ([STRUCTURE, "--target-resolution", "-1"], "positive"),
        ([STRUCTURE, "--no-models", "--voxel-size", "1.5"], "voxel size"),
    ],
)
def test_bad_input_exits_2_with_one_line(cli, tmp_path, args, fragment):
    code, out, err = cli("evaluate", *[tmp_path / a if a == "missing.pdb" else a for a in args])
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and fragment in err, err


def test_missing_packaged_model_exits_2_with_one_line(cli, monkeypatch, tmp_path):
    import densitydiff.sharpen.checkpoint as checkpoint

    monkeypatch.setattr(checkpoint, "MODELS_DIR", tmp_path)
    code, out, err = cli("evaluate", STRUCTURE)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "checkpoint" in err, err


def test_guinier_fit_recovers_a_known_blur():
    """White noise has a flat spectrum (B 0); blurred by exp(-B s^2/4) the fit returns B, and on
    a simulated map the fitted B rises by exactly the blur applied."""
    from densitydiff.filters import bfactor, guinier_bfactor
    from densitydiff.sharpen.baselines import guinier_baseline
    from densitydiff.simulate.density import simulate_map

    rng = np.random.default_rng(0)
    noise = rng.normal(size=(48, 48, 48))
    assert abs(guinier_bfactor(noise, 1.0, 3.0)) < 5
    assert guinier_bfactor(bfactor(noise, 1.0, 80.0), 1.0, 3.0) == pytest.approx(80, abs=5)
    m = simulate_map(EXAMPLES / "1orc.pdb.gz", 3.0, 1.0, padding=6)
    b0 = guinier_bfactor(m.array, 1.0, 4.0)
    b1 = guinier_bfactor(bfactor(m.array, 1.0, 60.0), 1.0, 4.0)
    assert b1 - b0 == pytest.approx(60, abs=2)
    out, b = guinier_baseline(bfactor(noise, 1.0, 80.0), 1.0, 3.0)
    assert b == pytest.approx(80, abs=5)
    assert abs(guinier_bfactor(out, 1.0, 3.5)) < 10  # the fall-off removed


def test_shell_filter_oracle_undoes_a_known_isotropic_filter_and_beats_any_b():
    """A truth that is the map through an isotropic filter (a B-factor) is recovered (CC ~ 1);
    with noise added, no B-factor sharpening beats the oracle's CC_box (B filters are
    per-shell filters, up to their variation within a shell)."""
    from densitydiff import metrics
    from densitydiff.errors import InputError
    from densitydiff.filters import bfactor
    from densitydiff.sharpen.baselines import optimal_bfactor, shell_filter_oracle
    from densitydiff.simulate.density import simulate_map

    m = simulate_map(EXAMPLES / "1orc.pdb.gz", 3.0, 1.0, padding=6).array
    truth = bfactor(m, 1.0, -40.0)
    assert metrics.cc(m, truth) < 0.99
    assert metrics.cc(shell_filter_oracle(m, truth, 1.0), truth) > 0.999
    noisy = m + np.random.default_rng(1).normal(0, m.std(), m.shape)
    _, cc_b = optimal_bfactor(noisy, truth, 1.0)
    cc_oracle = metrics.cc(shell_filter_oracle(noisy, truth, 1.0), truth)
    assert cc_oracle > cc_b + 0.01, (cc_oracle, cc_b)
    with pytest.raises(InputError):
        shell_filter_oracle(m, truth[:-1], 1.0)
    # a mask of ones fits the same weights as none
    everywhere = shell_filter_oracle(noisy, truth, 1.0, np.ones_like(m))
    np.testing.assert_allclose(everywhere, shell_filter_oracle(noisy, truth, 1.0), atol=1e-9)
