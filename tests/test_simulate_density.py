"""simulate_map vs analytic scattering factors, its FSC resolution convention and a real map."""

from __future__ import annotations

import gemmi
import numpy as np
import pytest

from densitydiff import DensityMap, InputError, read_map
from densitydiff.simulate import atom_mask, simulate_map
from densitydiff.structures import read_structure
from tests.conftest import EXAMPLES


def _one_atom(element: str, xyz) -> gemmi.Structure:
    st = gemmi.Structure()
    model, chain, res, atom = gemmi.Model("1"), gemmi.Chain("A"), gemmi.Residue(), gemmi.Atom()
    res.name = "UNL"
    atom.name, atom.element, atom.occ, atom.b_iso = element, gemmi.Element(element), 1.0, 30.0
    atom.pos = gemmi.Position(*xyz)
    res.add_atom(atom)
    chain.add_residue(res)
    model.add_chain(chain)
    st.add_model(model)
    return st


@pytest.mark.parametrize("scattering", ["electron", "xray"])
def test_single_atom_spectrum_is_the_scattering_factor(scattering):
    # anisotropic voxels, non-zero origin: F(s) must be f(s) exp(-2 pi i s.(r - origin)) x const
    xyz = (3.3, -1.7, 12.1)
    like = DensityMap(np.zeros((36, 40, 44), np.float32), (0.7, 0.6, 0.65), (-2.0, -14.0, -10.0))
    resolution = 2.5
    m = simulate_map(_one_atom("O", xyz), resolution, like=like, scattering=scattering)
    assert m.same_grid(like)
    coef = gemmi.Element("O").c4322 if scattering == "electron" else gemmi.Element("O").it92
    v = np.array(like.voxel_size)
    f = [np.fft.fftfreq(n, d) for n, d in zip(m.shape[:2], v[:2])] + [
        np.fft.rfftfreq(m.shape[2], v[2])
    ]
    sz, sy, sx = np.meshgrid(*f, indexing="ij")
    s2 = sz**2 + sy**2 + sx**2
    fs = sum(a * np.exp(-b * s2 / 4) for a, b in zip(coef.a, coef.b))  # B = 0: b-factors ignored
    if scattering == "xray":
        fs = fs + coef.c
    r = np.array(xyz[::-1]) - np.array(like.origin)
    expect = fs * np.exp(-2j * np.pi * (sz * r[0] + sy * r[1] + sx * r[2]))
    got = np.fft.rfftn(m.array.astype(np.float64))
    s = np.sqrt(s2)
    band = s < 0.6 / resolution  # well inside the pass band of the cosine edge
    ratio = got[band] / expect[band]
    scale = 1.0 / np.prod(v)  # density per A^3: the sum over voxels is f(0) / voxel volume
    np.testing.assert_allclose(ratio, scale, rtol=0.02, atol=0.02 * scale)
    # nothing beyond 1/r but what cropping the box to `like` leaks
    power = np.abs(got) ** 2
    assert power[s > 1 / resolution + 1e-9].sum() < 1e-3 * power.sum()


def _fsc_crossing(a: np.ndarray, b: np.ndarray, voxel: float) -> float:
    """Resolution (A) where the FSC of shells 1/(N v) wide first drops below 0.5 (interpolated)."""
    fa, fb = np.fft.rfftn(a.astype(np.float64)), np.fft.rfftn(b.astype(np.float64))
    f = [np.fft.fftfreq(n, voxel) for n in a.shape[:2]] + [np.fft.rfftfreq(a.shape[2], voxel)]
    sz, sy, sx = np.meshgrid(*f, indexing="ij")
    step = 1.0 / (max(a.shape) * voxel)
    shell = np.rint(np.sqrt(sz**2 + sy**2 + sx**2) / step).astype(int).ravel()
    num = np.bincount(shell, (fa * fb.conj()).real.ravel())
    den = np.sqrt(
        np.bincount(shell, (np.abs(fa) ** 2).ravel())
        * np.bincount(shell, (np.abs(fb) ** 2).ravel())
    )
    fsc = num / np.maximum(den, 1e-300)
    i = int(np.nonzero(fsc[1:] < 0.5)[0][0]) + 1
    freq = (i - 1 + (fsc[i - 1] - 0.5) / (fsc[i - 1] - fsc[i])) * step
    return 1.0 / freq


@pytest.fixture(scope="module")
def small_structure():
    return read_structure(EXAMPLES / "1orc.pdb.gz")


@pytest.mark.parametrize("kind", ["cosine", "hard"])
def test_fsc_against_high_resolution_crosses_half_at_the_resolution(small_structure, kind):
    voxel = 0.6
    ref = simulate_map(small_structure, 1.5, voxel, padding=6.0, lowpass_kind=kind)
    for resolution in (2.0, 3.0, 4.0):
        m = simulate_map(small_structure, resolution, like=ref, lowpass_kind=kind)
        crossing = _fsc_crossing(m.array, ref.array, voxel)
        assert abs(crossing - resolution) < 0.3, (kind, resolution, crossing)


