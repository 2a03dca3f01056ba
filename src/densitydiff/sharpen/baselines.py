"""Classical baselines for map sharpening: the input itself, a low-pass, and optimal-B sharpening.

- "input": the map as given, unchanged.
- "lowpass": the input low-passed (cosine edge) at the input resolution, removing whatever lies
  beyond the resolution the map claims. Truth-free: what a user would do without a model.
- "bfactor": global B-factor sharpening, F(s) * exp(-B s^2 / 4), with the B that maximises the
  real-space correlation over the box (CC_box) with the truth. It uses the truth, so it flatters
  the baseline: no user can pick B this well. B = 0 is a candidate, so its CC_box is never below
  the input's. CC and not FSC is the criterion because an FSC shell is blind to a radial
  scaling (within a shell exp(-B s^2/4) is nearly constant), so FSC-AUC hardly depends on B.
- "guinier": truth-free global B sharpening, what a user can do with the map alone: B from a
  Guinier fit of the map's own spectrum (`filters.guinier_bfactor`: ln <|F|^2> per shell against
  s^2, slope -B/2, between 10 Å and the input resolution), applied as exp(+B s^2/4) and
  low-passed at the input resolution (the amplified shells beyond it hold noise).
- "oracle shell filter" (`shell_filter_oracle`, bench/realmap.py only): the per-shell real
  filter fitted to the truth, the highest CC_box any isotropic linear filter (B-factor,
  low-pass, FSC weighting) can reach: a ceiling to read the other rows against, not a method.
"""

from __future__ import annotations

import numpy as np

from densitydiff.errors import InputError

BASELINES = ("input", "bfactor", "lowpass")
# B range searched (Å^2): sharpening (B < 0) down to -400, a little blurring up to +100.
B_RANGE = (-400.0, 100.0)


def lowpass_baseline(array: np.ndarray, voxel_size, input_resolution: float) -> np.ndarray:
    """The input low-passed with a cosine edge at its own resolution (truth-free)."""
    from densitydiff.filters import lowpass

    return lowpass(array, voxel_size, input_resolution, kind="cosine")


def _spectra(array: np.ndarray, truth: np.ndarray, voxel_size):
    """Full-spectrum cross power Re A T*, |A|^2, s^2 (DC dropped) and the truth's power."""
    if array.shape != truth.shape:
        raise InputError(f"shape mismatch: map {array.shape} vs truth {truth.shape}")
    fa = np.fft.fftn(np.asarray(array, dtype=np.float64))
    ft = np.fft.fftn(np.asarray(truth, dtype=np.float64))
    s2 = _full_s(array.shape, voxel_size).ravel() ** 2
    fa, ft = fa.ravel(), ft.ravel()
    keep = np.arange(fa.size) != 0  # the DC term carries the mean: Pearson CC ignores it
    cross = (fa * ft.conj()).real[keep]
    pa = (fa * fa.conj()).real[keep]
    pt = float(np.sum((ft * ft.conj()).real[keep]))
    return cross, pa, s2[keep], pt


def _full_s(shape, voxel_size) -> np.ndarray:
    """|s| (1/Å) on the full (fftn) spectrum."""
    v = np.broadcast_to(np.asarray(voxel_size, dtype=float), (3,))
    axes = [np.fft.fftfreq(n, d=d) for n, d in zip(shape, v)]
    return np.sqrt(
        axes[0][:, None, None] ** 2 + axes[1][None, :, None] ** 2 + axes[2][None, None, :] ** 2
    )


def bfactor_cc(array: np.ndarray, truth: np.ndarray, voxel_size, b_values) -> np.ndarray:
    """CC_box of bfactor(array, B) with the truth for each B, by Parseval in Fourier space.

    CC(B) = sum w Re(A T*) / sqrt(sum w^2 |A|^2 sum |T|^2) over all non-DC coefficients, with
    w = exp(-B s^2 / 4): the Pearson correlation of the filtered map with the truth.
    """
    cross, pa, s2, pt = _spectra(array, truth, voxel_size)
    out = []
    for b in np.atleast_1d(np.asarray(b_values, dtype=float)):
        w = np.exp(-b * s2 / 4.0)
        num = float(np.dot(w, cross))
        den = np.sqrt(float(np.dot(w * w, pa)) * pt)
        out.append(num / den if den > 0 else 0.0)
    return np.asarray(out)


