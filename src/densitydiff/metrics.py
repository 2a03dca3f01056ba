"""Map-quality metrics: Fourier shell correlation, its resolution and area, PSNR, SSIM and CC.

Conventions (see docs/metrics.md for the full definitions):

- Frequencies are spatial frequencies |s| in 1/Å, computed per axis from the voxel size, so
  non-cubic boxes and anisotropic voxels are handled. Shells have width 1/(largest box edge in Å)
  (one Fourier voxel, 1/(N*voxel), for a cubic box), shell k holds |s| in [(k-1/2)w, (k+1/2)w)
  and is reported at its centre k*w; shells run from 0 (DC) up to the Nyquist frequency of the
  coarsest axis, 1/(2*max(voxel_size)).
- The FSC uses rfftn (half the spectrum). Every half-spectrum coefficient whose conjugate partner
  is not itself stored counts twice, so the shell sums equal those over the full spectrum.
- PSNR and SSIM are computed by scikit-image after z-scoring both maps over the box
  (mean 0, standard deviation 1), with data_range = max - min of the z-scored truth.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from densitydiff.errors import InputError
from densitydiff.maps import voxel_triple

__all__ = [
    "FSCCurve",
    "fsc",
    "resolution_at",
    "fsc_auc",
    "randomisation_frequency",
    "phase_randomise",
    "corrected_fsc",
    "MaskedFSC",
    "masked_fsc",
    "psnr",
    "ssim",
    "cc",
    "compare_maps",
]


@dataclass
class FSCCurve:
    """An FSC curve: shell-centre `frequencies` (1/Å), correlations `fsc`, and the voxel size.

    `counts` is the number of Fourier voxels per shell over the full (not half) spectrum.
    """

    frequencies: np.ndarray
    fsc: np.ndarray
    voxel_size: tuple[float, float, float]
    counts: np.ndarray | None = None

    @property
    def nyquist(self) -> float:
        """Nyquist frequency (1/Å) of the coarsest axis: the last frequency the curve can reach."""
        return 1.0 / (2.0 * max(self.voxel_size))

    @property
    def resolutions(self) -> np.ndarray:
        """Shell resolutions in Å (1/frequency; inf for the DC shell)."""
        with np.errstate(divide="ignore"):
            return 1.0 / self.frequencies


# ---------------------------------------------------------------------------------------------
# input checks


def _as_map(a, name: str) -> np.ndarray:
    """A finite float array (float64 stays float64, anything else becomes float32)."""
    arr = np.asarray(a)
    if arr.dtype == np.float64:
        out = arr
    elif np.issubdtype(arr.dtype, np.number) or arr.dtype == bool:
        if np.iscomplexobj(arr):
            raise InputError(f"{name} must be real, got dtype {arr.dtype}")
        out = arr.astype(np.float32, copy=False)
    else:
        raise InputError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    # a finite sum proves every value finite (one read-only pass); else check voxel by voxel
    if not np.isfinite(np.sum(out, dtype=np.float64)) and not np.all(np.isfinite(out)):
        raise InputError(f"{name} contains NaN or infinite values")
    return out


def _pair(a, b, names=("a", "b"), ndim: int | None = 3) -> tuple[np.ndarray, np.ndarray]:
    a = _as_map(a, names[0])
    b = _as_map(b, names[1])
    if a.shape != b.shape:
        raise InputError(f"shape mismatch: {names[0]} {a.shape} vs {names[1]} {b.shape}")
    if ndim is not None and a.ndim != ndim:
        raise InputError(f"maps must be {ndim}-D, got shape {a.shape}")
    if a.size < 2:
        raise InputError(f"maps must have at least 2 voxels, got shape {a.shape}")
    if a.dtype != b.dtype:  # compute in the wider precision
        a, b = a.astype(np.float64, copy=False), b.astype(np.float64, copy=False)
    return a, b


def _check_mask(mask, shape: tuple[int, ...]) -> np.ndarray:
    m = np.asarray(mask)
    if m.shape != tuple(shape):
        raise InputError(f"mask shape {m.shape} does not match the maps {tuple(shape)}")
    if m.dtype != bool and not np.issubdtype(m.dtype, np.number):
        raise InputError(f"mask must be boolean or numeric, got dtype {m.dtype}")
    if np.iscomplexobj(m) or not np.all(np.isfinite(m)):
        raise InputError("mask contains NaN, infinite or complex values")
    return m


# ---------------------------------------------------------------------------------------------
# FSC


@functools.lru_cache(maxsize=2)
def _shells(shape: tuple[int, int, int], voxel: tuple[float, float, float]):
    """Shell labels for the rfftn half spectrum, with the Hermitian weights folded in.

    With n shells, labels 0..n-1 mark coefficients that stand for themselves and their conjugate
    (weight 2), labels n+1..2n self-paired ones (x-frequency 0, or the Nyquist column of an even
    x axis; weight 1); n and 2n+1 collect what lies beyond the last shell. One bincount with
    these labels gives weighted shell sums without multiplying by weights.
    """
    nz, ny, nx = shape
    vz, vy, vx = voxel
    width = 1.0 / max(n * v for n, v in zip(shape, voxel))
    n = int(math.floor((1.0 / (2.0 * max(voxel))) / width + 1e-9)) + 1
    sz = np.fft.fftfreq(nz, d=vz)[:, None, None]
    sy = np.fft.fftfreq(ny, d=vy)[None, :, None]
    sx = np.fft.rfftfreq(nx, d=vx)[None, None, :]
    labels = np.empty((nz, ny, sx.shape[-1]), dtype=np.intp)
    step = max(1, (1 << 17) // labels[0].size)  # z-slabs that stay in cache
    for z in range(0, nz, step):
        x = (sz[z : z + step] ** 2 + sy * sy) + sx * sx  # |s|^2 in 1/Å^2, float64: exact edges
        np.sqrt(x, out=x)
        x *= 1.0 / width
        x += 0.5 + 1e-9  # shell k = [(k-1/2)w, (k+1/2)w); on or 1e-9 w inside a boundary: outward
        np.minimum(x, n, out=x)  # everything beyond the last shell into bin n
        labels[z : z + step] = x  # truncation = floor for x >= 0
    labels[..., 0] += n + 1
    if nx % 2 == 0 and nx > 1:
        labels[..., -1] += n + 1
    labels = labels.ravel()
    labels.flags.writeable = False
    raw = np.bincount(labels, minlength=2 * n + 2)
    counts = 2 * raw[:n] + raw[n + 1 : 2 * n + 1]
    frequencies = np.arange(n) * width
    return labels, n, frequencies, counts


def _shell_sums(labels: np.ndarray, n: int, f1: np.ndarray, f2: np.ndarray) -> np.ndarray:
    """Full-spectrum shell sums of Re F1 F2*, |F1|^2 and |F2|^2 from half spectra, rows 0-2.

    Works through slabs of z-planes (~2^17 coefficients) so the products and their float64
    copies for bincount stay in cache; that is ~1.5x faster than whole-volume temporaries.
    """
    planes = labels.reshape(f1.shape)
    step = max(1, (1 << 17) // (f1.shape[1] * f1.shape[2]))
    raw = np.zeros((3, 2 * n + 2))
    for z in range(0, f1.shape[0], step):
        c1, c2 = f1[z : z + step], f2[z : z + step]
        lab = planes[z : z + step].ravel()
        # real/imaginary parts as a trailing axis of 2, so products need no complex temporaries
        r1 = c1.view(c1.real.dtype).reshape(*c1.shape, 2)
        r2 = c2.view(c2.real.dtype).reshape(*c2.shape, 2)
        for row, (x, y) in enumerate(((r1, r2), (r1, r1), (r2, r2))):
            prod = np.einsum("...i,...i->...", x, y)  # Re x y* for x, y viewed as complex
            raw[row] += np.bincount(lab, weights=prod.ravel(), minlength=2 * n + 2)
    return 2.0 * raw[:, :n] + raw[:, n + 1 : 2 * n + 1]


def _rfftn(a: np.ndarray) -> np.ndarray:
    import scipy.fft

    return scipy.fft.rfftn(a, workers=-1)


def fsc(a, b, voxel_size, mask=None) -> FSCCurve:
    """Fourier shell correlation of two maps on one grid, optionally both multiplied by a mask.

    FSC(k) = Re sum F1 F2* / sqrt(sum |F1|^2 sum |F2|^2) over shell k (van Heel & Schatz 2005,
    eq. 1); shells with zero power in either map get 0. Float32 maps are transformed in float32
    (speed), float64 maps in float64 (exactness).
    """
    a, b = _pair(a, b)
    voxel = voxel_triple(voxel_size)
    if mask is not None:
        m = _check_mask(mask, a.shape).astype(a.dtype, copy=False)
        a = a * m
        b = b * m
    labels, n, frequencies, counts = _shells(tuple(int(s) for s in a.shape), voxel)
    f1 = _rfftn(a)
    f2 = _rfftn(b)
    num, d1, d2 = _shell_sums(labels, n, f1, f2)
    den = np.sqrt(d1 * d2)
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    corr = np.clip(corr, -1.0, 1.0)
    return FSCCurve(frequencies.copy(), corr, voxel, counts.copy())


def _check_curve(curve: FSCCurve) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(curve.frequencies, dtype=float)
    c = np.asarray(curve.fsc, dtype=float)
    if f.ndim != 1 or f.shape != c.shape or f.size < 2:
        raise InputError("an FSC curve needs matching 1-D frequency and fsc arrays of >= 2 shells")
    if not (np.all(np.isfinite(f)) and np.all(np.isfinite(c))):
        raise InputError("the FSC curve contains NaN or infinite values")
    return f, c


def resolution_at(curve: FSCCurve, threshold: float) -> float:
    """Resolution (Å) where the FSC first falls below `threshold` (e.g. 0.143 or 0.5).

    Shells are scanned from shell 1 (the DC shell 0 is skipped); at the first shell i below the
    threshold the frequency is interpolated linearly between shells i-1 and i (if i is 1, shell
    1's own frequency is used). A curve that never falls below gives the Nyquist resolution
    2*max(voxel_size).
    """
    t = float(threshold)
    if not math.isfinite(t) or not -1.0 < t < 1.0:
        raise InputError(f"FSC threshold must lie in (-1, 1), got {threshold!r}")
    f, c = _check_curve(curve)
    below = np.flatnonzero(c[1:] < t) + 1
    if below.size == 0:
        return float(1.0 / curve.nyquist)
    i = int(below[0])
    if i == 1:
        return float(1.0 / f[1])
    # linear interpolation of the crossing between shells i-1 (>= t) and i (< t)
    frac = (c[i - 1] - t) / (c[i - 1] - c[i])
    freq = f[i - 1] + frac * (f[i] - f[i - 1])
    return float(1.0 / freq)


def fsc_auc(curve: FSCCurve, max_frequency: float | None = None) -> float:
    """Mean FSC over frequency: the area under the curve from shell 1 to `max_frequency` (1/Å).

    The curve is taken as piecewise linear between shell centres and integrated from shell 1's
    frequency to `max_frequency` (default and upper limit: the last shell), divided by the
    length of that interval, so FSC == 1 gives 1. The DC shell is skipped.
    """
    f, c = _check_curve(curve)
    f_lo, f_hi = f[1], f[-1]
    if max_frequency is not None:
        mf = float(max_frequency)
        if not math.isfinite(mf) or mf <= f_lo:
            raise InputError(
                f"max_frequency must be finite and above the first shell ({f_lo:.4g} 1/Å), "
                f"got {max_frequency!r}"
            )
        f_hi = min(mf, f_hi)
    inside = (f > f_lo) & (f < f_hi)
    xs = np.concatenate([[f_lo], f[inside], [f_hi]])
    ys = np.interp(xs, f, c)
    area = np.sum(0.5 * (ys[1:] + ys[:-1]) * np.diff(xs))  # trapezoid rule on a linear curve
    return float(area / (f_hi - f_lo))


# ---------------------------------------------------------------------------------------------
# masked FSC with the phase-randomisation correction (Chen et al. 2013, Ultramicroscopy 135:24)


def randomisation_frequency(curve: FSCCurve, threshold: float = 0.8) -> float:
    """Frequency (1/Å) beyond which phases are randomised: where the FSC first drops below
    `threshold` (0.8, RELION's default), interpolated as in `resolution_at`."""
    return 1.0 / resolution_at(curve, threshold)


def phase_randomise(array, voxel_size, frequency: float, seed=0) -> np.ndarray:
    """`array` with the Fourier phases beyond `frequency` (1/Å) made random, amplitudes kept.

    The random phases are those of the transform of real white noise, so they have the
    Hermitian symmetry of a real map and the result is real. Float64 out.
    """
    a = _as_map(array, "array").astype(np.float64)
    if a.ndim != 3:
        raise InputError(f"maps must be 3-D, got shape {a.shape}")
    voxel = voxel_triple(voxel_size)
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfftn(a)
    phases = np.fft.rfftn(rng.standard_normal(a.shape))
    sz = np.fft.fftfreq(a.shape[0], d=voxel[0])[:, None, None]
    sy = np.fft.fftfreq(a.shape[1], d=voxel[1])[None, :, None]
    sx = np.fft.rfftfreq(a.shape[2], d=voxel[2])[None, None, :]
    beyond = np.sqrt(sz**2 + sy**2 + sx**2) > frequency
    unit = phases / np.where(np.abs(phases) > 0, np.abs(phases), 1.0)
    spectrum = np.where(beyond, np.abs(spectrum) * unit, spectrum)
    return np.fft.irfftn(spectrum, s=a.shape)


def corrected_fsc(
    fsc_masked: FSCCurve, fsc_randomised: FSCCurve, frequency: float
) -> FSCCurve:
    """FSC_true = (FSC_t - FSC_n) / (1 - FSC_n) beyond `frequency`, FSC_t below it.

    Chen et al. 2013 eq. 5: FSC_t of the masked maps, FSC_n of the masked phase-randomised maps;
    the difference is the correlation the mask itself added. A shell with FSC_n = 1 gives 0.
    """
    f, t = _check_curve(fsc_masked)
    f_n, n = _check_curve(fsc_randomised)
    if f.shape != f_n.shape or not np.allclose(f, f_n):
        raise InputError("the masked and phase-randomised FSC curves have different shells")
    with np.errstate(divide="ignore", invalid="ignore"):
        true = np.where(n < 1.0, (t - n) / np.where(n < 1.0, 1.0 - n, 1.0), 0.0)
    out = np.where(f > frequency, true, t)
    return FSCCurve(f.copy(), np.clip(out, -1.0, 1.0), fsc_masked.voxel_size, fsc_masked.counts)


@dataclass
class MaskedFSC:
    """The curves of a masked FSC: unmasked, masked (FSC_t), phase-randomised masked (FSC_n),
    corrected (FSC_true), and the frequency (1/Å) beyond which phases were randomised."""

    unmasked: FSCCurve
    masked: FSCCurve
    randomised: FSCCurve
    corrected: FSCCurve
    frequency: float


def masked_fsc(a, b, voxel_size, mask, threshold: float = 0.8, seed=0) -> MaskedFSC:
    """Masked FSC of two half maps with the phase-randomisation correction (RELION postprocess).

    Phases of both maps are randomised (independently) beyond the frequency where the
    unmasked FSC first drops below `threshold`; the masked FSC of those maps measures what
    the mask alone correlates, and `corrected_fsc` removes it.
    """
    a, b = _pair(a, b)
    m = _check_mask(mask, a.shape)
    unmasked = fsc(a, b, voxel_size)
    masked = fsc(a, b, voxel_size, mask=m)
    frequency = randomisation_frequency(unmasked, threshold)
    seeds = np.random.SeedSequence(seed).spawn(2)
    ra = phase_randomise(a, voxel_size, frequency, np.random.default_rng(seeds[0]))
    rb = phase_randomise(b, voxel_size, frequency, np.random.default_rng(seeds[1]))
    randomised = fsc(ra, rb, voxel_size, mask=m.astype(np.float64))
    return MaskedFSC(
        unmasked, masked, randomised, corrected_fsc(masked, randomised, frequency), frequency
    )


# ---------------------------------------------------------------------------------------------
# real-space metrics


def _zscore(x: np.ndarray) -> np.ndarray:
    """Mean 0, standard deviation 1 over the box (float64); a constant map becomes all zeros."""
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean()
    std = x.std()
    return x / std if std > 0 else x


def _normalised_pair(estimate, truth) -> tuple[np.ndarray, np.ndarray, float]:
    est, tru = _pair(estimate, truth, names=("estimate", "truth"), ndim=None)
    if np.ptp(tru) == 0:
        raise InputError("truth map is constant: PSNR/SSIM are undefined")
    tz = _zscore(tru)
    ez = _zscore(est)
    return ez, tz, float(tz.max() - tz.min())


def psnr(estimate, truth) -> float:
    """PSNR (dB) of the z-scored estimate against the z-scored truth, data_range from the truth.

    Identical normalised maps give inf.
    """
    from skimage.metrics import peak_signal_noise_ratio

    ez, tz, data_range = _normalised_pair(estimate, truth)
    if np.array_equal(ez, tz):
        return math.inf
    return float(peak_signal_noise_ratio(tz, ez, data_range=data_range))


def ssim(estimate, truth) -> float:
    """Mean SSIM (scikit-image defaults: 7-voxel uniform window) of the z-scored maps."""
    from skimage.metrics import structural_similarity

    ez, tz, data_range = _normalised_pair(estimate, truth)
    if min(tz.shape) < 7:
        raise InputError(f"SSIM needs every axis >= 7 voxels, got shape {tz.shape}")
    return float(structural_similarity(tz, ez, data_range=data_range))


def cc(a, b, mask=None) -> float:
    """Pearson correlation over the box, or over the voxels where the boolean `mask` is True.

    Returns 0 when either map is constant over those voxels (no linear association).
    """
    a, b = _pair(a, b, ndim=None)
    if mask is not None:
        m = _check_mask(mask, a.shape)
        if m.dtype != bool:
            if not np.all((m == 0) | (m == 1)):
                raise InputError("cc needs a boolean (0/1) mask, got fractional values")
            m = m.astype(bool)
        if np.count_nonzero(m) < 2:
            raise InputError("cc mask selects fewer than 2 voxels")
        a, b = a[m], b[m]
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    x = x - x.mean()
    y = y - y.mean()
    den = math.sqrt(float(np.dot(x, x)) * float(np.dot(y, y)))
    if den == 0:
        return 0.0
    return float(np.clip(np.dot(x, y) / den, -1.0, 1.0))


def compare_maps(estimate, truth, voxel_size, mask=None) -> dict:
    """All metrics of an estimate against the truth; `mask` (boolean) is used for cc_mask only.

    Keys: "fsc_0.5", "fsc_0.143" (Å), "fsc_auc", "psnr" (dB), "ssim", "cc_box", "cc_mask"
    (None without a mask). The FSC is unmasked: a hard atom mask would add correlated edges.
    """
    est, tru = _pair(estimate, truth, names=("estimate", "truth"))
    curve = fsc(est, tru, voxel_size)
    return {
        "fsc_0.5": resolution_at(curve, 0.5),
        "fsc_0.143": resolution_at(curve, 0.143),
        "fsc_auc": fsc_auc(curve),
        "psnr": psnr(est, tru),
        "ssim": ssim(est, tru),
        "cc_box": cc(est, tru),
        "cc_mask": None if mask is None else cc(est, tru, mask),
    }
