"""Particles for the heterogeneity VAE: images streamed from memory-mapped stacks, poses, CTF.

`open_particles` reads a .mrcs stack, a .txt list of stacks, a RELION .star or a cryoSPARC .cs
(images stay on disk, memory-mapped), cryoDRGN's poses.pkl and ctf.pkl (or the poses and CTF the
.star / .cs file holds), and an optional --ind subset, and checks that they agree.
`ChunkedParticles` yields batches read chunk by chunk: contiguous chunks of the stack in an order
shuffled from (seed, epoch), so each epoch reads each image once and memory is flat in N.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from densitydiff.errors import InputError
from densitydiff.formats.ctf import CTFParams, load_ctf
from densitydiff.formats.particles import check_counts, load_poses

IMAGE_SUFFIXES = (".mrcs", ".mrc", ".txt", ".star", ".cs")


class StackImages:
    """Images i = (stack s_i, slot k_i) of memory-mapped stacks, read by index."""

    def __init__(
        self, stacks: list[np.ndarray], stack_of: np.ndarray, slot: np.ndarray, files: list[Path]
    ) -> None:
        self.stacks, self.stack_of, self.slot, self.files = stacks, stack_of, slot, files
        self.D = int(stacks[0].shape[-1])

    def __len__(self) -> int:
        return len(self.slot)

    def read(self, index: np.ndarray) -> np.ndarray:
        """Images (len(index), D, D) float32, in the order of `index`."""
        index = np.asarray(index, dtype=np.int64)
        out = np.empty((len(index), self.D, self.D), dtype=np.float32)
        for s in np.unique(self.stack_of[index]):
            sel = np.flatnonzero(self.stack_of[index] == s)
            slots = self.slot[index[sel]]
            lo, hi = int(slots.min()), int(slots.max()) + 1
            if hi - lo == len(slots):  # a contiguous run: one slice of the memory map
                out[sel] = self.stacks[s][lo:hi][slots - lo]
            else:
                order = np.argsort(slots)
                out[sel[order]] = self.stacks[s][slots[order]]
        return out


def _mmap(path: Path) -> np.ndarray:
    """A stack memory-mapped; a truncated or malformed file is an InputError."""
    from densitydiff.formats.mrcs import read_stack

    if not path.is_file():
        raise InputError(f"particle stack {path} not found")
    return read_stack(path, lazy=True)


def _stacks(names: list[str], base: Path, datadir: Path | None):
    files, stacks, ids = [], [], {}
    for name in names:
        if name in ids:
            continue
        p = Path(name)
        if not p.is_absolute():
            p = datadir / p.name if datadir is not None else base / p
        ids[name] = len(stacks)
        files.append(p)
        stacks.append(_mmap(p))
    shapes = {s.shape[1:] for s in stacks}
    if len(shapes) != 1:
        raise InputError(f"stacks have different image sizes {sorted(shapes)}")
    return files, stacks, ids


def open_images(path: str | os.PathLike, datadir: str | os.PathLike | None = None):
    """(StackImages, poses or None, ctf rows or None) from .mrcs/.mrc, .txt, .star or .cs."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    suffix = path.suffix.lower()
    dd = Path(datadir) if datadir is not None else None
    if suffix in (".mrcs", ".mrc"):
        stack = _mmap(path)
        n = len(stack)
        return StackImages([stack], np.zeros(n, np.int64), np.arange(n), [path]), None, None
    if suffix == ".txt":
        names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        if not names:
            raise InputError(f"{path}: empty list of particle stacks")
        parts = [_stacks([name], path.parent, dd) for name in names]
        files, stacks = [f[0] for f, _, _ in parts], [s[0] for _, s, _ in parts]
        if len({s.shape[1:] for s in stacks}) != 1:
            raise InputError(f"{path}: stacks have different image sizes")
        stack_of = np.concatenate([np.full(len(s), i) for i, s in enumerate(stacks)])
        slot = np.concatenate([np.arange(len(s)) for s in stacks])
        return StackImages(stacks, stack_of, slot, files), None, None
    if suffix == ".star":
        from densitydiff.formats.star import ctf_from_star, image_names, poses_from_star, read_star

        df = read_star(path)
        pairs = image_names(df)
        files, stacks, ids = _stacks([s for _, s in pairs], path.parent, dd)
        D = int(stacks[0].shape[-1])
        images = _indexed(stacks, ids, pairs, files, path)
        return images, poses_from_star(df, D=D), ctf_from_star(df, D=D)
    if suffix == ".cs":
        from densitydiff.formats.cryosparc import ctf_from_cs, poses_from_cs, read_cs

        cs = read_cs(path)
        if "blob/path" not in cs.dtype.names or "blob/idx" not in cs.dtype.names:
            raise InputError(f"{path}: the .cs file has no blob/path and blob/idx fields")
        paths = [p.decode() if isinstance(p, bytes) else str(p) for p in cs["blob/path"]]
        pairs = [(int(k), p.lstrip(">")) for k, p in zip(cs["blob/idx"], paths)]
        files, stacks, ids = _stacks([s for _, s in pairs], path.parent, dd)
        D = int(stacks[0].shape[-1])
        images = _indexed(stacks, ids, pairs, files, path)
        poses = poses_from_cs(cs, D=D) if "alignments3D/pose" in cs.dtype.names else None
        return images, poses, ctf_from_cs(cs, D=D)
    raise InputError(f"{path}: particles must be one of {', '.join(IMAGE_SUFFIXES)}")