def test_model_lines_up_with_the_real_map():
    st = read_structure(EXAMPLES / "3mfp.pdb.gz")
    real = read_map(EXAMPLES / "emd_5168_monomer.mrc")
    mask = atom_mask(st, real, 3.0)
    assert 0.1 < mask.mean() < 0.5
    sim = simulate_map(st, 6.6, like=real)
    assert sim.same_grid(real)
    cc_mask = np.corrcoef(sim.array[mask], real.array[mask])[0, 1]
    assert cc_mask > 0.5
    # without the header origin the model misses the map
    shifted = DensityMap(real.array, real.voxel_size, (0.0, 0.0, 0.0))
    off = simulate_map(st, 6.6, like=shifted)
    assert np.abs(off.array).max() < 1e-3 * np.abs(sim.array).max() or (
        np.corrcoef(off.array.ravel(), real.array.ravel())[0, 1] < 0.2
    )


def test_atom_mask_matches_brute_force(small_structure):
    like = DensityMap(np.zeros((20, 22, 24), np.float32), (1.5, 1.2, 1.0), (0.0, 20.0, 5.0))
    mask = atom_mask(small_structure, like, 2.5)
    pos = np.array([[c.atom.pos.z, c.atom.pos.y, c.atom.pos.x] for c in small_structure[0].all()])
    grid = np.stack(
        np.meshgrid(
            *[o + np.arange(n) * v for o, n, v in zip(like.origin, like.shape, like.voxel_size)],
            indexing="ij",
        ),
        -1,
    ).reshape(-1, 3)
    d2 = ((grid[:, None, :] - pos[None, ::1, :]) ** 2).sum(-1).min(1)
    np.testing.assert_array_equal(mask.ravel(), d2 <= 2.5**2)
    assert 0 < mask.sum() < mask.size


def test_box_shape_center_and_rotation(small_structure):
    pos = np.array([[c.atom.pos.z, c.atom.pos.y, c.atom.pos.x] for c in small_structure[0].all()])
    default = simulate_map(small_structure, 4.0, 1.0, padding=7.0)
    np.testing.assert_allclose(default.origin, pos.min(0) - 7.0, atol=1e-4)
    assert np.all(np.array(default.origin) + (np.array(default.shape) - 1) >= pos.max(0) + 7.0)
    center = pos.mean(0)
    box = simulate_map(small_structure, 4.0, 1.0, shape=49)
    assert box.shape == (49, 49, 49)
    np.testing.assert_allclose(np.array(box.origin) + 24.0, center, atol=1e-4)
    # density-weighted centre of mass close to the atoms' centroid
    w = np.clip(box.array, 0, None)
    com = [np.sum(w * idx) / w.sum() for idx in np.indices(box.shape)]
    assert np.allclose(np.array(box.origin) + np.array(com), center, atol=1.0)
    # a quarter turn in the y-x plane about the centre: (z, y, x) -> (z, -x, y)
    quarter = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])
    turned = simulate_map(small_structure, 4.0, 1.0, shape=49, rotation=quarter)
    np.testing.assert_allclose(
        turned.array, np.rot90(box.array, 1, axes=(1, 2)), atol=2e-3 * box.array.max()
    )


def test_bad_inputs(small_structure, tmp_path):
    for res in (0.0, -3.0, float("nan"), "x"):
        with pytest.raises(InputError, match="resolution"):
            simulate_map(small_structure, res)
    for v in (0.0, -1.0, (1.0, 0.0, 1.0)):
        with pytest.raises(InputError, match="voxel_size"):
            simulate_map(small_structure, 4.0, v)
    with pytest.raises(InputError, match="scattering"):
        simulate_map(small_structure, 4.0, scattering="neutron")
    with pytest.raises(InputError, match="rotation"):
        simulate_map(small_structure, 4.0, rotation=np.eye(3) * 2)
    with pytest.raises(InputError, match="no such"):
        simulate_map(tmp_path / "missing.pdb", 4.0)
    with pytest.raises(InputError, match="unknown element"):
        simulate_map(_one_atom("X", (0, 0, 0)), 4.0)


def test_a_path_gives_the_same_map_as_a_loaded_structure():
    # gemmi elements used to outlive the structure read from a path: maps changed call to call.
    path = EXAMPLES / "1orc.pdb.gz"
    from densitydiff.structures import read_structure

    expected = simulate_map(read_structure(path), 4.0, 1.5).array
    for _ in range(3):
        np.testing.assert_array_equal(simulate_map(path, 4.0, 1.5).array, expected)
