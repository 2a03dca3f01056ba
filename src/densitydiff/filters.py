"""Fourier-space filters on 3-D arrays: low-pass, B-factor, Guinier sharpening, resampling,
padding, z-scores.

Pure functions on numpy arrays in (z, y, x) order. Spatial frequencies s are in 1/Å and come
from the voxel size per axis (numpy.fft.fftfreq(n, d=voxel)), so anisotropic voxels work.

Low-pass conventions (resolution r in Å, s = |spatial frequency|, kernel value at s = 1/r):
- "hard":     1 for s <= 1/r, 0 beyond.                              Value at 1/r: 1.
              A frequency within 1e-9 relative of 1/r counts as on it (float noise: on
              anisotropic grids |s| = 1/r may come out one ulp above), as FSC shells do.
- "cosine":   1 for s <= 1/r - w, raised-cosine fall to 0 at s = 1/r, 0 beyond
              (w = `width` in 1/Å, default 0.15/r).                   Value at 1/r: 0.
- "gaussian": exp(-ln2 * (s r)^2), not band-limited.                 Value at 1/r: 0.5.
"hard" and "cosine" carry no signal beyond 1/r, so the FSC between a filtered map and the
unfiltered one is 1 below 1/r and 0 above: it crosses 0.5 at r (the FSC of each shell does not
depend on the kernel's amplitude there, only on whether it is zero). A Gaussian has no such
crossing; use it for smooth blurring only.
"""

from __future__ import annotations

import numpy as np

from densitydiff.errors import InputError
from densitydiff.maps import DensityMap, voxel_triple

LOWPASS_KINDS = ("hard", "cosine", "gaussian")
BOUNDARY_RTOL = 1e-9  # |s| this close (relative) to a cutoff is on it: float noise, not signal
MOLECULE_PADDING = 9.0  # Å around the density's bounding box: the training boxes' z-score
MOLECULE_SMOOTHING = 2.0  # Å, sigma of the Gaussian the molecule is found on
MOLECULE_TRIM = 1e-3  # fraction of above-threshold voxels each box face may leave out
GUINIER_LOW = 10.0  # Å, where the Guinier fit starts (below it the solvent/shape term dominates)


def within(s: np.ndarray, cutoff: float) -> np.ndarray:
    """s <= cutoff, with frequencies on the cutoff up to float noise counted as on it."""
    return s <= cutoff * (1.0 + BOUNDARY_RTOL)


def _array3(array: np.ndarray, what: str = "array") -> np.ndarray:
    a = np.asarray(array)
    if a.ndim != 3:
        raise InputError(f"{what} must be 3-D, got shape {a.shape}")
    return a


def frequency_magnitude(shape: tuple[int, ...], voxel_size) -> np.ndarray:
    """|s| (1/Å) on the rfftn grid of an array of `shape` with (z, y, x) `voxel_size`."""
    v = np.array(voxel_triple(voxel_size))
    fz = np.fft.fftfreq(shape[0], d=v[0])
    fy = np.fft.fftfreq(shape[1], d=v[1])
    fx = np.fft.rfftfreq(shape[2], d=v[2])
    s2 = fz[:, None, None] ** 2 + fy[None, :, None] ** 2 + fx[None, None, :] ** 2
    return np.sqrt(s2)


def lowpass_kernel(s: np.ndarray, resolution: float, kind: str = "cosine", width=None):
    """The low-pass transfer function at frequencies `s` (1/Å); conventions in the module doc."""
    if not np.isfinite(resolution) or resolution <= 0:
        raise InputError(f"resolution must be a positive number of Å, got {resolution!r}")
    cutoff = 1.0 / resolution
    if kind == "hard":
        return within(s, cutoff).astype(float)
    if kind == "cosine":
        w = 0.15 * cutoff if width is None else float(width)
        if not np.isfinite(w) or w <= 0 or w > cutoff:
            raise InputError(f"cosine edge width must be in (0, 1/resolution] 1/Å, got {width!r}")
        start = cutoff - w
        t = np.clip((s - start) / w, 0.0, 1.0)
        return 0.5 * (1.0 + np.cos(np.pi * t))
    if kind == "gaussian":
        return np.exp(-np.log(2.0) * (s * resolution) ** 2)
    raise InputError(f"unknown low-pass kind {kind!r}; expected one of {LOWPASS_KINDS}")


