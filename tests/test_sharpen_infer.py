"""Whole-map inference: tiles blend back exactly, geometry and scale survive, samples and clips.

References are independent of the tiling code: one network pass over the whole padded map,
the input itself for an identity model, numpy low-pass filters and correlations.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sharpen_pairs import PairDataset, blobs, make_pair

from densitydiff.errors import InputError
from densitydiff.maps import DensityMap
from densitydiff.sharpen.checkpoint import SharpenCheckpoint
from densitydiff.sharpen.config import load_config
from densitydiff.sharpen.infer import covers_unit_cell, sharpen_map
from densitydiff.sharpen.models import SharpeningModel, build_model

pytestmark = pytest.mark.usefixtures("one_thread")


class Identity(SharpeningModel):
    """A 'model' that returns its input: inference must then give back the input map."""

    def sharpen(self, inp, input_resolution=None, target_resolution=None, **_):
        return inp.clone()


def _sharpener(model, config, patch=16, voxel=1.0) -> SharpenCheckpoint:
    return SharpenCheckpoint(model.eval(), config, voxel, patch, "test")


def _tiny(kind="unet", **net):
    config = load_config("tiny", {"model": kind, "net": net} if net else {"model": kind})
    torch.manual_seed(0)
    return config, build_model(config)


def _local_unet():
    """Tiny 2-level U-Net with channel norm, no attention: local, receptive radius 25."""
    config, model = _tiny("unet", widths=[8, 16], norm="channel", attention_levels=[])
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.1)  # zero-initialised convs too
    return config, model


def test_exact_tiles_equal_one_pass_for_a_channel_norm_network():
    config, model = _local_unet()
    assert model.net.receptive_radius() == 25
    sharpener = _sharpener(model, config, patch=16)
    rng = np.random.default_rng(3)
    arr = (rng.normal(size=(16, 14, 18)) + 3).astype(np.float32)
    density = DensityMap(arr, 1.0, (1.0, 2.0, 3.0))
    common = dict(input_resolution=4.0, target_resolution=2.0, exact_tiles=True)
    tiled = sharpen_map(density, sharpener, tile=64, **common)
    assert tiled.info["margin"] == 26 and tiled.n_tiles == 8 and tiled.n_skipped == 0
    assert tiled.info["batch_size"] == 1  # 4 patches of 16³ hold fewer voxels than one 64³ tile
    untiled = sharpen_map(density, sharpener, tile=70, **common)
    assert untiled.n_tiles == 1
    scale = np.abs(untiled.mean.array).max()
    assert np.abs(tiled.mean.array - untiled.mean.array).max() <= 1e-4 * scale
    # and the untiled pass is the network on the padded map, done here by hand
    z = (arr - arr.mean()) / arr.std()
    padded = np.full((70, 70, 70), np.median(z[z < np.percentile(z, 50)]), np.float32)
    padded[26:42, 26:40, 26:44] = z
    with torch.no_grad():
        out = model(torch.from_numpy(padded)[None, None], torch.tensor([4.0]), torch.tensor([2.0]))
    expect = out[0, 0, 26:42, 26:40, 26:44].numpy() * arr.std() + arr.mean()
    assert np.abs(untiled.mean.array - expect).max() <= 1e-4 * scale
    # the fast default (one 64-voxel tile with margin 8, the map padded with the solvent fill
    # at another place than the exact pass) is not exact for this network
    fast = sharpen_map(density, sharpener, input_resolution=4.0, target_resolution=2.0,
                       solvent_threshold=None)  # fmt: skip
    assert np.abs(fast.mean.array - untiled.mean.array).max() > 1e-2 * scale


def test_local_networks_default_to_large_tiles_that_are_nearer_one_pass():
    """A local network gets 64-voxel tiles overlapping by two margins (2.4x the work of one
    pass instead of 8x), and that default is nearer the exact pass than training-size tiles."""
    config, model = _local_unet()
    sharpener = _sharpener(model, config, patch=16)
    rng = np.random.default_rng(4)
    arr = (rng.normal(size=(40, 36, 44)) + 3).astype(np.float32)
    density = DensityMap(arr, 1.0)
    common = dict(input_resolution=4.0, target_resolution=2.0, solvent_threshold=None)
    fast = sharpen_map(density, sharpener, **common)
    assert (fast.info["tile"], fast.info["stride"], fast.info["margin"]) == (64, 48, 8)
    patch_tiles = sharpen_map(density, sharpener, tile=16, overlap=8, **common)
    exact = sharpen_map(density, sharpener, tile=104, exact_tiles=True,
                        input_resolution=4.0, target_resolution=2.0)  # fmt: skip
    err_fast = np.abs(fast.mean.array - exact.mean.array).mean()
    err_patch = np.abs(patch_tiles.mean.array - exact.mean.array).mean()
    assert err_fast < 0.5 * err_patch
    # a network with tile-wide statistics keeps the training patch, half of it overlapping
    config, ddpm = _tiny("ddpm")
    other = sharpen_map(density, _sharpener(ddpm, config, patch=16), samples=1, **common)
    assert (other.info["tile"], other.info["stride"]) == (16, 8)


@pytest.mark.parametrize("kind, net", [("unet", {}), ("ddpm", {"norm": "channel"})])
def test_exact_tiles_are_refused_for_tile_wide_statistics_or_sampling(kind, net):
    config, model = _tiny(kind, **net)
    density = DensityMap(np.ones((8, 8, 8), np.float32), 1.0)
    with pytest.raises(InputError, match="exact tiles need a deterministic local network"):
        sharpen_map(density, _sharpener(model, config), input_resolution=4.0,
                    target_resolution=2.0, exact_tiles=True)  # fmt: skip


@pytest.mark.parametrize(
    "shape, voxel",
    [
        ((40, 24, 32), (1.0, 1.0, 1.0)),  # non-cubic, several tiles
        ((10, 12, 9), (1.0, 1.0, 1.0)),  # smaller than a tile: padded
        ((20, 30, 25), (1.2, 0.8, 1.6)),  # anisotropic: resampled to 1 Å and back
    ],
)
def test_identity_model_gives_back_the_input(shape, voxel):
    rng = np.random.default_rng(1)
    # band-limited well below every grid's Nyquist, then any scale and offset
    from sharpen_pairs import lowpass

    big = lowpass(blobs(64, rng, count=80, sigma=2.5), 1.0, 6.0)
    vol = big[: shape[0], : shape[1], : shape[2]] * 37.0 + 5.0
    if voxel != (1.0, 1.0, 1.0):  # periodic band-limited map on the anisotropic grid
        axes = [np.arange(n) * v for n, v in zip(shape, voxel)]
        ext = [n * v for n, v in zip(shape, voxel)]
        zz, yy, xx = np.meshgrid(*axes, indexing="ij")
        vol = 5.0 + 37.0 * (
            np.cos(2 * np.pi * zz / ext[0])
            + np.sin(2 * np.pi * 2 * yy / ext[1] + 0.3)
            + np.cos(2 * np.pi * (xx / ext[2] + zz / ext[0]))
        )
    density = DensityMap(vol.astype(np.float32), voxel, (-4.0, 2.5, 11.0))
    config, _ = _tiny()
    res = sharpen_map(
        density, _sharpener(Identity(), config), input_resolution=4, target_resolution=2
    )
    assert res.mean.same_grid(density) and res.mean.voxel_size == density.voxel_size
    err = np.abs(res.mean.array - density.array).max() / np.abs(density.array - 5).max()
    assert err < 1e-3, err
    assert res.std is None


def test_trained_model_output_lines_up_with_the_input():
    """A tiny regression U-Net trained for 40 steps: sharpened map low-passed to 4 Å ~ input."""
    from sharpen_pairs import lowpass

    config, model = _tiny("unet")
    data = PairDataset([make_pair(16, s) for s in range(4)])
    batch = {k: torch.stack([torch.as_tensor(data[i][k]) for i in range(4)]) for k in data[0]}
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(40):
        loss, _ = model.loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    vol = blobs(48, np.random.default_rng(7), count=120)
    inp = lowpass(vol, 1.0, 4.0)[:40, :48, :36]
    density = DensityMap((inp * 3.0 + 1.0).astype(np.float32), 1.0, (10.0, 20.0, 30.0))
    res = sharpen_map(density, _sharpener(model, config), input_resolution=4, target_resolution=2)
    out = res.mean.array
    low = lowpass(np.pad(out, ((0, 8), (0, 0), (0, 12))), 1.0, 4.0)[:40, :48, :36]
    ref = lowpass(np.pad(density.array, ((0, 8), (0, 0), (0, 12))), 1.0, 4.0)[:40, :48, :36]
    cc = np.corrcoef(low.ravel(), ref.ravel())[0, 1]
    assert cc > 0.9, cc
    # it sharpened: closer to the 2 Å truth than the input is (correlation)
    t2 = lowpass(vol, 1.0, 2.0)[:40, :48, :36]
    assert np.corrcoef(out.ravel(), t2.ravel())[0, 1] > np.corrcoef(inp.ravel(), t2.ravel())[0, 1]


def test_samples_give_mean_and_std_and_clip_holds():
    config, model = _tiny("ddpm")
    sharpener = _sharpener(model, config)
    vol = blobs(20, np.random.default_rng(3), count=30, sigma=1.5).astype(np.float32) * 4 + 2
    density = DensityMap(vol, 1.0, (0.0, 0.0, 0.0))
    kw = dict(input_resolution=4, target_resolution=2, sampler="ddim", steps=2)
    res = sharpen_map(density, sharpener, samples=3, clip_x0=(-0.5, 0.5), **kw)
    m, s = vol.mean(), vol.std()
    # every draw is clipped to [-0.5, 0.5] in z units (ddim's last step returns x0), blends too
    assert res.mean.array.min() >= m - 0.5 * s - 1e-3 and res.mean.array.max() <= m + 0.5 * s + 1e-3
    assert res.std is not None and res.std.same_grid(density)
    assert res.std.array.min() >= 0 and res.std.array.mean() > 0
    assert res.info["draws"] == 3
    again = sharpen_map(density, sharpener, samples=3, clip_x0=(-0.5, 0.5), **kw)
    assert np.array_equal(again.mean.array, res.mean.array)  # seeded
    other = sharpen_map(density, sharpener, samples=3, clip_x0=(-0.5, 0.5), seed=1, **kw)
    assert not np.array_equal(other.mean.array, res.mean.array)


def test_deterministic_model_with_samples_gives_zero_std():
    config, _ = _tiny()
    vol = blobs(16, np.random.default_rng(2)).astype(np.float32)
    res = sharpen_map(
        DensityMap(vol, 1.0),
        _sharpener(Identity(), config),
        input_resolution=4,
        target_resolution=2,
        samples=4,
    )
    assert res.info["draws"] == 1 and "deterministic" in res.info["note"]
    assert res.std is not None and np.all(res.std.array == 0)


def test_all_solvent_tiles_are_skipped_and_give_the_models_response_to_solvent():
    """An affine 'model' (2 z + 1): one skipped tile is run to fit the model's response to
    solvent, a z + b, and every other skipped tile goes through that fit without the model, so
    the whole output is 2 z + 1, as if every tile ran: no step where run and skipped tiles meet.
    """
    config, _ = _tiny()
    seen = []

    class Affine(Identity):
        def sharpen(self, inp, *a, **k):
            seen.append(inp.clone())
            return 2 * inp + 1

    vol = np.zeros((48, 16, 16), np.float32)
    vol[:12] = blobs(16, np.random.default_rng(4), count=20)[:12] * 10
    vol += np.random.default_rng(5).normal(0, 0.01, vol.shape).astype(np.float32)
    res = sharpen_map(
        DensityMap(vol, 1.0), _sharpener(Affine(), config), input_resolution=4, target_resolution=2
    )
    assert res.n_skipped > 1 and res.n_skipped < res.n_tiles
    mu, sd = res.info["input_mean"], res.info["input_std"]
    z = (vol - mu) / sd
    probes = [t for t in seen if float(t.max()) <= 1.0]
    assert len(probes) == 1  # one skipped tile ran, to fit the response; no other solvent tile
    assert sum(t.shape[0] for t in seen) == res.n_tiles - res.n_skipped + 1
    np.testing.assert_allclose(res.mean.array, (2 * z + 1) * sd + mu, atol=2e-3 * sd)


def test_orthogonal_unit_cell_map_is_periodic_and_keeps_its_cell():
    config, model = _local_unet()
    sharpener = _sharpener(model, config, patch=64)
    vol = blobs(20, np.random.default_rng(6), count=25, sigma=1.2)[:, :, :18].astype(np.float32)
    cell = (18 * 1.0, 20 * 1.0, 20 * 1.0, 90.0, 90.0, 90.0)  # a, b, c = x, y, z edges
    density = DensityMap(vol, 1.0, (0.0, 0.0, 0.0), cell)
    assert covers_unit_cell(density)
    res = sharpen_map(
        density,
        sharpener,
        input_resolution=4,
        target_resolution=2,
        tile=64,
        exact_tiles=True,
    )
    assert res.info["periodic"] and res.info["margin"] == 26 and res.mean.unit_cell == cell
    # reference: the network on the map wrapped around by 26 voxels on every side
    z = (vol - vol.mean()) / vol.std()
    wrapped = np.pad(z, [(26, 26 + (-(n + 52)) % 2) for n in z.shape], mode="wrap")
    with torch.no_grad():
        out = model(torch.from_numpy(wrapped)[None, None], torch.tensor([4.0]), torch.tensor([2.0]))
    expect = out[0, 0, 26:46, 26:46, 26:44].numpy() * vol.std() + vol.mean()
    assert np.abs(res.mean.array - expect).max() <= 1e-4 * np.abs(expect).max()
    skew = DensityMap(vol, 1.0, (0, 0, 0), (18.0, 20.0, 20.0, 90.0, 100.0, 90.0))
    with pytest.raises(InputError, match="orthogonal"):
        sharpen_map(skew, sharpener, input_resolution=4, target_resolution=2)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"target_resolution": 4.0}, "finer"),
        ({"input_resolution": -1.0}, "positive"),
        ({"samples": 0}, "at least 1"),
        ({"sampler": "euler"}, "unknown sampler"),
        ({"target_resolution": 1.5}, "Nyquist"),
        ({"device": "cuda"}, "CUDA"),
        ({"device": "tpu"}, "unknown device"),
    ],
)
def test_bad_arguments_raise_input_errors(change, message, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as on CI
    config, _ = _tiny()
    kw = dict(input_resolution=4.0, target_resolution=2.0) | change
    with pytest.raises(InputError, match=message):
        sharpen_map(
            DensityMap(np.random.rand(16, 16, 16), 1.0), _sharpener(Identity(), config), **kw
        )


def test_bad_maps_raise_input_errors():
    config, _ = _tiny()
    sharpener = _sharpener(Identity(), config)
    nan = np.ones((16, 16, 16), np.float32)
    nan[3, 3, 3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        sharpen_map(DensityMap(nan, 1.0), sharpener, input_resolution=4, target_resolution=2)
    with pytest.raises(InputError, match="too small"):
        sharpen_map(
            DensityMap(np.random.rand(16, 4, 16), 1.0),
            sharpener,
            input_resolution=4,
            target_resolution=2,
        )


def test_a_molecule_in_a_large_solvent_box_is_sharpened_as_in_its_own_box():
    """Real maps sit in boxes of mostly solvent; the training maps' box is the atoms plus a few
    Å. The packaged model must sharpen 1orc the same in a box 24 Å wider on each side as in its
    own: the z-score comes from the molecule's box (a whole-grid z-score more than doubles the
    density's z values here and costs 0.08 of CC_mask)."""
    from conftest import EXAMPLES

    from densitydiff.filters import zscore
    from densitydiff.sharpen.evaluate import resolve_sharpeners
    from densitydiff.sharpen.infer import normalise
    from densitydiff.simulate.density import atom_mask, simulate_map
    from densitydiff.structures import read_structure

    structure = read_structure(EXAMPLES / "1orc.pdb.gz")
    own = simulate_map(structure, 4.0, 1.0, padding=8.0, use_b_factors=True)
    k = 24
    shape = tuple(n + 2 * k for n in own.shape)
    big_grid = DensityMap(np.zeros(shape, np.float32), 1.0, tuple(o - k for o in own.origin))
    big = simulate_map(structure, 4.0, like=big_grid, use_b_factors=True)
    inner = tuple(slice(k, k + n) for n in own.shape)
    assert np.corrcoef(big.array[inner].ravel(), own.array.ravel())[0, 1] > 0.999  # same atoms

    # the scale the model sees: as the training store's whole-grid z-score of the own box
    _, (mean, std) = zscore(own.array)
    _, (big_mean, big_std) = normalise(big)
    assert abs(big_std / std - 1) < 0.1 and abs(big_mean - mean) < 0.1 * std
    assert big.array.std() < 0.5 * std  # what the whole big grid would have given

    model = resolve_sharpeners(["regression"])[0]
    kw = dict(input_resolution=4.0, target_resolution=2.0, tile=32)  # small tiles: some skip
    out_own = sharpen_map(own, model, **kw).mean.array
    result = sharpen_map(big, model, **kw)
    assert result.n_skipped > 0
    # solvent far from the atoms is flatter than the input's there: skipped tiles go through the
    # model's response to solvent (the input unshifted left steps: 1.4x the input's spread)
    far = ~atom_mask(structure, like=big, radius=8.0)
    spread = [x[far].std() / x.std() for x in (big.array, result.mean.array)]
    assert spread[1] < spread[0], spread
    out_big = result.mean.array[inner]
    truth = simulate_map(structure, 2.0, like=own).array
    mask = atom_mask(structure, like=own, radius=3.0)
    cc = [np.corrcoef(x[mask], truth[mask])[0, 1] for x in (own.array, out_own, out_big)]
    assert cc[1] > cc[0] + 0.1, cc  # the model sharpens
    assert abs(cc[2] - cc[1]) < 0.01, cc  # and does so in the big box too
    assert np.corrcoef(out_big[mask], out_own[mask])[0, 1] > 0.99


