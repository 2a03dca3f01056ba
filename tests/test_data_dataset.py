"""PatchDataset: items, one read per patch per epoch, DataLoader workers, distributed ranks."""

from __future__ import annotations

import copy
from collections import Counter

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler

from densitydiff.data import PatchDataset
from densitydiff.data.augment import apply_symmetry, cube_symmetries
from densitydiff.data.build import BuildConfig, build_store
from densitydiff.data.layout import complete_structures, read_root
from densitydiff.errors import InputError
from tests.conftest import EXAMPLES

STRUCTURES = [EXAMPLES / "1orc.pdb.gz", EXAMPLES / "1aki.cif.gz", EXAMPLES / "3mfp.pdb.gz"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """3 structures, 2 in train (6 patches each), 3 resolutions, float32."""
    out = tmp_path_factory.mktemp("ds") / "ds.zarr"
    config = BuildConfig(
        resolutions=(3.0, 4.5, 6.0),
        voxel_size=1.5,
        patch=16,
        patches_per_structure=6,
        dtype="float32",
        seed=1,
        val_fraction=1 / 3,
        test_fraction=0,
    )
    build_store(STRUCTURES, out, config, progress=False, log=lambda _: None)
    return out


def _train_patches(store) -> set[tuple[str, int]]:
    split = read_root(store)["split"]
    done = complete_structures(store)
    return {(s, p) for s, sp in split.items() if sp == "train" for p in range(done[s]["n_patches"])}


def test_items_follow_the_contract(store):
    ds = PatchDataset(store, "train")
    assert len(ds) == len(_train_patches(store)) == 12
    item = ds[0]
    assert item["input"].shape == item["target"].shape == (1, 16, 16, 16)
    assert item["input"].dtype == item["target"].dtype == torch.float32
    pair = (item["input_resolution"], item["target_resolution"])
    assert isinstance(pair[0], float) and pair in ds.pairs and pair[1] <= pair[0]
    assert len(ds.pairs) == 6  # every r_out <= r_in of 3 resolutions, identity included
    val = PatchDataset(store, "val", augment=False)
    train_ids = {ds[i]["structure_id"] for i in range(len(ds))}
    assert not train_ids & set(val.structure_ids) and len(val) == 6
    with pytest.raises(InputError):
        PatchDataset(store, "training")
    with pytest.raises(InputError):
        PatchDataset(store, pairs=[(3.0, 6.0)])
    with pytest.raises(InputError):
        PatchDataset(store, pairs=[(5.0, 3.0)])


def test_each_patch_is_read_once_per_epoch(store, monkeypatch):
    """Count chunk reads: each item reads its pair's chunks, no chunk twice, nothing else."""
    reads: Counter = Counter()
    ds = PatchDataset(store, "train")
    real = PatchDataset._array

    class Counting:
        def __init__(self, arr, key):
            self.arr, self.key = arr, key

        def __getitem__(self, index):
            reads[(*self.key, int(index))] += 1
            return self.arr[index]

    monkeypatch.setattr(
        PatchDataset, "_array", lambda self, sid, r: Counting(real(self, sid, r), (sid, r))
    )
    torch.manual_seed(0)
    pairs_seen = Counter()
    for i in range(len(ds)):
        item = ds[i]
        pairs_seen[(item["input_resolution"], item["target_resolution"])] += 1
    assert max(reads.values()) == 1
    assert {(s, p) for s, _, p in reads} == _train_patches(store)
    n_identity = sum(n for (a, b), n in pairs_seen.items() if a == b)
    assert len(reads) == 2 * len(ds) - n_identity  # one read for r_in == r_out, else two
    assert len(pairs_seen) > 1  # pairs are drawn, not fixed


def test_augmentation_is_the_same_symmetry_on_input_and_target(store):
    plain = PatchDataset(store, "train", pairs=[(6.0, 3.0)], augment=False)
    aug = PatchDataset(store, "train", pairs=[(6.0, 3.0)], augment=True)
    syms = cube_symmetries()
    torch.manual_seed(3)
    used = set()
    for i in range(len(plain)):
        a, b = plain[i], aug[i]
        matches = [
            k for k, s in enumerate(syms) if torch.equal(apply_symmetry(a["input"], s), b["input"])
        ]
        assert len(matches) == 1  # a patch of real density has no symmetry of its own
        assert torch.equal(apply_symmetry(a["target"], syms[matches[0]]), b["target"])
        used.add(matches[0])
    assert len(used) > 3
    proper = PatchDataset(store, "train", augment="proper")
    assert len(proper.symmetries) == 24 and all(s.proper for s in proper.symmetries)


def test_dataloader_workers_see_every_patch_once(store):
    ds = PatchDataset(store, "train")
    ds[0]  # open handles in this process: they must not travel to the workers
    state = copy.deepcopy(ds).__dict__  # same __getstate__ as pickling to a worker
    assert state["_arrays"] is None
    loader = DataLoader(ds, batch_size=4, num_workers=2, shuffle=True)
    seen = Counter()
    for batch in loader:
        assert batch["input"].shape == (len(batch["patch"]), 1, 16, 16, 16)
        assert torch.isfinite(batch["target"]).all()
        seen.update(zip(batch["structure_id"], batch["patch"].tolist()))
    assert set(seen) == _train_patches(store) and max(seen.values()) == 1


def test_distributed_sampler_ranks_are_disjoint_and_cover(store):
    ds = PatchDataset(store, "train")
    assert len(ds) % 2 == 0  # no padding by repetition for 2 ranks
    parts = [
        set(DistributedSampler(ds, num_replicas=2, rank=r, shuffle=True, seed=5)) for r in (0, 1)
    ]
    assert not parts[0] & parts[1]
    assert parts[0] | parts[1] == set(range(len(ds)))
    assert abs(len(parts[0]) - len(parts[1])) == 0
    values = np.array([float(ds[i]["input"].std()) for i in sorted(parts[0])])
    assert np.all(values > 0)


@pytest.mark.parametrize("compressor", ["zstd", "blosc", "none"])
@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_chunk_reader_reads_what_zarr_reads(tmp_path, compressor, dtype):
    import zarr

    from densitydiff.data.layout import ChunkReader, _compressors

    data = np.random.default_rng(0).standard_normal((3, 8, 8, 8)).astype(dtype)
    data[1] = 0.0  # equal to the fill value: zarr writes no chunk file for it
    a = zarr.create_array(
        tmp_path / "a",
        shape=data.shape,
        chunks=(1, 8, 8, 8),
        dtype=dtype,
        compressors=_compressors(compressor),
        fill_value=0.0,
    )
    a[...] = data
    reader = ChunkReader.open(tmp_path / "a")
    assert isinstance(reader, ChunkReader)
    for p in range(3):
        assert np.array_equal(reader[p], zarr.open_array(tmp_path / "a", mode="r")[p])
        assert np.array_equal(reader[p], data[p])
    b = zarr.create_array(tmp_path / "b", shape=data.shape, chunks=(3, 4, 8, 8), dtype=dtype)
    b[...] = data
    other = ChunkReader.open(tmp_path / "b")  # another layout: zarr reads it
    assert not isinstance(other, ChunkReader) and np.array_equal(other[2], data[2])
