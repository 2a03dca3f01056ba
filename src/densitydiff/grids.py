"""Put one map onto another map's grid by trilinear interpolation in Å coordinates.

Used when two maps must be compared voxel by voxel but were sampled differently (`--resample`).
Positions follow DensityMap: origin + index * voxel_size, (z, y, x).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from densitydiff.maps import DensityMap


def interpolate_onto(density: DensityMap, like: DensityMap, order: int = 1) -> DensityMap:
    """Sample `density` at the voxel centres of `like` (zero outside `density`'s box)."""
    axes = [
        (like.origin[d] + np.arange(like.shape[d]) * like.voxel_size[d] - density.origin[d])
        / density.voxel_size[d]
        for d in range(3)
    ]
    coords = np.meshgrid(*axes, indexing="ij")
    values = ndimage.map_coordinates(
        density.array, coords, order=order, mode="constant", cval=0.0, prefilter=order > 1
    )
    return like.with_array(values.astype(np.float32))


def overlap_fraction(a: DensityMap, b: DensityMap) -> float:
    """Volume of the intersection of the two maps' boxes over the smaller box's volume (0..1).

    A box spans origin .. origin + shape * voxel_size per axis (Å).
    """
    lo_a, lo_b = np.asarray(a.origin), np.asarray(b.origin)
    hi_a, hi_b = lo_a + np.asarray(a.extent), lo_b + np.asarray(b.extent)
    edges = np.clip(np.minimum(hi_a, hi_b) - np.maximum(lo_a, lo_b), 0.0, None)
    smaller = min(float(np.prod(a.extent)), float(np.prod(b.extent)))
    return float(np.prod(edges) / smaller)