def _indexed(stacks, ids, pairs, files, path) -> StackImages:
    stack_of = np.array([ids[s] for _, s in pairs], dtype=np.int64)
    slot = np.array([k for k, _ in pairs], dtype=np.int64)
    for s, stack in enumerate(stacks):
        sel = slot[stack_of == s]
        if len(sel) and (sel.min() < 0 or sel.max() >= len(stack)):
            raise InputError(f"{path}: image {int(sel.max()) + 1} is beyond the end of {files[s]}")
    return StackImages(stacks, stack_of, slot, files)


@dataclass
class Particles:
    """Images (on disk), poses (rotations (N, 3, 3), translations (N, 2) pixels), CTF rows
    (N, 9), all for the selected images (`selection` indexes the file's images)."""

    images: StackImages
    selection: np.ndarray
    rotations: np.ndarray
    translations: np.ndarray
    ctf: np.ndarray
    files: list[Path]

    @property
    def D(self) -> int:
        return self.images.D

    @property
    def pixel_size(self) -> float:
        return float(self.ctf[0, 1])

    def __len__(self) -> int:
        return len(self.selection)

    def read(self, positions: np.ndarray) -> np.ndarray:
        """Images at positions 0..len-1 of the selection."""
        return self.images.read(self.selection[positions])


def load_indices(path: str | os.PathLike, n: int) -> np.ndarray:
    """cryoDRGN's --ind file: a pickled array of 0-based image indices (restricted unpickler)."""
    from densitydiff.formats.pkl import load_pickle

    ind = np.asarray(load_pickle(path))
    if ind.ndim != 1 or not np.issubdtype(ind.dtype, np.integer):
        raise InputError(f"{path}: --ind must hold a 1-D array of integer indices")
    if len(ind) == 0 or ind.min() < 0 or ind.max() >= n:
        raise InputError(f"{path}: indices must lie in [0, {n}) (the stack holds {n} images)")
    if len(np.unique(ind)) != len(ind):
        raise InputError(f"{path}: --ind repeats indices")
    return ind.astype(np.int64)


def open_particles(
    particles: str | os.PathLike,
    poses: str | os.PathLike | None = None,
    ctf: str | os.PathLike | None = None,
    ind: str | os.PathLike | None = None,
    datadir: str | os.PathLike | None = None,
) -> Particles:
    """Images, poses and CTF that agree, or InputError (one line) saying how they do not."""
    images, file_poses, file_ctf = open_images(particles, datadir)
    files = list(images.files)
    if poses is not None:
        rot, trans = load_poses(poses)
        files.append(Path(poses))
    elif file_poses is not None:
        rot, trans = file_poses
    else:
        raise InputError(f"{particles}: give the poses (--poses poses.pkl)")
    if ctf is not None:
        ctf_rows = load_ctf(ctf)
        files.append(Path(ctf))
    elif file_ctf is not None:
        ctf_rows = file_ctf
    else:
        raise InputError(f"{particles}: give the CTF (--ctf ctf.pkl)")
    n, D = len(images), images.D
    check_counts(n, poses=rot, ctf=ctf_rows)
    if trans is None:
        trans = np.zeros((n, 2), np.float32)
    if D % 2:
        raise InputError(f"{particles}: the box must be even, got {D} (crop or pad the images)")
    params = CTFParams.from_array(ctf_rows)
    if not np.all(params.D == D):
        bad = sorted({int(d) for d in params.D if d != D})
        raise InputError(f"ctf.pkl gives box size {bad[0]} but the images are {D} x {D}")
    if not np.allclose(params.pixel_size, params.pixel_size[0], rtol=1e-5):
        raise InputError("ctf.pkl: all images must share one pixel size")
    det = np.linalg.det(rot.astype(np.float64))
    if np.abs(det - 1).max() > 1e-3:
        i = int(np.argmax(np.abs(det - 1)))
        raise InputError(f"pose {i} is not a rotation (det = {det[i]:.3g}, not 1)")
    selection = np.arange(n) if ind is None else load_indices(ind, n)
    if ind is not None:
        files.append(Path(ind))
    return Particles(
        images,
        selection,
        rot[selection].astype(np.float32),
        (trans[selection] * D).astype(np.float32),
        np.asarray(ctf_rows[selection], np.float32),
        files,
    )


