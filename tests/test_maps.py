"""Map file I/O: axes, voxel size and origin as ChimeraX shows them; symmetry; bad files.

Reference files are written by hand with mrcfile (not our writer), so the reader is checked
against arrays and origins constructed independently.
"""

from __future__ import annotations

import gzip
import shutil
import warnings

import gemmi
import mrcfile
import numpy as np
import pytest
from conftest import EXAMPLES, TESTDATA

from densitydiff import DensityMap, read_map, write_map
from densitydiff.errors import InputError

CELL_5WKD = (50.347, 4.777, 14.746, 90.0, 101.73, 90.0)
GRID_5WKD = (90, 8, 30)  # grid points along a, b, c (MX, MY, MZ in the header)


def _write_by_hand(
    path,
    array_zyx,
    voxel_zyx,
    axes_crs,
    nstart_xyz=(0, 0, 0),
    origin_xyz=None,
    cell=None,
    ispg=1,
    mxyz=None,
):
    """Write `array_zyx` with mrcfile; file axes (section, row, column) = (MAPS, MAPR, MAPC)."""
    mapc, mapr, maps = axes_crs
    # array axis of spatial axis s (1=x, 2=y, 3=z) is 3 - s
    data = np.ascontiguousarray(array_zyx.transpose([3 - maps, 3 - mapr, 3 - mapc]))
    shape_xyz = array_zyx.shape[::-1]
    mxyz = shape_xyz if mxyz is None else mxyz
    with mrcfile.new(
        path, overwrite=True, compression="gzip" if str(path).endswith(".gz") else None
    ) as mrc:
        mrc.set_data(data.astype(np.float32))
        h = mrc.header
        h.mapc, h.mapr, h.maps = mapc, mapr, maps
        h.nxstart, h.nystart, h.nzstart = (nstart_xyz[a - 1] for a in axes_crs)  # NC/NR/NSSTART
        h.mx, h.my, h.mz = mxyz
        if cell is None:
            h.cella = tuple(float(n * v) for n, v in zip(mxyz, voxel_zyx[::-1]))
        else:
            h.cella, h.cellb = cell[:3], cell[3:]
        h.ispg = ispg
        h.origin = (0.0, 0.0, 0.0) if origin_xyz is None else origin_xyz


@pytest.mark.parametrize("axes_crs", [(1, 2, 3), (3, 2, 1), (2, 1, 3), (2, 3, 1)])
def test_axis_order_nstart_and_anisotropic_voxels_match_chimerax(tmp_path, axes_crs):
    rng = np.random.default_rng(0)
    array = rng.normal(size=(5, 7, 11)).astype(np.float32)  # z, y, x: non-cubic
    voxel = (1.5, 1.2, 0.9)  # z, y, x: anisotropic
    nstart_xyz = (3, -4, 7)
    path = tmp_path / "hand.mrc"
    _write_by_hand(path, array, voxel, axes_crs, nstart_xyz=nstart_xyz)
    m = read_map(path)
    np.testing.assert_array_equal(m.array, array)
    np.testing.assert_allclose(m.voxel_size, voxel, rtol=1e-6)
    # ChimeraX: origin = nstart (mapped through MAPC/MAPR/MAPS) * step
    expected = np.array(nstart_xyz[::-1]) * np.array(voxel)
    np.testing.assert_allclose(m.origin, expected, rtol=1e-6)
    assert not m.is_isotropic and not m.is_cubic and m.unit_cell is None
    with pytest.raises(InputError, match="isotropic"):
        m.require_isotropic("the FSC")


def test_nonzero_origin_field_wins_over_nstart_and_is_in_xyz_order(tmp_path):
    array = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    path = tmp_path / "o.mrc"
    _write_by_hand(
        path,
        array,
        (1.0, 2.0, 3.0),
        (3, 1, 2),
        nstart_xyz=(1, 2, 3),
        origin_xyz=(-10.5, 20.25, 7.0),
    )
    m = read_map(path)
    np.testing.assert_array_equal(m.array, array)
    np.testing.assert_allclose(m.origin, (7.0, 20.25, -10.5))


