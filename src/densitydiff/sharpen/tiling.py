"""Overlapping tiles over a 3-D map and the smooth weights that blend them back together.

A map of shape n (per axis) is covered by cubic tiles of edge T whose corners sit at
`-margin + k * stride` (k = 0, 1, ...), i.e. on a grid that starts `margin` voxels before the
map; voxels outside the map are filled with a constant (or wrapped for a periodic map). Each
tile contributes only its central region [margin, T - margin) with a Gaussian weight centred on
the tile (sigma = T / 8, as nnU-Net's sliding window); the margin voxels, whose values the
network computes next to the tile's (zero-padded) border, never count. The central regions
overlap by T - 2 * margin - stride voxels, so the blend is smooth.

Exactness: for a network whose output at a voxel depends only on inputs within `margin` voxels
(its receptive field) and that is equivariant to shifts by multiples of its downsampling factor
f (stride, T and margin-independent corners k * stride on one lattice), every tile computes the
same value at a voxel as one pass over the whole (padded) map, so any convex blend is exact.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np

from densitydiff.errors import InputError


def axis_starts(n: int, tile: int, stride: int, margin: int) -> list[int]:
    """Tile corners along one axis (may be negative or run past n) whose central regions cover n."""
    if tile <= 0 or stride <= 0 or margin < 0:
        raise InputError(f"bad tiling: tile {tile}, stride {stride}, margin {margin}")
    if stride > tile - 2 * margin:
        raise InputError(
            f"tile stride {stride} leaves gaps: at most tile - 2 * margin = {tile - 2 * margin}"
        )
    starts = [-margin]
    while starts[-1] + tile - margin < n:  # central region ends before the map does
        starts.append(starts[-1] + stride)
    return starts


def tile_corners(
    shape: tuple[int, int, int], tile: int, stride: int, margin: int
) -> Iterator[tuple[int, int, int]]:
    """Every tile corner (z, y, x) in C order, generated lazily."""
    per_axis = [axis_starts(n, tile, stride, margin) for n in shape]
    return itertools.product(*per_axis)


def count_tiles(shape: tuple[int, int, int], tile: int, stride: int, margin: int) -> int:
    """How many tiles `tile_corners` yields."""
    return int(np.prod([len(axis_starts(n, tile, stride, margin)) for n in shape]))


def gaussian_profile(tile: int, margin: int, sigma: float | None = None) -> np.ndarray:
    """1-D blending weight: Gaussian about the tile centre (sigma T/8), 0 within `margin`."""
    sigma = tile / 8.0 if sigma is None else float(sigma)
    i = np.arange(tile, dtype=np.float64)
    w = np.exp(-((i - (tile - 1) / 2.0) ** 2) / (2.0 * sigma**2))
    w[:margin] = 0.0
    w[tile - margin :] = 0.0
    return w


def blend_weight(tile: int, margin: int, sigma: float | None = None) -> np.ndarray:
    """(T, T, T) float32 weight: outer product of three `gaussian_profile`s."""
    g = gaussian_profile(tile, margin, sigma)
    return (g[:, None, None] * g[None, :, None] * g[None, None, :]).astype(np.float32)


def extract(
    array: np.ndarray, corner: tuple[int, int, int], tile: int, fill: float, periodic: bool = False
) -> np.ndarray:
    """The (T, T, T) block at `corner`; outside the map: `fill`, or wrapped when periodic."""
    if periodic:
        idx = [np.arange(c, c + tile) % n for c, n in zip(corner, array.shape)]
        return array[np.ix_(*idx)].astype(np.float32, copy=False)
    out = np.full((tile, tile, tile), fill, dtype=np.float32)
    src, dst = map_slices(array.shape, corner, tile)
    if src is not None:
        out[dst] = array[src]
    return out


def map_slices(shape: tuple[int, ...], corner: tuple[int, int, int], tile: int):
    """(slices into the map, slices into the tile) of their overlap, or (None, None)."""
    src, dst = [], []
    for c, n in zip(corner, shape):
        lo, hi = max(c, 0), min(c + tile, n)
        if hi <= lo:
            return None, None
        src.append(slice(lo, hi))
        dst.append(slice(lo - c, hi - c))
    return tuple(src), tuple(dst)


def accumulate(
    total: np.ndarray,
    values: np.ndarray,
    weight: np.ndarray,
    corner: tuple[int, int, int],
    periodic: bool = False,
) -> None:
    """total[tile's voxels] += weight * values (in place; wrapped indices add up when periodic)."""
    tile = values.shape[0]
    if periodic:
        idx = [np.arange(c, c + tile) % n for c, n in zip(corner, total.shape)]
        np.add.at(total, np.ix_(*idx), weight * values)
        return
    src, dst = map_slices(total.shape, corner, tile)
    if src is not None:
        total[src] += weight[dst] * values[dst]