def optimal_bfactor(
    array: np.ndarray,
    truth: np.ndarray,
    voxel_size,
    b_range: tuple[float, float] = B_RANGE,
    step: float = 10.0,
) -> tuple[float, float]:
    """(B, CC_box) maximising CC_box with the truth: a grid over `b_range` (B = 0 included),
    then a 1 Å^2 grid around the best."""
    lo, hi = float(b_range[0]), float(b_range[1])
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo > 0 or hi < 0:
        raise InputError(f"the B range must contain 0, got {b_range!r}")
    coarse = np.union1d(np.arange(lo, hi + step / 2, step), [0.0])
    cc = bfactor_cc(array, truth, voxel_size, coarse)
    best = float(coarse[int(np.argmax(cc))])
    fine = np.union1d(np.arange(max(lo, best - step), min(hi, best + step) + 0.5, 1.0), [best])
    cc_fine = bfactor_cc(array, truth, voxel_size, fine)
    i = int(np.argmax(cc_fine))
    return float(fine[i]), float(cc_fine[i])


def bfactor_baseline(
    array: np.ndarray, truth: np.ndarray, voxel_size, b_range: tuple[float, float] = B_RANGE
) -> tuple[np.ndarray, float]:
    """(sharpened map, B): global B-factor sharpening with the truth-optimal B (flatters it)."""
    from densitydiff.filters import bfactor

    b, _ = optimal_bfactor(array, truth, voxel_size, b_range)
    return bfactor(array, voxel_size, b), b


def guinier_baseline(
    array: np.ndarray, voxel_size, input_resolution: float
) -> tuple[np.ndarray, float]:
    """(sharpened map, B): the Guinier B removed (exp(+B s^2/4)), low-passed at the input
    resolution (filters.guinier_sharpen); the applied sharpening B is -B."""
    from densitydiff.filters import guinier_sharpen

    return guinier_sharpen(array, voxel_size, input_resolution)


def shell_filter_oracle(
    array: np.ndarray, truth: np.ndarray, voxel_size, mask: np.ndarray | None = None
) -> np.ndarray:
    """The map through w(shell) = sum Re(A T*) / sum |A|^2 per Fourier shell (width the
    coarsest grid spacing of s): of all real per-shell weights, the one that maximises CC_box
    with the truth (CC = sum w c / sqrt(sum w^2 p sum |T|^2) is largest for w proportional to
    c / p). With `mask` the weights are fitted on the masked map and truth (CC inside the mask,
    approximately) and applied to the whole map. It needs the truth: an upper bound for
    isotropic linear sharpening, not a method."""
    if np.asarray(array).shape != np.asarray(truth).shape:
        raise InputError(f"shape mismatch: map {np.shape(array)} vs truth {np.shape(truth)}")
    a = np.asarray(array, dtype=np.float64)
    t = np.asarray(truth, dtype=np.float64)
    m = 1.0 if mask is None else np.asarray(mask, dtype=np.float64)
    fa = np.fft.fftn(a)
    fm, ft = np.fft.fftn((a - a.mean()) * m), np.fft.fftn((t - t.mean()) * m)
    s = _full_s(a.shape, voxel_size)
    width = max(1.0 / (n * d) for n, d in zip(a.shape, np.broadcast_to(voxel_size, (3,))))
    shell = np.rint(s / width).astype(np.int64).ravel()
    cross = np.bincount(shell, (fm * ft.conj()).real.ravel())
    power = np.bincount(shell, (fm * fm.conj()).real.ravel())
    w = np.where(power > 0, cross / np.where(power > 0, power, 1.0), 0.0)
    w[0] = 1.0  # the mean is kept: Pearson CC ignores it
    return np.fft.ifftn(fa * w[shell].reshape(a.shape)).real