def test_unusable_origin_field_and_uninitialised_nstart_fall_back_like_chimerax(tmp_path):
    array = np.ones((4, 5, 6), np.float32)
    nan_origin = tmp_path / "nan.mrc"
    _write_by_hand(
        nan_origin,
        array,
        (2.0, 2.0, 2.0),
        (1, 2, 3),
        nstart_xyz=(1, 2, 3),
        origin_xyz=(np.nan, 0.0, 0.0),
    )
    np.testing.assert_allclose(read_map(nan_origin).origin, (6.0, 4.0, 2.0))
    huge_nstart = tmp_path / "huge.mrc"
    _write_by_hand(huge_nstart, array, (2.0, 2.0, 2.0), (1, 2, 3), nstart_xyz=(0, 0, 10**6))
    assert read_map(huge_nstart).origin == (0.0, 0.0, 0.0)


def test_packaged_emd_5168_monomer_has_its_header_geometry():
    m = read_map(EXAMPLES / "emd_5168_monomer.mrc")
    assert m.shape == (41, 43, 28)
    np.testing.assert_allclose(m.voxel_size, (1.742,) * 3, atol=1e-5)
    np.testing.assert_allclose(m.origin, (-90.584, -24.388, -33.098), atol=1e-3)
    assert m.unit_cell is None and m.is_orthogonal
    with mrcfile.open(EXAMPLES / "emd_5168_monomer.mrc") as mrc:  # file axes are x, y, z
        np.testing.assert_array_equal(m.array, mrc.data)


def test_packaged_emd_5168_box_is_the_deposited_map_around_its_model():
    """The real-map check's box: the deposited map's grid (100^3 from nstart -50 at 1.742 Å, so
    voxel corners at -87.1 + k * 1.742 Å), not zoned, with the 3MFP subunit inside it."""
    from densitydiff.structures import read_structure

    m = read_map(EXAMPLES / "emd_5168_subunit_box.mrc")
    assert m.shape == (48, 48, 36)
    np.testing.assert_allclose(m.voxel_size, (1.742,) * 3, atol=1e-5)
    k = (np.array(m.origin) + 87.1) / 1.742
    np.testing.assert_allclose(k, np.round(k), atol=1e-3)  # on the deposited grid
    assert np.mean(m.array == 0) < 0.01 and m.array.min() < 0  # solvent noise kept
    s = read_structure(EXAMPLES / "3mfp.pdb.gz")
    xyz = np.array([a.pos.tolist() for ch in s[0] for r in ch for a in r])[:, ::-1]  # z, y, x
    lo = np.array(m.origin)
    hi = lo + np.array(m.shape) * 1.742
    inside = np.all((xyz >= lo) & (xyz < hi), axis=1)
    assert inside.mean() > 0.97  # the deposited box itself cuts a few atoms at z < -87.1 Å


@pytest.mark.parametrize("name", ["m.mrc", "m.map", "m.ccp4", "m.mrc.gz", "m.map.gz"])
def test_round_trip_keeps_grid_and_sets_nstart_for_chimerax(tmp_path, name):
    rng = np.random.default_rng(1)
    voxel = (1.25, 0.8, 1.1)
    origin = (-3 * 1.25, 10 * 0.8, 7 * 1.1)  # whole voxels, so nstart can hold it
    m = DensityMap(rng.normal(size=(6, 9, 4)), voxel, origin)
    write_map(tmp_path / name, m)
    back = read_map(tmp_path / name)
    assert back.same_grid(m, atol=1e-5)
    np.testing.assert_array_equal(back.array, m.array)
    with mrcfile.open(tmp_path / name) as mrc:  # what ChimeraX reads in a .map: nstart * step
        nstart = np.array([mrc.header.nzstart, mrc.header.nystart, mrc.header.nxstart])
        np.testing.assert_allclose(nstart * np.array(voxel), origin, atol=1e-5)
        assert (mrc.header.mapc, mrc.header.mapr, mrc.header.maps) == (1, 2, 3)
    if name.endswith(".gz"):
        assert (tmp_path / name).read_bytes()[:2] == b"\x1f\x8b"


def test_fractional_origin_round_trips_in_mrc_and_warns_for_map(tmp_path):
    m = DensityMap(np.zeros((3, 4, 5)), 1.0, (0.25, -0.5, 1.75))
    write_map(tmp_path / "f.mrc", m)
    np.testing.assert_allclose(read_map(tmp_path / "f.mrc").origin, m.origin)
    with pytest.warns(UserWarning, match="ChimeraX ignores ORIGIN"):
        write_map(tmp_path / "f.map", m)


