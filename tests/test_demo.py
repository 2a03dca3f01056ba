"""`densitydiff demo` with tiny random models: maps, std map, figures, table; missing models."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = pytest.mark.usefixtures("one_thread")


def test_demo_writes_maps_std_figures_and_the_table(cli, tmp_path):
    from tiny_models import export_tiny

    from densitydiff import metrics
    from densitydiff.formats.maps import read_map
    from densitydiff.sharpen.demo import DEMO_STRUCTURE, heldout_ids

    # the demo structure is one the packaged models never saw
    assert DEMO_STRUCTURE.split(".")[0] in heldout_ids()
    ddpm = export_tiny("ddpm", tmp_path)  # named tiny_ddpm
    unet = export_tiny("unet", tmp_path)
    out = tmp_path / "demo"
    code, stdout, err = cli(
        "demo", "-o", out, "-c", ddpm, "-c", unet, "--samples", "2", "--steps", "2"
    )
    assert code == 0, err
    for method in ("input", "bfactor", "tiny_ddpm", "tiny_unet"):
        assert any(line.split()[1:2] == [method] for line in stdout.splitlines()), method

    truth = read_map(out / "truth_2A.mrc")
    inp = read_map(out / "input_4A.mrc")
    for name in ("input_4A", "tiny_ddpm_2A", "tiny_unet_2A", "tiny_ddpm_std"):
        m = read_map(out / f"{name}.mrc")
        assert m.same_grid(truth), name
        assert np.all(np.isfinite(m.array)), name
    std = read_map(out / "tiny_ddpm_std.mrc").array
    assert std.min() >= 0 and std.max() > 0  # two different samples differ somewhere
    assert not (out / "tiny_unet_std.mrc").exists()  # a deterministic model has no std map
    # the 4 Å input against the 2 Å truth crosses FSC 0.5 near 4 Å
    curve = metrics.fsc(inp.array, truth.array, truth.voxel_size)
    assert 3.6 < metrics.resolution_at(curve, 0.5) < 4.4

    record = json.loads((out / "demo.json").read_text())
    assert [r["method"] for r in record["rows"]] == ["input", "bfactor", "tiny_ddpm", "tiny_unet"]
    assert record["rows"][0]["fsc_0.5"] == pytest.approx(metrics.resolution_at(curve, 0.5))
    for png in ("fsc_1orc.png", "slices_1orc.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    assert "data:image/png;base64," in (out / "report.html").read_text()
    assert record["files"]["tiny_ddpm std"] == "tiny_ddpm_std.mrc"


def test_demo_without_packaged_models_says_so_and_exits_2(cli, monkeypatch, tmp_path):
    import densitydiff.sharpen.checkpoint as checkpoint

    monkeypatch.setattr(checkpoint, "MODELS_DIR", tmp_path)
    code, out, err = cli("demo", "-o", tmp_path / "demo")
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "no refine model is installed" in err, err
    assert not (tmp_path / "demo").exists()
