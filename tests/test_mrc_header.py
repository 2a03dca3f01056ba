"""Output maps keep the input's MRC header, so every viewer places them on top of the input.

Checked with two independent readers: mrcfile (ORIGIN, as ChimeraX reads .mrc) and gemmi (nstart,
as Coot and CCP4 tools read it).
"""

from __future__ import annotations

import gemmi
import mrcfile
import numpy as np
import pytest

from densitydiff import DensityMap, read_map, write_map
from tests.conftest import EXAMPLES

EMD_5168_MONOMER = EXAMPLES / "emd_5168_monomer.mrc"  # nstart 0, ORIGIN != 0, ISPG 0

PLACE_FIELDS = ("nxstart", "nystart", "nzstart", "mapc", "mapr", "maps", "ispg", "mx", "my", "mz")


def _header(path):
    with mrcfile.open(path, permissive=False) as mrc:
        h = mrc.header
        fields = {name: int(h[name]) for name in PLACE_FIELDS}
        fields["origin"] = tuple(float(v) for v in h.origin.item())
        fields["cella"] = tuple(float(v) for v in h.cella.item())
        fields["cellb"] = tuple(float(v) for v in h.cellb.item())
        labels = [bytes(h.label[i]).rstrip() for i in range(int(h.nlabl))]
        return fields, labels, np.array(mrc.data)


def _gemmi_placement(path):
    """Where gemmi puts the map: start index per axis, axis order, cell, and the grid values."""
    ccp4 = gemmi.read_ccp4_map(str(path))
    start = tuple(ccp4.header_i32(i) for i in (5, 6, 7))
    axes = tuple(ccp4.header_i32(i) for i in (17, 18, 19))
    cell = ccp4.grid.unit_cell
    ccp4.setup(float("nan"))  # gemmi reorders the axes to x, y, z
    values = np.array(ccp4.grid, copy=True)
    return start, axes, (cell.a, cell.b, cell.c, cell.alpha, cell.beta, cell.gamma), values


def _assert_same_place(source, output, scale=2.0, shift=1.0):
    fields_in, labels_in, data_in = _header(source)
    fields_out, labels_out, data_out = _header(output)
    assert fields_out == fields_in
    assert labels_out[:-1] == labels_in
    assert labels_out[-1].startswith(b"densitydiff ")
    np.testing.assert_allclose(data_out, scale * data_in + shift, rtol=1e-6, atol=1e-5)
    start_in, axes_in, cell_in, values_in = _gemmi_placement(source)
    start_out, axes_out, cell_out, values_out = _gemmi_placement(output)
    assert (start_out, axes_out) == (start_in, axes_in)
    np.testing.assert_allclose(cell_out, cell_in, rtol=1e-6)
    np.testing.assert_allclose(values_out, scale * values_in + shift, rtol=1e-6, atol=1e-5)


def test_real_map_with_origin_and_nstart_0_comes_back_as_it_was(tmp_path):
    source = read_map(EMD_5168_MONOMER)
    out = write_map(tmp_path / "out.mrc", source.with_array(2.0 * source.array + 1.0))
    fields, _, _ = _header(out)
    assert (fields["nxstart"], fields["nystart"], fields["nzstart"]) == (0, 0, 0)
    assert fields["ispg"] == 0
    _assert_same_place(EMD_5168_MONOMER, out)
    again = read_map(out)
    assert again.same_grid(source)


def _permuted_map(path, ispg: int):
    """A map stored with MAPC/MAPR/MAPS = 2/3/1 (columns along y), nstart and ORIGIN set."""
    rng = np.random.default_rng(5)
    data = rng.normal(size=(5, 6, 7)).astype(np.float32)  # (sections, rows, columns)
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.header.ispg = ispg
        mrc.set_data(data)
        mrc.header.mapc, mrc.header.mapr, mrc.header.maps = 2, 3, 1
        # cell in x, y, z: columns (7) lie along y, rows (6) along z, sections (5) along x
        mrc.header.mx, mrc.header.my, mrc.header.mz = 5, 7, 6
        mrc.header.cella = (5 * 1.5, 7 * 1.5, 6 * 1.5)
        mrc.header.nxstart, mrc.header.nystart, mrc.header.nzstart = 3, -4, 11
        mrc.header.origin = (0.0, 0.0, 0.0)
        mrc.header.label[0] = b"made by the test"
        mrc.header.nlabl = 1
        mrc.update_header_stats()
    return data


