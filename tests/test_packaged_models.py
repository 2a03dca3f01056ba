"""The models shipped inside the package: small, held-out-clean, and their output lines up.

These run the real packaged weights on a held-out structure (1orc, never trained on).
"""

from __future__ import annotations

import numpy as np
import pytest

from densitydiff.filters import lowpass
from densitydiff.maps import DensityMap
from densitydiff.sharpen.checkpoint import MODELS_DIR, PACKAGED, load_sharpener
from densitydiff.sharpen.infer import sharpen_map
from densitydiff.simulate.density import simulate_map
from densitydiff.structures import read_structure
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.usefixtures("one_thread")


def _heldout() -> set[str]:
    lines = (MODELS_DIR / "heldout.txt").read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


@pytest.mark.parametrize("name", sorted(PACKAGED))
def test_packaged_model_is_small_and_never_saw_the_held_out_list(name):
    path = MODELS_DIR / PACKAGED[name]
    assert path.stat().st_size < 25e6
    sharpener = load_sharpener(name)
    assert sharpener.voxel_size == pytest.approx(1.0)
    trained = {s.split(".")[0].lower() for s in sharpener.training_structures}
    assert len(trained) > 50
    assert not trained & _heldout()


@pytest.fixture(scope="module")
def held_out_pair():
    structure = read_structure(EXAMPLES / "1orc.pdb.gz")
    truth = simulate_map(structure, 2.0, 1.0, padding=4.0)
    return truth, simulate_map(structure, 4.0, 1.0, like=truth)


@pytest.mark.parametrize("name", sorted(PACKAGED))
def test_sharpened_map_lines_up_with_the_input(name, held_out_pair):
    truth, coarse = held_out_pair
    result = sharpen_map(coarse, name, input_resolution=4.0, target_resolution=2.0, steps=10)
    out = result.mean
    assert out.same_grid(coarse)
    back = lowpass(out.array, out.voxel_size, 4.0)
    cc = np.corrcoef(back.ravel(), coarse.array.ravel())[0, 1]
    assert cc > 0.9


def test_packaged_unet_exact_tiles_equal_one_pass(held_out_pair):
    """The issue's check on a real model: tiled and untiled inference agree to 1e-4."""
    sharpener = load_sharpener("unet")
    assert sharpener.model.net.is_local  # channel norm, no attention
    margin = sharpener.model.net.receptive_radius() + 1  # 26: a multiple of the factor 2
    coarse = held_out_pair[1]
    # a small map: a corner of the protein's box
    small = DensityMap(coarse.array[8:30, 10:28, 6:32].copy(), coarse.voxel_size, coarse.origin)
    common = dict(input_resolution=4.0, target_resolution=2.0, exact_tiles=True)
    tiled = sharpen_map(small, sharpener, tile=2 * margin + 16, **common)
    assert tiled.info["margin"] == margin and tiled.n_tiles == 8
    untiled = sharpen_map(small, sharpener, tile=2 * margin + 26, **common)
    assert untiled.n_tiles == 1
    a, b = tiled.mean.array, untiled.mean.array
    assert np.abs(a - b).max() <= 1e-4 * np.abs(b).max()
    assert np.abs(b - small.array).max() > 0.1 * np.abs(small.array).max()  # it did sharpen
