"""Maps from MTZ amplitude/phase columns: the full cell, checked against a real map."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TESTDATA

from densitydiff import read_map
from densitydiff.errors import InputError
from densitydiff.formats.mtz import read_mtz_map

MTZ = TESTDATA / "5wkd_phases.mtz.gz"
CCP4 = TESTDATA / "5wkd_2fofc.ccp4"
CELL_5WKD = (50.347, 4.777, 14.746, 90.0, 101.73, 90.0)


def _cc(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_2fofc_from_mtz_matches_the_deposited_ccp4_map():
    """FWT/PHWT at sample rate 3 lands on the ccp4 map's grid (90, 8, 30) and agrees with it.

    Measured CC 1.0000 (the ccp4 file was computed from these columns): a wrong axis order,
    transpose or sampling gives CC near 0, so 0.999 is a meaningful bar.
    """
    expected = read_map(CCP4)
    m = read_map(MTZ)  # dispatch by extension, default FWT/PHWT
    assert m.same_grid(expected, atol=1e-6)
    np.testing.assert_allclose(m.unit_cell, CELL_5WKD, atol=1e-3)
    assert not m.is_orthogonal
    assert _cc(m.array, expected.array) > 0.999
    np.testing.assert_allclose(m.array, expected.array, atol=1e-3 * expected.array.std())
    # the model map correlates, the difference map does not: the columns are really used
    fc = read_map(MTZ, f="FC_ALL", phi="PHIC_ALL")
    difference = read_map(MTZ, f="DELFWT", phi="PHDELWT")
    assert 0.85 < _cc(fc.array, expected.array) < 0.99
    assert _cc(difference.array, expected.array) < 0.5


def test_sampling_by_rate_and_by_voxel_size():
    cell_xyz = np.array(CELL_5WKD[:3])
    fine = read_mtz_map(MTZ, sample_rate=4.0)
    d_min = 1.8024521344232056
    assert np.all(np.array(fine.voxel_size) <= d_min / 4 + 1e-9)
    np.testing.assert_allclose(np.array(fine.shape[::-1]) * fine.voxel_size[::-1], cell_xyz)
    m = read_mtz_map(MTZ, voxel_size=0.5)
    assert np.all(np.array(m.voxel_size) <= 0.5) and np.all(np.array(m.voxel_size) > 0.3)
    np.testing.assert_allclose(np.array(m.shape[::-1]) * m.voxel_size[::-1], cell_xyz)
    with pytest.raises(InputError, match="too coarse"):
        read_mtz_map(MTZ, voxel_size=2.0)


def test_bad_mtz_input_is_a_clear_error(tmp_path, cli):
    with pytest.raises(InputError, match="no column 'F_MISSING'.*FWT"):
        read_mtz_map(MTZ, f="F_MISSING")
    with pytest.raises(InputError, match="not phase"):
        read_mtz_map(MTZ, f="FWT", phi="FP")
    with pytest.raises(InputError, match="sample_rate"):
        read_mtz_map(MTZ, sample_rate=0.5)
    text = tmp_path / "text.mtz"
    text.write_text("not an mtz\n" * 20)
    with pytest.raises(InputError, match="not a readable MTZ"):
        read_map(text)
    code, out, err = cli("info", text)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
