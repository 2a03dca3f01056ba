"""The patch store: split by structure, aligned patches, resume, shards, info, bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import zarr

from densitydiff.data import layout
from densitydiff.data.build import BuildConfig, build_store, merge_stores
from densitydiff.data.layout import (
    array_name,
    complete_structures,
    is_complete,
    read_root,
    store_info,
)
from densitydiff.data.splits import assign_splits
from densitydiff.errors import InputError
from tests.conftest import EXAMPLES

STRUCTURES = [EXAMPLES / "1orc.pdb.gz", EXAMPLES / "1aki.cif.gz", EXAMPLES / "3mfp.pdb.gz"]
IDS = ["1aki", "1orc", "3mfp"]
CONFIG = BuildConfig(
    resolutions=(3.0, 6.0),
    voxel_size=1.5,
    patch=24,
    patches_per_structure=4,
    rotations=2,
    seed=7,
    val_fraction=1 / 3,
    test_fraction=1 / 3,
)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """An uninterrupted build of the 3 example structures (the reference store)."""
    out = tmp_path_factory.mktemp("ref") / "ref.zarr"
    build_store(STRUCTURES, out, CONFIG, progress=False, log=lambda _: None)
    return out


def _snapshot(path: Path) -> dict:
    """Everything a store holds: root attrs, and per structure its attrs and decoded arrays."""
    root = zarr.open_group(path, mode="r")
    out = {"root": dict(root.attrs)}
    for sid in sorted(root["structures"].group_keys()):
        g = root["structures"][sid]
        out[sid] = {"attrs": dict(g.attrs)}
        for name in sorted(g.array_keys()):
            out[sid][name] = g[name][...]
    return out


def _assert_same_store(a: Path, b: Path, ignore_root=("shard",)) -> None:
    sa, sb = _snapshot(a), _snapshot(b)
    ra, rb = (dict(s["root"]["densitydiff"]) for s in (sa, sb))
    for key in ignore_root:
        ra.pop(key), rb.pop(key)
    assert ra == rb
    assert set(sa) == set(sb)
    for sid in set(sa) - {"root"}:
        assert sa[sid]["attrs"] == sb[sid]["attrs"], sid
        for name, arr in sa[sid].items():
            if name != "attrs":
                assert arr.dtype == sb[sid][name].dtype
                assert np.array_equal(arr, sb[sid][name]), (sid, name)


def _fsc(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """FSC per integer shell k (k = 0 .. n/2) of two cubes, straight from its definition."""
    fa, fb = np.fft.fftn(a), np.fft.fftn(b)
    n = a.shape[0]
    k = np.fft.fftfreq(n) * n
    radius = np.sqrt(k[:, None, None] ** 2 + k[None, :, None] ** 2 + k[None, None, :] ** 2)
    shell = np.round(radius).astype(int)
    out = []
    for s in range(n // 2 + 1):
        m = shell == s
        num = np.real(np.sum(fa[m] * np.conj(fb[m])))
        den = np.sqrt(np.sum(np.abs(fa[m]) ** 2) * np.sum(np.abs(fb[m]) ** 2))
        out.append(num / den)
    return np.array(out)


def _lowpass(a: np.ndarray, voxel: float, resolution: float) -> np.ndarray:
    """Keep Fourier components with |s| < 1/resolution (a hard sphere)."""
    s = np.sqrt(sum(np.meshgrid(*[np.fft.fftfreq(n, voxel) ** 2 for n in a.shape], indexing="ij")))
    return np.real(np.fft.ifftn(np.fft.fftn(a) * (s < 1 / resolution)))


def test_store_layout_and_metadata(built):
    meta = read_root(built)
    assert meta["resolutions"] == [3.0, 6.0] and meta["patch"] == 24
    assert meta["voxel_size"] == 1.5 and meta["dtype"] == "float16"
    assert meta["pairs"] == [[3.0, 3.0], [6.0, 3.0], [6.0, 6.0]]
    assert meta["build"]["seed"] == 7 and meta["version"]
    done = complete_structures(built)
    assert sorted(done) == IDS
    for sid, attrs in done.items():
        n = attrs["n_patches"]
        assert n == 4 and len(attrs["patch_origin"]) == n and len(attrs["rotations"]) == 2
        for k, rot in enumerate(attrs["rotations"]):  # proper rotations, recorded per grid
            r = np.array(rot)
            assert np.allclose(r @ r.T, np.eye(3), atol=1e-9) and np.linalg.det(r) > 0
            for res in ("3", "6"):
                mean, std = attrs["stats"][res][k]
                assert std > 0
        for r in (3.0, 6.0):
            a = zarr.open_array(built / "structures" / sid / array_name(r), mode="r")
            assert a.shape == (n, 24, 24, 24) and a.chunks == (1, 24, 24, 24)
            assert str(a.dtype) == "float16"


def test_split_is_by_structure(built):
    split = read_root(built)["split"]
    assert sorted(split) == IDS
    assert sorted(split.values()) == ["test", "train", "val"]  # one each for 3 structures
    info = store_info(built)
    assert sum(s["structures"] for s in info["splits"].values()) == 3
    # the same ids and seed give the same split whatever the order; held-out go to test
    assert assign_splits(IDS[::-1], 7, 1 / 3, 1 / 3) == split
    ids = [f"s{k}" for k in range(50)]
    held = assign_splits(ids, 3, 0.1, 0.2, held_out=["s4", "s9"])
    assert held["s4"] == held["s9"] == "test"
    assert sorted(held.values()).count("test") == 10 and list(held.values()).count("val") == 5
    with pytest.raises(InputError, match="not given"):
        assign_splits(ids, 3, 0.1, 0.1, held_out=["nope"])


def test_patches_are_aligned_across_resolutions(built):
    """FSC(low-pass of the 3 Å target to 6 Å, the 6 Å input) ~ 1 below 1/6 Å^-1.

    Both patches are apodised with the same Hann window (cut-out boxes are not periodic).
    """
    voxel, p = 1.5, 24
    shells = [k for k in range(1, p // 2 + 1) if k / (p * voxel) <= 0.8 / 6.0]  # k = 1..4
    assert shells == [1, 2, 3, 4]
    w = np.hanning(p + 2)[1:-1]
    window = w[:, None, None] * w[None, :, None] * w[None, None, :]
    for sid in IDS:
        group = zarr.open_group(built / "structures" / sid, mode="r")
        target, inp = group["r3"][...].astype(float), group["r6"][...].astype(float)
        for t, x in zip(target, inp):
            curve = _fsc(_lowpass(t, voxel, 6.0) * window, x * window)
            assert curve[shells].min() > 0.99, (sid, curve)
            # the criterion catches a one-voxel misalignment
            moved = _fsc(_lowpass(np.roll(t, 1, axis=0), voxel, 6.0) * window, x * window)
            assert moved[shells].min() < 0.95, (sid, moved)


def test_patches_match_an_independent_simulation(built):
    """A stored patch, un-normalised, is the crop of simulate_map at the recorded pose."""
    from densitydiff.maps import DensityMap
    from densitydiff.simulate.density import simulate_map
    from densitydiff.structures import read_structure

    attrs = complete_structures(built)["1aki"]
    st = read_structure(EXAMPLES / "1aki.cif.gz")
    group = zarr.open_group(built / "structures" / "1aki", mode="r")
    for j in (0, attrs["n_patches"] - 1):
        k = attrs["patch_rotation"][j]
        grid = attrs["grids"][k]
        like = DensityMap(np.zeros(grid["shape"], np.float32), grid["voxel_size"], grid["origin"])
        o = attrs["patch_origin"][j]
        sl = tuple(slice(c, c + 24) for c in o)
        for r in (3.0, 6.0):
            raw = simulate_map(
                st, r, like=like, center=attrs["center"], rotation=attrs["rotations"][k]
            )
            mean, std = attrs["stats"][f"{r:g}"][k]
            assert mean == pytest.approx(raw.array.mean(), rel=1e-4, abs=1e-6)
            assert std == pytest.approx(raw.array.std(), rel=1e-4)
            stored = group[array_name(r)][j].astype(float) * std + mean
            assert np.allclose(
                stored, raw.array[sl], atol=2e-3 * std + 1e-3 * np.abs(raw.array[sl]).max()
            )
        # the patch holds density, not solvent
        z = group["r6"][j].astype(float)  # the coarsest map decides what is density
        assert (z > CONFIG.threshold).mean() >= CONFIG.min_fraction


def test_resume_after_crash_equals_uninterrupted_build(built, tmp_path, monkeypatch):
    out = tmp_path / "crash.zarr"
    real = layout._mark_complete
    calls = []

    def crash_on_second(group, record):
        calls.append(record["structure_id"])
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed after the chunks, before the marker
        real(group, record)

    monkeypatch.setattr(layout, "_mark_complete", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        build_store(STRUCTURES, out, CONFIG, progress=False, log=lambda _: None)
    monkeypatch.setattr(layout, "_mark_complete", real)
    first, second = calls
    assert is_complete(out, first) and not is_complete(out, second)
    assert (out / "structures" / second / "r3").exists()  # a half-written structure is there
    lines = []
    summary = build_store(STRUCTURES, out, CONFIG, progress=False, log=lines.append)
    assert summary.already_complete == [first]
    assert sorted(summary.built) == sorted(set(IDS) - {first})
    assert "1 were already complete" in lines[0]
    _assert_same_store(built, out)


def test_shards_merge_and_workers_give_the_same_store(built, tmp_path, cli):
    parts = []
    for i in range(2):
        part = tmp_path / f"part{i}.zarr"
        build_store(STRUCTURES, part, CONFIG, shard=(i, 2), progress=False, log=lambda _: None)
        parts.append(part)
    assert sorted(complete_structures(parts[0])) == ["1aki", "3mfp"]  # every 2nd of sorted ids
    assert sorted(complete_structures(parts[1])) == ["1orc"]
    code, out, err = cli("data", "merge", *parts, "-o", tmp_path / "merged.zarr")
    assert code == 0, err
    _assert_same_store(built, tmp_path / "merged.zarr")
    assert read_root(tmp_path / "merged.zarr")["shard"] is None
    # two spawned worker processes, structures finishing in any order: the same store
    build_store(STRUCTURES, tmp_path / "w2.zarr", CONFIG, workers=2, progress=False, log=print)
    _assert_same_store(built, tmp_path / "w2.zarr")


def test_info_counts(built, cli):
    code, out, err = cli("data", "info", built, "--json")
    assert code == 0, err
    rec = json.loads(out)
    assert rec["patch"] == 24 and rec["resolutions"] == [3.0, 6.0]
    for name in ("train", "val", "test"):
        s = rec["splits"][name]
        assert s["structures"] == 1 and s["patches_per_resolution"] == {"3": 4, "6": 4}
        assert all(b > 0 for b in s["bytes_per_resolution"].values())
    assert rec["bytes_uncompressed"] == 3 * 4 * 2 * 24**3 * 2
    on_disk = sum(f.stat().st_blocks * 512 for f in built.rglob("*") if f.is_file())
    assert rec["bytes_on_disk"] == on_disk
    code, out, err = cli("data", "info", built)
    assert code == 0 and "train" in out and "24^3" in out


def test_bad_structures_are_reported_and_skipped(tmp_path, cli):
    bad = tmp_path / "broken.pdb"
    bad.write_text("this is not a PDB file\n" * 5)
    out = tmp_path / "s.zarr"
    args = ["--resolutions", "3,6", "--voxel-size", "1.5", "--patch", "16"]
    args += ["--patches-per-structure", "2", "--no-progress", "--val-fraction", "0"]
    args += ["--test-fraction", "0"]
    code, _, err = cli(
        "data", "build", EXAMPLES / "1orc.pdb.gz", tmp_path / "missing.pdb", bad, "-o", out, *args
    )
    assert code == 0, err
    assert "built 1 structures" in err and "2 skipped" in err
    assert "skipped missing: structure file not found" in err and "skipped broken:" in err
    assert sorted(complete_structures(out)) == ["1orc"]
    # resuming retries the failed ones and reports them again; nothing else is rebuilt
    code, _, err = cli(
        "data", "build", EXAMPLES / "1orc.pdb.gz", tmp_path / "missing.pdb", bad, "-o", out, *args
    )
    assert code == 0 and "1 were already complete; 2 skipped" in err
    # nothing buildable at all: one line, status 2
    code, _, err = cli("data", "build", tmp_path / "missing.pdb", "-o", tmp_path / "t.zarr", *args)
    assert code == 2 and err.count("\n") == 1 and "could be built" in err


@pytest.mark.parametrize(
    "extra, message",
    [
        ([], "no structures given"),
        (["S", "--shard", "2/2"], "0 <= i < n"),
        (["S", "--shard", "1-2"], "expected i/n"),
        (["S", "--shard", "0/0"], "0 <= i < n"),
        (["S", "--resolutions", "3,-6"], "positive"),
        (["S", "--resolutions", "2"], "Nyquist"),
        (["S", "--pairs", "3:6"], "coarser"),
        (["S", "--dtype", "int8"], "float16 or float32"),
        (["S", "--held-out", "nope"], "not given"),
    ],
)
def test_bad_build_arguments_end_in_one_line(tmp_path, cli, extra, message):
    extra = [str(EXAMPLES / "1orc.pdb.gz") if e == "S" else e for e in extra]
    base = ["--resolutions", "3,6", "--voxel-size", "1.5", "--patch", "16"]
    args = ["data", "build", *extra[:1], "-o", tmp_path / "x.zarr", *base, *extra[1:]]
    if not extra:
        args = ["data", "build", "-o", tmp_path / "x.zarr", *base]
    code, out, err = cli(*args)
    assert code == 2, err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
    assert not (tmp_path / "x.zarr").exists()


def test_resume_refuses_other_arguments_and_merge_checks_shards(built, tmp_path, cli):
    code, _, err = cli(
        "data",
        "build",
        *STRUCTURES,
        "-o",
        built,
        "--resolutions",
        "3,6",
        "--voxel-size",
        "1.5",
        "--patch",
        "24",
    )
    assert code == 2 and "different arguments" in err
    code, _, err = cli("data", "info", tmp_path)
    assert code == 2 and "not a densitydiff store" in err
    other = tmp_path / "other.zarr"
    build_store(
        STRUCTURES[:1],
        other,
        BuildConfig(
            resolutions=(3.0, 6.0),
            voxel_size=1.5,
            patch=16,
            patches_per_structure=1,
            val_fraction=0,
            test_fraction=0,
        ),
        progress=False,
        log=lambda _: None,
    )
    with pytest.raises(InputError, match="other arguments"):
        merge_stores([built, other], tmp_path / "m.zarr")
    with pytest.raises(InputError, match="exists"):
        merge_stores([built], other)
