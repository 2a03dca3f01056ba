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