def _apply(array: np.ndarray, voxel_size, kernel_of_s) -> np.ndarray:
    a = _array3(array)
    s = frequency_magnitude(a.shape, voxel_size)
    spectrum = np.fft.rfftn(a)
    spectrum *= kernel_of_s(s)
    return np.fft.irfftn(spectrum, s=a.shape).astype(a.dtype if a.dtype.kind == "f" else float)


def lowpass(array: np.ndarray, voxel_size, resolution: float, kind: str = "cosine", width=None):
    """Low-pass `array` at `resolution` Å (kind "hard" | "cosine" | "gaussian"; see module doc)."""
    lowpass_kernel(np.zeros(1), resolution, kind, width)  # validate before the FFT
    return _apply(array, voxel_size, lambda s: lowpass_kernel(s, resolution, kind, width))


def bfactor(array: np.ndarray, voxel_size, B: float) -> np.ndarray:
    """Multiply F(s) by exp(-B s^2 / 4): B > 0 blurs, B < 0 sharpens (Debye-Waller factor)."""
    if not np.isfinite(B):
        raise InputError(f"B must be finite, got {B!r}")
    return _apply(array, voxel_size, lambda s: np.exp(-B * s**2 / 4.0))


def _guinier_fit(spectrum: np.ndarray, s: np.ndarray, resolution: float, low: float) -> float:
    """B from the rfftn `spectrum` at frequencies `s`: the least-squares slope of ln <|F|^2> per
    shell against s^2, 1/low to 1/resolution, is -B/2 (the DC term lies outside the range)."""
    if not (np.isfinite(resolution) and 0 < resolution < low):
        raise InputError(f"the Guinier fit needs a resolution below {low:g} Å, got {resolution!r}")
    power = np.abs(spectrum) ** 2
    edges = np.linspace(1.0 / low, 1.0 / resolution, 13)
    x, y = [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        shell = (s >= lo) & (s < hi)
        p = float(power[shell].mean()) if shell.any() else 0.0
        if p > 0:
            x.append(float(np.mean(s[shell] ** 2)))
            y.append(np.log(p))
    if len(x) < 3:
        raise InputError("the map has too few Fourier shells between 10 Å and its resolution")
    return float(-2.0 * np.polyfit(x, y, 1)[0])


def guinier_bfactor(
    array: np.ndarray, voxel_size, resolution: float, low_resolution: float = GUINIER_LOW
) -> float:
    """B (Å^2) of the map's fall-off: least-squares slope of ln <|F|^2>(s) against s^2 over the
    shells from 1/low_resolution to 1/resolution is -B/2 (|F(s)|^2 ~ exp(-B s^2 / 2))."""
    a = _array3(array).astype(np.float64)
    s = frequency_magnitude(a.shape, voxel_size)
    return _guinier_fit(np.fft.rfftn(a), s, resolution, low_resolution)


def guinier_sharpen(
    array: np.ndarray, voxel_size, resolution: float, scale: float = 1.0
) -> tuple[np.ndarray, float]:
    """(map, B): the map's Guinier fall-off B (`guinier_bfactor`) removed, `scale` x B of it,
    as exp(+scale B s^2/4), then low-passed (cosine) at `resolution`: the automatic
    post-processing that most deposited cryo-EM maps have had."""
    if not (np.isfinite(scale) and scale >= 0):
        raise InputError(f"the sharpening scale must be a number >= 0, got {scale!r}")
    a = _array3(array).astype(np.float64)
    s = frequency_magnitude(a.shape, voxel_size)
    spectrum = np.fft.rfftn(a)  # one transform: the fit and the filter share it
    b = _guinier_fit(spectrum, s, resolution, GUINIER_LOW)
    # one kernel: exp(+B s^2/4) alone reaches ~1e4 at Nyquist for B ~ 450 (float32 loses the map)
    kernel = np.exp(scale * b * s**2 / 4.0) * lowpass_kernel(s, resolution, "cosine")
    out = np.fft.irfftn(spectrum * kernel, s=a.shape)
    kind = np.asarray(array).dtype
    return out.astype(kind if kind.kind == "f" else float), b


def _resample_matrix(n_old: int, v_old: float, n_new: int, v_new: float) -> np.ndarray:
    """(n_new, n_old) matrix taking a 1-D FFT to samples of its trigonometric interpolant.

    The interpolant is truncated at the new Nyquist frequency; terms exactly at it get half
    weight (the symmetric choice), the old Nyquist term of an even length is a cosine.
    """
    m = np.fft.fftfreq(n_old) * n_old  # integer frequency indices
    f = m / (n_old * v_old)  # 1/Å
    nyq_new = 0.5 / v_new
    tol = 1e-9 / v_new
    x = np.arange(n_new) * v_new
    phase = np.exp(2j * np.pi * x[:, None] * f[None, :])
    weight = np.where(np.abs(f) < nyq_new - tol, 1.0, np.where(np.abs(f) <= nyq_new + tol, 0.5, 0))
    if n_old % 2 == 0:  # old Nyquist term: a real cosine, kept whole when representable
        k = n_old // 2
        fn = abs(f[k])
        phase[:, k] = np.cos(2 * np.pi * x * fn)
        weight[k] = 1.0 if fn <= nyq_new + tol else 0.0
    return phase * weight[None, :] / n_old


def resample(density: DensityMap, voxel_size) -> DensityMap:
    """Fourier-resample onto `voxel_size` (float or z y x): same origin, extent kept to ±v/2.

    The new box has round(extent / voxel_size) voxels per axis of exactly `voxel_size`, voxel 0
    stays at the same origin; the map is the band-limited (periodic) interpolant of the input,
    low-passed at the new Nyquist frequency when downsampling. Works for anisotropic input and
    non-cubic boxes.
    """
    new_v = np.array(voxel_triple(voxel_size))
    a = np.asarray(density.array, dtype=np.float64)
    old_v = np.asarray(density.voxel_size)
    new_shape = [max(1, int(round(n * v / nv))) for n, v, nv in zip(a.shape, old_v, new_v)]
    out = a.astype(np.complex128)
    for axis in range(3):
        spectrum = np.fft.fft(out, axis=axis)
        mat = _resample_matrix(a.shape[axis], old_v[axis], new_shape[axis], new_v[axis])
        out = np.moveaxis(np.tensordot(mat, np.moveaxis(spectrum, axis, 0), axes=(1, 0)), 0, axis)
    return DensityMap(out.real.astype(np.float32), tuple(new_v), density.origin, None)


def pad_or_crop(array: np.ndarray, shape, value: float = 0.0) -> np.ndarray:
    """Pad with `value` or crop to `shape`, keeping voxel n//2 at the new box's n//2."""
    a = _array3(array)
    shape = tuple(int(n) for n in np.broadcast_to(np.asarray(shape), (3,)))
    if min(shape) <= 0:
        raise InputError(f"shape must be positive, got {shape}")
    out = np.full(shape, value, dtype=a.dtype)
    src, dst = [], []
    for n_old, n_new in zip(a.shape, shape):
        offset = n_new // 2 - n_old // 2  # where old index 0 lands in the new box
        lo_new, hi_new = max(0, offset), min(n_new, offset + n_old)
        src.append(slice(lo_new - offset, hi_new - offset))
        dst.append(slice(lo_new, hi_new))
    out[tuple(dst)] = a[tuple(src)]
    return out


def zscore(array: np.ndarray, mask=None) -> tuple[np.ndarray, tuple[float, float]]:
    """(array - mean) / std with mean and std over `mask` (all voxels if None; a boolean array,
    or a tuple of slices: a box, read as a view); returns (z, stats)."""
    a = np.asarray(array)
    if mask is None:
        values = a
    else:
        values = a[mask if isinstance(mask, tuple) else np.asarray(mask, dtype=bool)]
    if values.size == 0:
        raise InputError("zscore: the mask selects no voxels")
    if not np.all(np.isfinite(values)):
        raise InputError("zscore: the array holds NaN or infinite values")
    mean, std = float(values.mean()), float(values.std())
    if std <= 0:
        raise InputError("zscore: the array is constant (standard deviation 0)")
    return ((a - mean) / std).astype(a.dtype if a.dtype.kind == "f" else float), (mean, std)


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold: the histogram split that maximises the between-class variance."""
    v = np.asarray(values, dtype=np.float64).ravel()
    counts, edges = np.histogram(v, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(counts)[:-1]
    w1 = v.size - w0
    cum = np.cumsum(counts * centres)
    m0 = cum[:-1] / np.maximum(w0, 1)
    m1 = (cum[-1] - cum[:-1]) / np.maximum(w1, 1)
    return float(edges[1:-1][np.argmax(w0 * w1 * (m0 - m1) ** 2)])


def molecule_box(array: np.ndarray, voxel_size, padding: float = MOLECULE_PADDING) -> tuple:
    """(z, y, x) slices of the box a training map would have around this map's molecule.

    Training maps are z-scored over their box, the atoms' bounding box plus a fixed padding; a
    real map often sits in a box of mostly solvent, whose whole-grid z-score would shrink its
    density's scale several-fold. The molecule is where the map smoothed with a Gaussian of
    MOLECULE_SMOOTHING Å lies above Otsu's threshold; its bounding box (each face may leave
    out MOLECULE_TRIM of those voxels, so specks of noise do not stretch it) grows by
    `padding` Å and is clipped to the map. A constant map gives the whole grid.
    """
    from scipy import ndimage

    a = _array3(array)
    if not np.all(np.isfinite(a)):
        raise InputError("the map holds NaN or infinite values")
    voxel = np.asarray(voxel_triple(voxel_size))
    smooth = ndimage.gaussian_filter(
        a.astype(np.float32), MOLECULE_SMOOTHING / voxel, mode="nearest"
    )
    if not float(smooth.max()) > float(smooth.min()):
        return tuple(slice(0, n) for n in a.shape)
    inside = smooth > otsu_threshold(smooth)
    del smooth
    box = []
    for axis, n in enumerate(a.shape):
        others = tuple(i for i in range(3) if i != axis)
        cum = np.cumsum(inside.sum(axis=others))
        lo = int(np.searchsorted(cum, MOLECULE_TRIM * cum[-1], side="right"))
        hi = int(np.searchsorted(cum, (1 - MOLECULE_TRIM) * cum[-1], side="left"))
        pad = int(np.ceil(padding / voxel[axis]))
        box.append(slice(max(0, lo - pad), min(n, hi + 1 + pad)))
    return tuple(box)


def unzscore(array: np.ndarray, stats: tuple[float, float]) -> np.ndarray:
    """Undo `zscore`: array * std + mean."""
    mean, std = stats
    return np.asarray(array) * std + mean


def soft_edge(binary: np.ndarray, voxel_size, width: float) -> np.ndarray:
    """A mask that is 1 on `binary` and falls to 0 as a raised cosine over `width` Å outside it.

    value = (1 + cos(pi d / width)) / 2 at distance d (Å, Euclidean to the nearest mask voxel),
    0 beyond `width`, as RELION's mask_create --width_soft_edge. width 0 gives the binary mask.
    """
    from scipy import ndimage

    inside = np.asarray(binary, dtype=bool)
    if inside.ndim != 3:
        raise InputError(f"a mask must be 3-D, got shape {inside.shape}")
    if not np.any(inside):
        raise InputError("the mask is empty (no voxel inside)")
    width = float(width)
    if not np.isfinite(width) or width < 0:
        raise InputError(f"soft edge width must be >= 0 Å, got {width!r}")
    if width == 0:
        return inside.astype(np.float32)
    distance = ndimage.distance_transform_edt(~inside, sampling=voxel_triple(voxel_size))
    edge = 0.5 * (1.0 + np.cos(np.pi * np.minimum(distance, width) / width))
    return np.where(inside, 1.0, np.where(distance < width, edge, 0.0)).astype(np.float32)