@pytest.mark.parametrize("ispg", [0, 1])
def test_axis_order_nstart_and_space_group_are_kept(tmp_path, ispg):
    source_path = tmp_path / "permuted.mrc"
    _permuted_map(source_path, ispg)
    source = read_map(source_path)
    assert source.shape == (6, 7, 5)  # (z, y, x)
    out = write_map(tmp_path / "out.map", source.with_array(2.0 * source.array + 1.0))
    _assert_same_place(source_path, out)


def test_a_map_moved_off_the_source_grid_is_not_written_with_the_stale_header(tmp_path):
    source = read_map(EMD_5168_MONOMER)
    moved = DensityMap(
        source.array, source.voxel_size, np.add(source.origin, 10.0), None, source.header
    )
    out = read_map(write_map(tmp_path / "moved.mrc", moved))
    np.testing.assert_allclose(out.origin, np.add(source.origin, 10.0), atol=1e-3)
    _, labels, _ = _header(tmp_path / "moved.mrc")
    assert labels[0].startswith(b"Chimera") and labels[-1].startswith(b"densitydiff ")


def test_all_ten_labels_used_keeps_nine_and_adds_ours(tmp_path):
    path = tmp_path / "full.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(np.zeros((4, 4, 4), np.float32))
        mrc.voxel_size = 1.0  # a map without a voxel size is refused (docs/reliability.md)
        for i in range(10):
            mrc.header.label[i] = f"label {i}".encode()
        mrc.header.nlabl = 10
    m = read_map(path)
    write_map(tmp_path / "out.mrc", m.with_array(m.array + 1))
    _, labels, _ = _header(tmp_path / "out.mrc")
    assert labels[:9] == [f"label {i}".encode() for i in range(9)]
    assert len(labels) == 10 and labels[9].startswith(b"densitydiff ")


def test_simulate_map_like_a_map_keeps_that_maps_header(cli, tmp_path):
    out = tmp_path / "sim.mrc"
    code, _, err = cli(
        "simulate",
        "map",
        EXAMPLES / "3mfp.pdb.gz",
        "-o",
        out,
        "-r",
        "6.6",
        "--like",
        EMD_5168_MONOMER,
    )
    assert code == 0, err
    fields_in, labels_in, _ = _header(EMD_5168_MONOMER)
    fields_out, labels_out, _ = _header(out)
    assert fields_out == fields_in and labels_out[:-1] == labels_in
    assert _gemmi_placement(out)[:3] == _gemmi_placement(EMD_5168_MONOMER)[:3]


def test_sharpened_map_keeps_its_header(cli, tmp_path, one_thread):
    """The EMD-5168-monomer case (nstart 0, ORIGIN set, ISPG 0) on a 24^3 grid of 1 Å."""
    from densitydiff.filters import lowpass

    source = tmp_path / "in.mrc"
    data = lowpass(np.random.default_rng(0).normal(size=(24, 24, 24)), 1.0, 4.0)
    with mrcfile.new(source) as mrc:
        mrc.header.ispg = 0
        mrc.set_data(data.astype(np.float32))
        mrc.header.mz = 24  # a volume: 24 sections per cell edge (ISPG 0 as EMDB writes)
        mrc.voxel_size = 1.0
        mrc.header.origin = (-33.098, -24.388, -90.584)
        mrc.header.label[0] = b"Chimera 1.8"
        mrc.header.nlabl = 1
    out = tmp_path / "sharp.mrc"
    code, _, err = cli("sharpen", source, "-o", out, "--input-resolution", "4",
                       "--checkpoint", "unet")  # fmt: skip
    assert code == 0, err
    fields_in, labels_in, _ = _header(source)
    fields_out, labels_out, _ = _header(out)
    assert fields_in["ispg"] == 0 and fields_in["nxstart"] == 0
    assert fields_out == fields_in and labels_out[:-1] == labels_in
    assert _gemmi_placement(out)[:3] == _gemmi_placement(source)[:3]
