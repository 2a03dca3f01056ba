"""The map commands end to end: simulate map, fsc, compare, and their bad-input behaviour."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from densitydiff import DensityMap, read_map, write_map
from tests.conftest import EXAMPLES

MODEL = EXAMPLES / "3mfp.pdb.gz"
EMD = EXAMPLES / "emd_5168_monomer.mrc"


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    """3mfp at 4 Å and 3 Å (Nyquist of 1.5 Å voxels) on one grid, written with the CLI."""
    out = tmp_path_factory.mktemp("sim")
    from densitydiff.cli import main

    assert (
        main(
            [
                "simulate",
                "map",
                str(MODEL),
                "-o",
                str(out / "fine.mrc"),
                "-r",
                "3",  # Nyquist of 1.5 Å voxels: finer is refused
                "--voxel-size",
                "1.5",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "simulate",
                "map",
                str(MODEL),
                "-o",
                str(out / "coarse.mrc"),
                "-r",
                "4",
                "--like",
                str(out / "fine.mrc"),
            ]
        )
        == 0
    )
    return out


def test_simulate_map_keeps_the_like_grid(simulated):
    fine, coarse = read_map(simulated / "fine.mrc"), read_map(simulated / "coarse.mrc")
    assert coarse.same_grid(fine)
    assert fine.voxel_size == pytest.approx((1.5, 1.5, 1.5))


def test_fsc_json_reports_the_keys_and_identical_maps_give_one(cli, simulated):
    code, out, err = cli("fsc", simulated / "fine.mrc", simulated / "fine.mrc", "--json")
    assert code == 0, err
    record = json.loads(out)
    assert {"fsc_0.5", "fsc_0.143", "fsc_auc", "frequencies", "fsc"} <= set(record)
    np.testing.assert_allclose(record["fsc"][1:], 1.0, atol=1e-6)
    assert record["fsc_auc"] == pytest.approx(1.0, abs=1e-6)


def test_fsc_of_4A_against_2A_crosses_near_4A(cli, simulated, tmp_path):
    plot = tmp_path / "fsc.png"
    code, out, err = cli(
        "fsc", simulated / "coarse.mrc", simulated / "fine.mrc", "--json", "--plot", plot
    )
    assert code == 0, err
    assert 3.5 < json.loads(out)["fsc_0.5"] < 4.5
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_fsc_refuses_different_grids_unless_resample(cli, simulated, tmp_path):
    fine = read_map(simulated / "fine.mrc")
    shifted = DensityMap(fine.array, fine.voxel_size, np.add(fine.origin, 3.0))
    write_map(tmp_path / "shifted.mrc", shifted)
    code, out, err = cli("fsc", simulated / "fine.mrc", tmp_path / "shifted.mrc")
    assert code == 2 and "different grids" in err and err.count("\n") == 1
    code, out, err = cli(
        "fsc", simulated / "fine.mrc", tmp_path / "shifted.mrc", "--resample", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["fsc_0.5"] > 0  # shifted by 2 voxels: correlated but not identical


def test_compare_real_map_against_its_model(cli):
    code, out, err = cli("compare", EMD, MODEL, "--resolution", "6", "--json")
    assert code == 0, err
    record = json.loads(out)
    assert set(record) >= {"fsc_0.5", "fsc_0.143", "fsc_auc", "psnr", "ssim", "cc_box", "cc_mask"}
    assert record["cc_mask"] > 0.5


def test_compare_two_maps_with_model_mask(cli, simulated):
    code, out, err = cli(
        "compare", simulated / "coarse.mrc", simulated / "fine.mrc", "--model", MODEL, "--json"
    )
    assert code == 0, err
    record = json.loads(out)
    assert 0.5 < record["cc_mask"] <= 1.0 and 0.5 < record["cc_box"] <= 1.0


@pytest.mark.parametrize("resolution", ["-4", "0"])
def test_bad_resolution_writes_nothing(cli, tmp_path, resolution):
    out = tmp_path / "out.mrc"
    code, _, err = cli("simulate", "map", MODEL, "-o", out, "--resolution", resolution)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_structure_without_atoms_is_refused(cli, tmp_path):
    empty = tmp_path / "empty.pdb"
    empty.write_text("HEADER    EMPTY\nEND\n")
    code, _, err = cli("simulate", "map", empty, "-o", tmp_path / "o.mrc", "-r", "4")
    assert code == 2 and err.count("\n") == 1
    assert not (tmp_path / "o.mrc").exists()


def test_nan_map_and_truncated_map_are_refused(cli, tmp_path):
    nan = np.zeros((8, 8, 8), np.float32)
    nan[1, 2, 3] = np.nan
    import mrcfile

    with mrcfile.new(tmp_path / "nan.mrc") as mrc:
        mrc.set_data(nan)
    data = EMD.read_bytes()
    (tmp_path / "cut.mrc").write_bytes(data[: len(data) // 2])
    (tmp_path / "cut.mrc.gz").write_bytes(gzip.compress(data[: len(data) // 2]))
    for name in ("nan.mrc", "cut.mrc", "cut.mrc.gz"):
        code, _, err = cli("fsc", tmp_path / name, EMD)
        assert code == 2 and err.count("\n") == 1, (name, err)


def test_force_field_elements_are_refused_with_the_fix_named(cli, tmp_path):
    # A force-field style PDB: the alpha carbon "CA" carries element Ca (calcium).
    line = "ATOM      1  CA  ALA A   1      11.000  12.000  13.000  1.00 10.00          CA\n"
    bad = tmp_path / "ff.pdb"
    bad.write_text(line + "END\n")
    code, _, err = cli("simulate", "map", bad, "-o", tmp_path / "o.mrc", "-r", "4")
    assert code == 2 and err.count("\n") == 1
    assert "calcium" in err.lower() or "element" in err.lower()
    assert not (tmp_path / "o.mrc").exists()


def test_fix_elements_repairs_blank_element_columns(cli, tmp_path):
    # Real files (3so6 and others in the PDB set) leave columns 77-78 blank on some atoms.
    lines = [
        "ATOM      1  N   ALA A   1      11.000  12.000  13.000  1.00 10.00\n",
        "ATOM      2  CA  ALA A   1      12.400  12.000  13.000  1.00 10.00\n",
        "ATOM      3  SD  MET A   2      14.000  13.000  13.000  1.00 10.00\n",
    ]
    blank = tmp_path / "blank.pdb"
    blank.write_text("".join(lines) + "END\n")
    code, _, err = cli("simulate", "map", blank, "-o", tmp_path / "o.mrc", "-r", "4")
    assert code == 2 and "--fix-elements" in err
    code, _, err = cli("simulate", "map", blank, "-o", tmp_path / "o.mrc", "-r", "4",
                       "--fix-elements")  # fmt: skip
    assert code == 0, err
    from densitydiff.structures import read_structure

    st = read_structure(blank, fix_elements=True)
    assert [a.element.name for a in st[0][0][0]] + [st[0][0][1][0].element.name] == [
        "N", "C", "S"
    ]  # fmt: skip
