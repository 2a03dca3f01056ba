"""interpolate_onto: trilinear interpolation is exact for a linear function of position."""

from __future__ import annotations

import numpy as np

from densitydiff import DensityMap
from densitydiff.grids import interpolate_onto


def _positions(m: DensityMap) -> list[np.ndarray]:
    axes = [m.origin[d] + np.arange(m.shape[d]) * m.voxel_size[d] for d in range(3)]
    return np.meshgrid(*axes, indexing="ij")


def test_linear_function_is_reproduced_on_another_grid():
    source = DensityMap(np.zeros((20, 18, 16)), (1.5, 1.2, 1.0), (-3.0, 2.0, 5.0))
    z, y, x = _positions(source)
    source = source.with_array(0.3 * z - 0.7 * y + 1.1 * x + 2.0)
    like = DensityMap(np.zeros((10, 9, 8)), (1.3, 1.1, 0.9), (0.0, 4.0, 7.0))
    result = interpolate_onto(source, like)
    zl, yl, xl = _positions(like)
    expected = 0.3 * zl - 0.7 * yl + 1.1 * xl + 2.0
    assert result.same_grid(like)
    np.testing.assert_allclose(result.array, expected, rtol=1e-5, atol=1e-4)


def test_outside_the_source_box_is_zero():
    source = DensityMap(np.ones((4, 4, 4)), 1.0, (0.0, 0.0, 0.0))
    like = DensityMap(np.zeros((4, 4, 4)), 1.0, (100.0, 0.0, 0.0))
    assert np.all(interpolate_onto(source, like).array == 0)
