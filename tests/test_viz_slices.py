"""The slice montage: one grey scale and one colour bar per row, a scale bar in Å, the slice
index in each title, and smooth (not blocky) drawing of small maps."""

from __future__ import annotations

import numpy as np
from matplotlib.image import AxesImage
from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

from densitydiff.viz import plot_slices, slices_figure


def _blob(shape, scale):
    z, y, x = np.meshgrid(*[np.arange(n) - n // 2 for n in shape], indexing="ij")
    return scale * np.exp(-(x**2 + 2 * y**2 + 3 * z**2) / 20.0)


def test_rows_share_a_grey_scale_with_a_colour_bar_and_scale_bars_in_angstrom():
    vols = {"truth": _blob((20, 24, 28), 1.0), "std": _blob((20, 24, 28), 0.01)}
    fig = slices_figure(vols, voxel_size=1.5)
    images = [a.get_images()[0] for a in fig.axes if a.get_images()]
    assert len(images) == 6 and all(isinstance(i, AxesImage) for i in images)
    rows = [images[:3], images[3:]]
    for row, vol in zip(rows, vols.values()):
        clims = {im.get_clim() for im in row}
        assert len(clims) == 1  # one contrast for the three panels of a row
        lo, hi = clims.pop()
        assert lo < hi <= vol.max() + 1e-6 and hi > 0.5 * vol.max()
        assert all(im.get_interpolation() == "bilinear" for im in row)
    assert rows[0][0].get_clim() != rows[1][0].get_clim()  # rows keep their own scale
    colorbars = [a for a in fig.axes if not a.get_images() and a.collections]
    assert len(colorbars) == 2
    titles = [a.get_title() for a in fig.axes if a.get_images()]
    assert titles[:3] == ["truth: z = 10", "truth: y = 12", "truth: x = 14"]
    bars = [b for a in fig.axes for b in a.artists if isinstance(b, AnchoredSizeBar)]
    assert len(bars) == 6
    texts = {b.txt_label.get_text() for b in bars}
    # the smallest side is 20 voxels (30 Å): the largest 1-2-5 length <= a quarter is 5 Å
    assert texts == {"5 Å"}
    assert {round(b.size_bar.get_children()[0].get_width(), 6) for b in bars} == {round(5 / 1.5, 6)}
    assert slices_figure({"patch": _blob((8, 8, 8), 1.0)}).axes[0].artists[0].txt_label.get_text(
    ) == "2 vox"  # fmt: skip


def test_png_is_written_at_150_dpi(tmp_path):
    from PIL import Image

    path = plot_slices({"a": _blob((16, 16, 16), 1.0)}, tmp_path / "s.png", voxel_size=1.0)
    with Image.open(path) as im:
        assert im.size == (1350, 390)  # 9.0 x 2.6 inches at 150 dpi