def test_skipping_solvent_tiles_matches_running_them_on_a_noisy_map():
    """Skipping all-solvent tiles is only a shortcut: on a noisy map in a large box (as real maps
    come) the packaged model's output must match running every tile. The model flattens noise in
    solvent; when skipped tiles kept the input (shifted to the model's level), their noise
    stayed, and on a held-out map in a 40 Å box the FSC with the truth at 123 Å fell from 0.98
    (input) to 0.79 (docs/sharpen.md, "Skip solvent")."""
    from conftest import EXAMPLES

    from densitydiff import metrics
    from densitydiff.sharpen.evaluate import resolve_sharpeners
    from densitydiff.simulate.density import atom_mask, simulate_map
    from densitydiff.simulate.realism import fsc_noise
    from densitydiff.structures import read_structure

    structure = read_structure(EXAMPLES / "1orc.pdb.gz")
    clean = simulate_map(structure, 4.0, 1.0, padding=30.0, use_b_factors=True)
    noise = fsc_noise(clean.array, 1.0, 4.0, 5.0, np.random.default_rng(0))
    noisy = clean.with_array((clean.array + noise).astype(np.float32))
    model = resolve_sharpeners(["regression"])[0]
    kw = dict(input_resolution=4.0, target_resolution=2.0, tile=32)
    skipped = sharpen_map(noisy, model, **kw)
    every = sharpen_map(noisy, model, solvent_threshold=None, **kw)
    assert skipped.n_skipped > skipped.n_tiles // 4 and every.n_skipped == 0
    a, b = skipped.mean.array, every.mean.array
    far = ~atom_mask(structure, like=clean, radius=10.0)
    assert (a - b)[far].std() < 0.2 * noisy.array[far].std()  # kept noise: about 0.7
    curve = metrics.fsc(a, b, 1.0)
    assert np.all(curve.fsc[1:6] > 0.99), curve.fsc[1:6]
