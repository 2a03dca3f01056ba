"""The FSC figure: resolution ticks in Å, labelled thresholds, crossings in the legend, y-limits
that hold every curve, overlapping curves told apart."""

from __future__ import annotations

import numpy as np
import pytest

from densitydiff import metrics
from densitydiff.viz import fsc_figure, plot_fsc


def _logistic(f, resolution, width):
    return 1.0 / (1.0 + np.exp((f - 1.0 / resolution) / width))


@pytest.fixture
def curves():
    f = np.linspace(0.0, 0.287, 40)
    voxel = (1.742,) * 3
    return {
        "input": metrics.FSCCurve(f, _logistic(f, 6.0, 0.01), voxel),
        "bfactor": metrics.FSCCurve(f, _logistic(f, 6.0, 0.0101), voxel),  # on top of input
        "model": metrics.FSCCurve(f, _logistic(f, 4.0, 0.02), voxel),
        "anti": metrics.FSCCurve(f, np.r_[1.0, np.full(39, -0.45)], voxel),
    }


def test_fsc_figure_ticks_legend_limits_and_styles(curves):
    import matplotlib.pyplot as plt

    fig = fsc_figure(curves)
    ax, top = fig.axes[0], fig.axes[1]
    assert "1/Å" in ax.get_xlabel() and "Å" in top.get_xlabel()
    # top ticks: resolutions in Å placed at their frequency 1/r on the shared axis
    labels = [t.get_text() for t in top.get_xticklabels()]
    assert labels and "4" in labels and "6" in labels
    for pos, text in zip(top.get_xticks(), labels):
        assert pos == pytest.approx(1.0 / float(text))
    assert top.get_xlim() == pytest.approx(ax.get_xlim())
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    for label, curve in curves.items():
        want = (
            f"{label} (0.5: {metrics.resolution_at(curve, 0.5):.2f} Å, "
            f"0.143: {metrics.resolution_at(curve, 0.143):.2f} Å)"
        )
        assert want in legend
    assert "model (0.5: 4.00 Å, 0.143: 3.50 Å)" in legend  # by hand: logistic centred at 1/4
    assert "FSC = 0.5" in legend and "FSC = 0.143" in legend
    lo, hi = ax.get_ylim()
    assert lo < -0.45 and hi >= 1.0
    lines = {ln.get_label().split(" (")[0]: ln for ln in ax.get_lines()}
    styles = {(lines[k].get_linestyle(), lines[k].get_linewidth()) for k in curves}
    assert len(styles) == len(curves)  # no two curves drawn alike
    assert lines["input"].get_linewidth() > lines["bfactor"].get_linewidth()  # under stays seen
    texts = [t.get_text() for t in ax.texts]
    assert "0.5" in texts and "0.143" in texts
    plt.close(fig)


def test_plot_fsc_writes_a_png(curves, tmp_path):
    out = plot_fsc(curves, tmp_path / "fsc.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