def test_mrcs_stack_sets_flag_and_reads_images_with_pixel_size(tmp_path):
    images = np.random.default_rng(2).normal(size=(7, 10, 12)).astype(np.float32)
    write_map(tmp_path / "s.mrcs", DensityMap(images, 1.31))
    with mrcfile.open(tmp_path / "s.mrcs") as mrc:
        assert mrc.is_image_stack() and int(mrc.header.ispg) == 0
    back = read_map(tmp_path / "s.mrcs")
    assert back.shape == (7, 10, 12)
    np.testing.assert_allclose(back.voxel_size, (1.31,) * 3, rtol=1e-6)
    np.testing.assert_array_equal(back.array, images)
    one = tmp_path / "one.mrcs"  # a one-image stack comes back (1, y, x) from mrcfile as 2-D
    with mrcfile.new(one) as mrc:
        mrc.set_data(images[:1])
        mrc.set_image_stack()
    assert read_map(one).shape == (1, 10, 12)


def test_crystallographic_map_covers_the_unit_cell(tmp_path):
    m = read_map(TESTDATA / "5wkd_2fofc.ccp4")
    gz = tmp_path / "5wkd.ccp4.gz"
    gz.write_bytes(gzip.compress((TESTDATA / "5wkd_2fofc.ccp4").read_bytes()))
    np.testing.assert_array_equal(read_map(gz).array, m.array)
    assert m.shape == GRID_5WKD[::-1]
    np.testing.assert_allclose(m.unit_cell, CELL_5WKD, atol=1e-3)
    np.testing.assert_allclose(m.voxel_size, np.array(CELL_5WKD[:3][::-1]) / GRID_5WKD[::-1])
    assert not m.is_orthogonal and not m.is_isotropic
    with pytest.raises(InputError, match="orthogonal"):
        m.require_orthogonal("simulate_map")


def _assert_c2_symmetric(array_wvu: np.ndarray) -> None:
    """Values at grid points related by the C 1 2 1 operators are equal."""
    n = np.array(GRID_5WKD)
    uvw = np.stack(np.meshgrid(*[np.arange(k) for k in n], indexing="ij"), -1).reshape(-1, 3)
    values = array_wvu.transpose(2, 1, 0)
    reference = values[uvw[:, 0], uvw[:, 1], uvw[:, 2]]
    ops = list(gemmi.SpaceGroup("C 1 2 1").operations())
    assert len(ops) == 4
    for op in ops:
        rot, tran = np.array(op.rot) / op.DEN, np.array(op.tran) / op.DEN
        mate = np.round(((uvw / n) @ rot.T + tran) * n).astype(int) % n
        np.testing.assert_allclose(values[mate[:, 0], mate[:, 1], mate[:, 2]], reference, atol=1e-5)


def test_partial_crystallographic_map_is_expanded_by_symmetry(tmp_path):
    """Crop a quarter cell (negative nstart, axes 3,1,2), write it by hand, expand, compare."""
    with mrcfile.open(TESTDATA / "5wkd_2fofc.ccp4") as mrc:  # axes 1,2,3: data is (w, v, u)
        assert (mrc.header.mapc, mrc.header.mapr, mrc.header.maps) == (1, 2, 3)
        full = np.array(mrc.data, dtype=np.float32)
    _assert_c2_symmetric(full)
    u_start, u_size = -22, 23  # u in [-22, 0]: with the 2-fold and centring, all of a
    crop = full[:, :, np.arange(u_start, u_start + u_size) % 90]
    path = tmp_path / "quarter.ccp4"
    _write_by_hand(
        path,
        crop,
        (1.0, 1.0, 1.0),
        (3, 1, 2),
        nstart_xyz=(u_start, 0, 0),
        cell=CELL_5WKD,
        ispg=5,
        mxyz=GRID_5WKD,
    )
    m = read_map(path)
    assert m.shape == full.shape
    np.testing.assert_allclose(m.array, full, atol=1e-5)
    _assert_c2_symmetric(m.array)
    assert m.origin == (0.0, 0.0, 0.0)