def scan_images(particles: Particles, chunk_size: int = 1024) -> float:
    """One pass over the selected images in chunks: their pixel std, or InputError on NaN/inf."""
    total, total_sq, count = 0.0, 0.0, 0
    for start in range(0, len(particles), chunk_size):
        pos = np.arange(start, min(start + chunk_size, len(particles)))
        x = particles.read(pos).astype(np.float64)
        finite = np.isfinite(x).reshape(len(x), -1).all(1)
        if not finite.all():
            i = int(particles.selection[pos[np.argmin(finite)]])
            raise InputError(f"image {i} of the stack holds NaN or infinite values")
        total += float(x.sum())
        total_sq += float((x**2).sum())
        count += x.size
    mean = total / count
    std = float(np.sqrt(max(total_sq / count - mean**2, 0.0)))
    if std == 0:
        raise InputError("the images are constant (pixel std 0)")
    return std


def chunk_plan(
    n: int, chunk_size: int, batch_size: int, seed: int, epoch: int, rank: int = 0, world: int = 1
) -> list[np.ndarray]:
    """The batches (positions) one rank sees in an epoch, from (seed, epoch) alone.

    Contiguous chunks of `chunk_size` positions in a shuffled order, dealt round-robin to the
    ranks; each chunk is shuffled within and cut into batches. Every rank gets the same number
    of batches (DDP needs it): a rank with fewer repeats its first ones, so with several ranks
    every image is seen each epoch and a few twice.
    """
    rng = np.random.default_rng([int(seed), int(epoch)])
    starts = np.arange(0, n, chunk_size)
    order = rng.permutation(len(starts))
    per_rank: list[list[np.ndarray]] = [[] for _ in range(world)]
    for j, c in enumerate(order):
        pos = np.arange(starts[c], min(starts[c] + chunk_size, n))
        pos = pos[rng.permutation(len(pos))]
        per_rank[j % world].extend(np.array_split(pos, -(-len(pos) // batch_size)))
    count = max(len(b) for b in per_rank)
    mine = per_rank[rank] or per_rank[0]  # more ranks than chunks: share the first rank's
    return [mine[i % len(mine)] for i in range(count)]


def _torch_dataset_base():
    import torch

    return torch.utils.data.IterableDataset


class ChunkedParticles(_torch_dataset_base()):  # type: ignore[misc]
    """Batches {"index", "images", "rotations", "translations", "ctf"} for one epoch.

    `set_epoch` (called by the training module at each epoch start) picks the epoch's order;
    a chunk is read from the stack once, then cut into batches, so memory holds one chunk.
    """

    def __init__(self, particles: Particles, batch_size: int, chunk_size: int, seed: int) -> None:
        super().__init__()
        self.particles, self.batch_size, self.seed = particles, batch_size, int(seed)
        # a chunk holds whole batches so each read serves several steps
        self.chunk_size = max(batch_size, chunk_size // batch_size * batch_size)
        self.epoch, self.rank, self.world = 0, 0, 1

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def set_rank(self, rank: int, world: int) -> None:
        self.rank, self.world = int(rank), int(world)

    def plan(self) -> list[np.ndarray]:
        return chunk_plan(
            len(self.particles),
            self.chunk_size,
            self.batch_size,
            self.seed,
            self.epoch,
            self.rank,
            self.world,
        )

    def __len__(self) -> int:
        return len(self.plan())

    def __iter__(self):
        import torch

        p = self.particles
        batches = self.plan()
        i = 0
        while i < len(batches):
            # the batches of one chunk are consecutive: read their union at once
            j = i + 1
            while j < len(batches) and _same_chunk(batches[i], batches[j], self.chunk_size):
                j += 1
            pos = np.concatenate(batches[i:j])
            lo = int(pos.min())
            block = p.read(np.arange(lo, int(pos.max()) + 1))
            for b in batches[i:j]:
                yield {
                    "index": torch.from_numpy(b),
                    "images": torch.from_numpy(block[b - lo]),
                    "rotations": torch.from_numpy(p.rotations[b]),
                    "translations": torch.from_numpy(p.translations[b]),
                    "ctf": torch.from_numpy(p.ctf[b]),
                }
            i = j


def _same_chunk(a: np.ndarray, b: np.ndarray, chunk_size: int) -> bool:
    return int(a[0]) // chunk_size == int(b[0]) // chunk_size
