"""Particle stacks (.mrcs): reading one stack, and writing one batch by batch, atomically."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from densitydiff.errors import InputError
from densitydiff.formats.mrc import quiet_mrcfile
from densitydiff.maps import voxel_triple
from densitydiff.outputs import atomic_path


def read_stack(path: str | os.PathLike, lazy: bool = False) -> np.ndarray:
    """Images (N, D, D) float32 of one .mrcs/.mrc stack; `lazy=True` memory-maps it."""
    import mrcfile

    try:
        with quiet_mrcfile():
            if lazy:
                mrc = mrcfile.mmap(path, mode="r", permissive=False)
                data = mrc.data
            else:
                with mrcfile.open(path, mode="r", permissive=False) as mrc:
                    data = np.array(mrc.data, dtype=np.float32)
    except (ValueError, OSError, EOFError) as err:
        raise InputError(f"{path}: not a readable MRC particle stack ({err})") from None
    if data is None or data.ndim not in (2, 3):
        raise InputError(
            f"{path}: expected a stack of 2-D images, got {getattr(data, 'shape', None)}"
        )
    if data.ndim == 2:
        data = data[None]
    if data.shape[1] != data.shape[2]:
        raise InputError(f"{path}: particle images must be square, got {data.shape[1:]}")
    return data


def stack_pixel_size(path: str | os.PathLike) -> float:
    """Pixel size (Å) in a stack's header (x voxel size)."""
    import mrcfile

    with quiet_mrcfile(), mrcfile.open(path, mode="r", header_only=True, permissive=True) as mrc:
        return float(mrc.voxel_size.x)


class ParticleWriter:
    """Write an .mrcs stack of `n` images of D x D batch by batch, atomically.

    Only the current batch is in memory (plain file writes at offsets, no memory map, so the
    process's resident memory stays small). `write` appends; `write_at` puts images in any
    slots and `read` reads them back (for passes over the stack). Header statistics come from
    the images given to `write`, or to `write_at(..., stats=True)`; every image must pass through
    the statistics exactly once. The file appears at `path` only on success.
    """

    def __init__(self, path: str | os.PathLike, n: int, D: int, pixel_size: float) -> None:
        if n < 1 or D < 2:
            raise InputError(f"a stack needs n >= 1 images of D >= 2 pixels, got n={n}, D={D}")
        voxel_triple(pixel_size, "pixel size")
        self.path, self.n, self.D, self.pixel_size = Path(path), int(n), int(D), float(pixel_size)
        self.count = 0
        self._sum = 0.0
        self._sumsq = 0.0
        self._min = np.inf
        self._max = -np.inf

    def __enter__(self) -> ParticleWriter:
        import mrcfile

        self._atomic = atomic_path(self.path)
        self._tmp = self._atomic.__enter__()
        try:
            with mrcfile.new_mmap(
                self._tmp, shape=(self.n, self.D, self.D), mrc_mode=2, overwrite=True
            ) as mrc:
                mrc.set_image_stack()
                mrc.voxel_size = self.pixel_size
                self._offset = mrc.header.nbytes + int(mrc.header.nsymbt)
            self._fh = open(self._tmp, "r+b")  # noqa: SIM115 (closed in __exit__)
        except BaseException as err:
            self._atomic.__exit__(type(err), err, err.__traceback__)
            raise
        return self

    @property
    def _image_bytes(self) -> int:
        return self.D * self.D * 4

    def _check(self, images: np.ndarray) -> np.ndarray:
        images = np.ascontiguousarray(images, dtype="<f4")
        if images.ndim != 3 or images.shape[1:] != (self.D, self.D):
            raise InputError(f"expected images (B, {self.D}, {self.D}), got {images.shape}")
        return images

    def _stats(self, images: np.ndarray) -> None:
        if self.count + len(images) > self.n:
            raise InputError(f"more than the announced {self.n} images")
        self.count += len(images)
        values = images.astype(np.float64)
        self._sum += float(values.sum())
        self._sumsq += float((values**2).sum())
        self._min = min(self._min, float(values.min()))
        self._max = max(self._max, float(values.max()))

    def write(self, images: np.ndarray) -> None:
        """Append images (B, D, D) after the last appended one."""
        images = self._check(images)
        start = self.count
        self._stats(images)
        os.pwrite(self._fh.fileno(), images.tobytes(), self._offset + start * self._image_bytes)

    def write_at(self, indices, images: np.ndarray, stats: bool = False) -> None:
        """Put images (B, D, D) into slots `indices` (0-based)."""
        images = self._check(images)
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if len(indices) != len(images) or (
            len(indices) and not (0 <= indices.min() and indices.max() < self.n)
        ):
            raise InputError(f"bad slots for {len(images)} images in a stack of {self.n}")
        if stats:
            self._stats(images)
        fd = self._fh.fileno()
        # contiguous runs become one write each
        breaks = np.flatnonzero(np.diff(indices) != 1) + 1
        for run in np.split(np.arange(len(indices)), breaks):
            if len(run) == 0:
                continue
            offset = self._offset + int(indices[run[0]]) * self._image_bytes
            os.pwrite(fd, images[run[0] : run[-1] + 1].tobytes(), offset)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Images start..stop-1 as written so far (float32)."""
        count = (stop - start) * self.D * self.D
        self._fh.seek(self._offset + start * self._image_bytes)
        data = np.fromfile(self._fh, dtype="<f4", count=count)
        return data.reshape(stop - start, self.D, self.D).astype(np.float32)

    def __exit__(self, exc_type, exc, tb) -> None:
        import mrcfile

        self._fh.close()
        if exc_type is None and self.count != self.n:
            error = InputError(f"wrote {self.count} of {self.n} announced images")
            self._atomic.__exit__(InputError, error, None)  # removes the temporary file
            raise error
        if exc_type is None:
            size = self.n * self.D * self.D
            mean = self._sum / size
            with mrcfile.mmap(self._tmp, mode="r+") as mrc:
                h = mrc.header
                h.dmin, h.dmax, h.dmean = self._min, self._max, mean
                h.rms = np.sqrt(max(self._sumsq / size - mean**2, 0.0))
        self._atomic.__exit__(exc_type, exc, tb)


def write_particles(path: str | os.PathLike, images: np.ndarray, pixel_size: float) -> Path:
    """Write images (N, D, D) as an .mrcs stack, atomically."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 3:
        raise InputError(f"images must be (N, D, D), got shape {images.shape}")
    with ParticleWriter(path, len(images), images.shape[1], pixel_size) as w:
        w.write(images)
    return Path(path)
