"""PatchDataset: (input, target) patch pairs from a store, each patch read once per epoch.

One item is one stored patch: a pair (r_in, r_out) is drawn for it from `pairs`, and only the
two chunks of that pair are read (one when r_in == r_out). So an epoch reads every chunk at most
once and never the whole store; nothing is cached between items. The zarr arrays are opened
lazily in the process that reads them (each DataLoader worker opens its own), never pickled.
Chunks are read by `layout.ChunkReader`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from densitydiff.data.augment import apply_symmetry, cube_symmetries
from densitydiff.data.layout import (
    SPLITS,
    ChunkReader,
    array_name,
    complete_structures,
    input_array_name,
    read_root,
)
from densitydiff.errors import InputError

try:  # a torch Dataset when torch is there (it always is for training)
    from torch.utils.data import Dataset as _Base
except ImportError:  # pragma: no cover
    _Base = object


class PatchDataset(_Base):
    """Map-style torch Dataset over one split of a patch store (works with any sampler).

    augment: True (all 48 cube symmetries), "proper" (the 24 rotations, no mirror images),
    or False. Items: {"input", "target": 1xPxPxP float32, "input_resolution",
    "target_resolution": float Å, "structure_id": str, "patch": int}.
    """

    def __init__(
        self,
        store: str | os.PathLike,
        split: str = "train",
        pairs: Sequence[tuple[float, float]] | None = None,
        augment: bool | str = True,
    ) -> None:
        if split not in SPLITS:
            raise InputError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        self.store = Path(store)
        meta = read_root(self.store)
        self.resolutions = [float(r) for r in meta["resolutions"]]
        self.patch = int(meta["patch"])
        # realistic stores keep degraded inputs beside the clean targets (docs/data.md)
        self.degraded = meta.get("inputs") == "degraded"
        chosen = meta["pairs"] if pairs is None else pairs
        self.pairs = [(float(a), float(b)) for a, b in chosen]
        for r_in, r_out in self.pairs:
            if r_in not in self.resolutions or r_out not in self.resolutions:
                raise InputError(
                    f"pair ({r_in}, {r_out}): the store holds resolutions {self.resolutions}"
                )
            if r_out > r_in:
                raise InputError(f"pair ({r_in}, {r_out}): target coarser than input")
        if not self.pairs:
            raise InputError("pairs is empty")
        if augment not in (True, False, "proper"):
            raise InputError(f"augment must be True, False or 'proper', got {augment!r}")
        self.symmetries = (
            cube_symmetries(proper_only=augment == "proper") if augment else cube_symmetries()[:1]
        )
        done = complete_structures(self.store)
        mine = [s for s, sp in meta["split"].items() if sp == split and s in done]
        self.structure_ids = sorted(mine)
        counts = [int(done[s]["n_patches"]) for s in self.structure_ids]
        self._index = np.array(
            [(k, p) for k, n in enumerate(counts) for p in range(n)], dtype=np.int64
        ).reshape(-1, 2)
        self._arrays: dict | None = None
        self._pid: int | None = None

    def __len__(self) -> int:
        return len(self._index)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_arrays"], state["_pid"] = None, None  # each process opens its own handles
        return state

    def _array(self, sid: str, resolution: float, role: str = "target"):
        """A reader of patches (reader[p] -> P x P x P array), opened once per process."""
        if self._arrays is None or self._pid != os.getpid():
            self._arrays, self._pid = {}, os.getpid()
        key = (sid, resolution, role)
        if key not in self._arrays:
            name = input_array_name(resolution) if role == "input" else array_name(resolution)
            path = self.store / "structures" / sid / name
            self._arrays[key] = ChunkReader.open(path)
        return self._arrays[key]

    def __getitem__(self, i: int) -> dict:
        import torch

        k, p = (int(v) for v in self._index[i])
        sid = self.structure_ids[k]
        choice = int(torch.randint(len(self.pairs), ())) if len(self.pairs) > 1 else 0
        r_in, r_out = self.pairs[choice]
        if self.degraded:  # two reads, also for r_in == r_out (denoise the degraded input)
            x = self._array(sid, r_in, "input")[p]
            y = self._array(sid, r_out)[p]
        else:
            x = self._array(sid, r_in)[p]
            y = x if r_out == r_in else self._array(sid, r_out)[p]
        same = y is x
        if len(self.symmetries) > 1:
            sym = self.symmetries[int(torch.randint(len(self.symmetries), ()))]
            x, y = apply_symmetry(x, sym), apply_symmetry(y, sym)
        # one pass: permute/flip view -> contiguous float32 (also the float16 -> float32 step)
        x = torch.from_numpy(np.array(x, dtype=np.float32, order="C"))
        y = x if same else torch.from_numpy(np.array(y, dtype=np.float32, order="C"))
        return {
            "input": x[None],
            "target": y[None],
            "input_resolution": r_in,
            "target_resolution": r_out,
            "structure_id": sid,
            "patch": p,
        }
