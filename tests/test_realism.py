"""The realism knobs of `data build`, each against an independent computation."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import EXAMPLES

from densitydiff import metrics
from densitydiff.data.build import (
    BuildConfig,
    Realism,
    _realistic_rotated,
    build_store,
    realism_from,
    realism_from_json,
)
from densitydiff.errors import InputError
from densitydiff.filters import soft_edge
from densitydiff.structures import centroid, read_structure


@pytest.fixture(scope="module")
def lysozyme():
    st = read_structure(EXAMPLES / "1aki.cif.gz")
    return st, centroid(st[0])


def _grids(lysozyme, seed=0, resolutions=(2.0, 4.0), **knobs):
    st, center = lysozyme
    cfg = BuildConfig(resolutions=resolutions, patch=16, realism=Realism(**knobs))
    return _realistic_rotated(st, center, np.eye(3), cfg, np.random.default_rng(seed))


def _gaussian_b(array, voxel, b):
    """exp(-B s^2 / 4) applied on the full FFT grid, written out here independently."""
    f = [np.fft.fftfreq(n, d=voxel) for n in array.shape]
    s2 = f[0][:, None, None] ** 2 + f[1][None, :, None] ** 2 + f[2][None, None, :] ** 2
    return np.fft.ifftn(np.fft.fftn(array) * np.exp(-b * s2 / 4)).real


def test_global_b_is_a_gaussian_b_factor_filter(lysozyme):
    grid, targets, inputs, record = _grids(lysozyme, global_b=(80.0, 80.0))
    assert record["global_b"] == 80.0
    expected = _gaussian_b(targets[2.0].astype(np.float64), 1.0, 80.0)
    inner = (slice(4, -4),) * 3  # the filter wraps around the box; gemmi's B does not
    np.testing.assert_allclose(  # to 0.3 % of the peak: gemmi's summation cut-off
        inputs[2.0][inner], expected[inner], atol=5e-3 * np.abs(expected).max()
    )
    assert metrics.cc(inputs[2.0], expected) > 0.9999
    assert not np.allclose(inputs[2.0], targets[2.0], atol=1e-2 * np.abs(expected).max())
    # a sampled B lies in its range and is recorded
    b = _grids(lysozyme, seed=3, global_b=(0.0, 150.0))[3]["global_b"]
    assert 0.0 <= b <= 150.0 and b not in (0.0, 80.0)


def test_noise_gives_a_half_map_fsc_crossing_at_the_input_resolution(lysozyme):
    knobs = dict(noise_snr=(10.0, 10.0))
    _, targets, half1, rec = _grids(lysozyme, seed=1, resolutions=(2.0, 3.0, 5.0), **knobs)
    _, _, half2, _ = _grids(lysozyme, seed=2, resolutions=(2.0, 3.0, 5.0), **knobs)
    assert rec["inputs"]["3"]["snr0"] == pytest.approx(10.0)
    for r in (3.0, 5.0):
        curve = metrics.fsc(half1[r].astype(np.float64), half2[r].astype(np.float64), 1.0)
        assert metrics.resolution_at(curve, 0.143) == pytest.approx(r, rel=0.08)
        # at low frequency the two draws agree as SNR / (1 + SNR) with SNR near 10
        low = (curve.frequencies > 0.05) & (curve.frequencies < 0.1)
        assert np.all(curve.fsc[low] > 0.75)
        assert not np.allclose(half1[r], half2[r])


def test_resolution_spread_gives_a_sharper_core_and_a_blurrier_periphery(lysozyme):
    st, center = lysozyme
    found = {}
    for spread in (0.0, 1.5):
        grid, targets, inputs, rec = _grids(lysozyme, resolution_spread=spread)
        rg = 13.96  # Å, 1aki's radius of gyration
        at = (np.asarray(center) - np.asarray(grid.origin)) / 1.0
        ax = [np.arange(n) - a for n, a in zip(grid.shape, at)]
        d = np.sqrt(
            ax[0][:, None, None] ** 2 + ax[1][None, :, None] ** 2 + ax[2][None, None, :] ** 2
        )
        for name, region in (("core", d < rg / 2 - 3), ("periphery", d > rg + 3)):
            curve = metrics.fsc(inputs[4.0].astype(np.float64), targets[2.0].astype(np.float64),
                                1.0, mask=soft_edge(region, 1.0, 3.0))  # fmt: skip
            found[spread, name] = metrics.resolution_at(curve, 0.5)
    assert found[1.5, "core"] == pytest.approx(4.0 - 1.5, abs=0.4)
    assert found[1.5, "periphery"] == pytest.approx(4.0 + 1.5, abs=0.6)
    gap0 = found[0.0, "periphery"] - found[0.0, "core"]
    gap = found[1.5, "periphery"] - found[1.5, "core"]
    assert gap - gap0 > 2.0  # the configured 3 Å between core and periphery, less mask blur


def test_mask_neighbours_and_voxel_knobs(lysozyme):
    grid, targets, inputs, rec = _grids(lysozyme, mask_width=4.0, mask_radius=5.0)
    from densitydiff.simulate.density import atom_mask

    st, center = lysozyme
    far = ~atom_mask(st, grid, 9.0 + 0.5, center=center, rotation=np.eye(3))
    assert np.all(inputs[4.0][far] == 0) and np.any(targets[4.0][far] != 0)
    near = atom_mask(st, grid, 5.0, center=center, rotation=np.eye(3))
    np.testing.assert_allclose(inputs[2.0][near], targets[2.0][near], atol=1e-5)
    # neighbours: copies at the box edge put density where the lone molecule has none
    _, t_n, i_n, rec = _grids(lysozyme, neighbours=2)
    assert len(rec["neighbours"]) == 2
    edge = np.zeros(grid.shape, bool)
    edge[:3], edge[-3:], edge[:, :3], edge[:, -3:], edge[:, :, :3], edge[:, :, -3:] = (True,) * 6
    assert np.abs(t_n[4.0][edge]).max() > 5 * np.abs(targets[4.0][edge]).max()
    np.testing.assert_allclose(i_n[4.0], t_n[4.0], atol=1e-3 * np.abs(t_n[4.0]).max())
    # voxel sizes: capped at r / 2 (the input resolution must fit the recorded grid)
    _, t_v, i_v, rec = _grids(lysozyme, voxel_range=(1.6, 1.6), resolutions=(2.0, 4.0))
    assert rec["inputs"]["4"]["voxel_size"] == 1.6 and rec["inputs"]["2"]["voxel_size"] == 1.0
    np.testing.assert_allclose(i_v[2.0], t_v[2.0], atol=1e-4 * np.abs(t_v[2.0]).max())
    # a 1.6 Å recording removes what lies beyond its Nyquist frequency (1 / 3.2 Å), keeps the rest
    from densitydiff.simulate.realism import resampled_through

    seen = resampled_through(t_v[2.0], 1.0, 1.6)
    curve = metrics.fsc(seen.astype(np.float64), t_v[2.0].astype(np.float64), 1.0)
    f = curve.frequencies
    assert np.all(curve.fsc[(f > 0.03) & (f < 0.28)] > 0.97)
    spectrum = np.abs(np.fft.rfftn(seen)) ** 2
    fz, fy = (np.abs(np.fft.fftfreq(n)) for n in seen.shape[:2])
    fx = np.fft.rfftfreq(seen.shape[2])
    top = np.maximum(np.maximum(fz[:, None, None], fy[None, :, None]), fx[None, None, :])
    # a grid holds the cube |s_i| <= 1 / (2 v) per axis: nothing beyond it on any axis
    assert spectrum[top > 0.33].sum() < 1e-3 * spectrum[top < 0.3].sum()


def test_postprocess_sharpens_an_input_by_its_own_guinier_b(lysozyme):
    """A post-processed input is the plain input with its Guinier fall-off (times the drawn
    scale) removed and a low-pass at r_in (the kernel itself: test_evaluate_inputs)."""
    from densitydiff.filters import guinier_bfactor, guinier_sharpen

    plain = _grids(lysozyme, global_b=(80.0, 80.0), resolutions=(2.0, 4.0))
    post = _grids(lysozyme, global_b=(80.0, 80.0), resolutions=(2.0, 4.0), postprocess=1.0)
    assert "postprocess_b" not in plain[3]["inputs"]["4"]
    b_before = guinier_bfactor(plain[2][4.0], 1.0, 4.0)
    assert b_before > 80  # the global B plus the 4 Å band limit's own fall-off
    expected, b = guinier_sharpen(plain[2][4.0], 1.0, 4.0)
    assert b == pytest.approx(b_before)
    assert post[3]["inputs"]["4"]["postprocess_b"] == pytest.approx(-b_before)
    np.testing.assert_allclose(post[2][4.0], expected, atol=1e-5 * np.abs(expected).max())
    # a drawn scale in [0.5, 1] removes that share of the fall-off
    half = _grids(lysozyme, seed=5, global_b=(80.0, 80.0), postprocess=1.0,
                  postprocess_scale=(0.5, 1.0))[3]["inputs"]["4"]["postprocess_b"]  # fmt: skip
    assert -b_before <= half <= -0.5 * b_before and half != pytest.approx(-b_before)
    for bad in (dict(postprocess=1.5), dict(postprocess=True), dict(postprocess_scale=(1, 0.5))):
        with pytest.raises(InputError):
            Realism(**bad)
    with pytest.raises(InputError):
        realism_from("realistic", ["postprocess_scale=2"])
    assert realism_from("realistic").postprocess == 0.5
    # off, it is recorded as before the knob existed (such stores resume); any preset takes it
    off = realism_from("realistic", ["postprocess=0"]).to_json()
    assert "postprocess" not in off and "postprocess_scale" not in off
    assert realism_from_json(off) == realism_from("realistic", ["postprocess=0"])
    assert realism_from("clean", ["postprocess=1"]).postprocess == 1.0
    pp = realism_from("realistic", ["postprocess=0.2", "postprocess_scale=0.2:0.4"])
    assert pp.postprocess == 0.2 and pp.postprocess_scale == (0.2, 0.4)


def test_realistic_build_is_deterministic_and_the_clean_preset_unchanged(tmp_path):
    realistic = realism_from("realistic")
    cfg = BuildConfig(resolutions=(2.0, 4.0), patch=16, patches_per_structure=2,
                      val_fraction=0, test_fraction=0, realism=realistic)  # fmt: skip
    files = [EXAMPLES / "1orc.pdb.gz"]
    import zarr

    arrays = []
    for name in ("a.zarr", "b.zarr"):
        build_store(files, tmp_path / name, cfg, progress=False, log=lambda _: None)
        g = zarr.open_group(tmp_path / name / "structures" / "1orc", mode="r")
        arrays.append({k: np.asarray(g[k]) for k in ("i2", "i4", "r2", "r4")})
        assert g.attrs["realism"][0]["global_b"] >= 0
    for k in arrays[0]:
        np.testing.assert_array_equal(arrays[0][k], arrays[1][k])
    assert not np.allclose(arrays[0]["i4"], arrays[0]["r4"], atol=0.1)
    from densitydiff.data import PatchDataset

    item = PatchDataset(tmp_path / "a.zarr", pairs=[(4.0, 2.0)], augment=False)[0]
    np.testing.assert_array_equal(item["input"][0].numpy(), arrays[0]["i4"][0].astype(np.float32))
    np.testing.assert_array_equal(item["target"][0].numpy(), arrays[0]["r2"][0].astype(np.float32))
    # resuming the same command keeps the store; the clean preset records no realism at all
    build_store(files, tmp_path / "a.zarr", cfg, progress=False, log=lambda _: None)
    assert "realism" not in BuildConfig().to_json()
    assert realism_from("clean").is_clean and realism_from("realistic").noise_snr == (2.0, 30.0)
    assert realism_from("realistic", ["global_b=10:20", "neighbours=0"]).global_b == (10.0, 20.0)
    for bad in (["nope=1"], ["global_b=5"], ["noise_snr=0.1:1"], ["neighbours=x"]):
        with pytest.raises(InputError):
            realism_from("realistic", bad)


def test_a_realistic_store_is_read_once_per_epoch(tmp_path, monkeypatch):
    """Each item reads the degraded input of r_in and the clean target of r_out: two chunks,
    also for r_in == r_out, and no chunk twice in an epoch."""
    from collections import Counter

    import torch

    from densitydiff.data import PatchDataset

    cfg = BuildConfig(resolutions=(2.0, 4.0), patch=16, patches_per_structure=4, val_fraction=0,
                      test_fraction=0, realism=Realism(noise_snr=(5.0, 5.0)))  # fmt: skip
    build_store([EXAMPLES / "1orc.pdb.gz"], tmp_path / "s.zarr", cfg, progress=False,
                log=lambda _: None)  # fmt: skip
    reads: Counter = Counter()
    real = PatchDataset._array

    class Counting:
        def __init__(self, arr, key):
            self.arr, self.key = arr, key

        def __getitem__(self, index):
            reads[(*self.key, int(index))] += 1
            return self.arr[index]

    def counted(self, sid, r, role="target"):
        return Counting(real(self, sid, r, role), (sid, r, role))

    monkeypatch.setattr(PatchDataset, "_array", counted)
    ds = PatchDataset(tmp_path / "s.zarr", augment=False)
    assert ds.degraded and len(ds) == 4
    torch.manual_seed(0)
    for i in range(len(ds)):
        item = ds[i]
        assert not torch.equal(item["input"], item["target"])  # noisy input, clean target
    assert max(reads.values()) == 1 and len(reads) == 2 * len(ds)
    assert {role for _, _, role, _ in reads} == {"input", "target"}