def test_crystallographic_map_not_covering_the_asymmetric_unit_is_an_error(tmp_path):
    with mrcfile.open(TESTDATA / "5wkd_2fofc.ccp4") as mrc:
        full = np.array(mrc.data, dtype=np.float32)
    path = tmp_path / "small.ccp4"
    _write_by_hand(
        path, full[:, :, :10], (1, 1, 1), (1, 2, 3), cell=CELL_5WKD, ispg=5, mxyz=GRID_5WKD
    )
    with pytest.raises(InputError, match="not covered"):
        read_map(path)


def test_non_orthogonal_cell_map_round_trips_as_p1(tmp_path):
    m = read_map(TESTDATA / "5wkd_2fofc.ccp4")
    write_map(tmp_path / "cell.ccp4", m)
    with mrcfile.open(tmp_path / "cell.ccp4") as mrc:
        assert int(mrc.header.ispg) == 1
        np.testing.assert_allclose(mrc.header.cellb.tolist(), CELL_5WKD[3:])
        assert (mrc.header.mx, mrc.header.my, mrc.header.mz) == GRID_5WKD
    back = read_map(tmp_path / "cell.ccp4")
    assert back.same_grid(m, atol=1e-5)
    np.testing.assert_allclose(back.unit_cell, CELL_5WKD, atol=1e-3)
    np.testing.assert_array_equal(back.array, m.array)
    with pytest.raises(InputError, match="non-orthogonal"):
        write_map(tmp_path / "bad.mrc", DensityMap(m.array, 0.7, unit_cell=m.unit_cell))


def _bad_files(tmp_path):
    """(path, words the error must contain) for each kind of broken map file."""
    real = (EXAMPLES / "emd_5168_monomer.mrc").read_bytes()
    files = {}
    half = tmp_path / "half.mrc"
    half.write_bytes(real[: len(real) // 2])
    files[half] = "not a readable"
    text = tmp_path / "text.mrc"
    text.write_text("this is a text file, not a map\n" * 50)
    files[text] = "not a readable"
    empty = tmp_path / "empty.map"
    empty.write_bytes(b"")
    files[empty] = "not a readable"
    gz = tmp_path / "broken.mrc.gz"
    gz.write_bytes(gzip.compress(real)[:5000])
    files[gz] = "not a readable"
    for name, value in (("nan.mrc", np.nan), ("inf.mrc", np.inf)):
        array = np.zeros((4, 4, 4), np.float32)
        array[1, 2, 3] = value
        with warnings.catch_warnings(), mrcfile.new(tmp_path / name) as mrc:
            warnings.simplefilter("ignore")  # mrcfile warns about the values we want written
            mrc.set_data(array)
        files[tmp_path / name] = "NaN or infinite"
    image = tmp_path / "image.mrc"
    with mrcfile.new(image) as mrc:
        mrc.set_data(np.zeros((8, 9), np.float32))
    files[image] = "2-D image"
    files[tmp_path / "missing.mrc"] = "no such file"
    files[tmp_path / "map.xyz"] = "unknown map format"
    (tmp_path / "map.xyz").write_bytes(real)
    return files


def test_bad_map_files_raise_one_line_input_errors(tmp_path):
    for path, words in _bad_files(tmp_path).items():
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no mrcfile warnings leak out either
            with pytest.raises(InputError, match=words) as info:
                read_map(path)
        assert "\n" not in str(info.value) and str(path) in str(info.value), path


def test_bad_map_files_via_cli_exit_2_with_one_stderr_line(cli, tmp_path):
    for path in _bad_files(tmp_path):
        code, out, err = cli("info", path)
        assert code == 2, path
        assert err.count("\n") == 1 and err.startswith("densitydiff: error:"), err
        assert "Traceback" not in err


def test_cli_info_shows_xyz_geometry_of_a_real_map(cli, tmp_path):
    shutil.copy(EXAMPLES / "emd_5168_monomer.mrc", tmp_path / "e.mrc.gz.src")
    with (
        open(tmp_path / "e.mrc.gz.src", "rb") as src,
        gzip.open(tmp_path / "e.mrc.gz", "wb") as dst,
    ):
        shutil.copyfileobj(src, dst)
    code, out, err = cli("info", tmp_path / "e.mrc.gz", "--json")
    assert code == 0, err
    assert '"shape_xyz": [28, 43, 41]' in out
    assert "-33.09" in out and "-90.58" in out


def test_mtz_options_on_a_map_file_are_an_error():
    with pytest.raises(InputError, match="MTZ files only"):
        read_map(EXAMPLES / "emd_5168_monomer.mrc", f="FP")
