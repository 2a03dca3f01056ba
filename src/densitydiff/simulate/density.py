"""Atomic model -> density map: gemmi's scattering-factor sums, band-limited in Fourier space.

Resolution convention (see docs/simulate.md): a map simulated at resolution r holds the model's
Fourier components for |s| < 1/r and none at or beyond 1/r (default cosine edge: 1 up to
0.85/r, 0 at 1/r; `lowpass_kind="hard"`: 1 up to 1/r). The FSC between it and the same model
simulated at a finer resolution therefore crosses 0.5 at r.

How: gemmi.DensityCalculatorE (electron scattering factors, International Tables C 4.3.2.2) or
DensityCalculatorX (X-ray, IT92) sums each atom's Gaussians, blurred by an extra B so that the
grid samples them without aliasing, on an orthogonal P1 box (no crystal cell, no symmetry mates)
that holds the atoms' whole density; in Fourier space the extra blur is divided out
(exp(+B s^2/4)) and the low-pass applied, then the box is cropped to the requested grid.
"""

from __future__ import annotations

import math
import os

import gemmi
import numpy as np

from densitydiff.errors import InputError
from densitydiff.filters import frequency_magnitude, lowpass_kernel, within
from densitydiff.maps import DensityMap, voxel_triple

SCATTERING = ("electron", "xray")
_EPS = 1e-3  # aliasing left in the pass band, relative (sets the extra blur)
_CUTOFF = 1e-5  # gemmi: an atom's density is summed out to where it drops below this
_SQRT2P1 = 1.0 + math.sqrt(2.0)


def _load(structure) -> gemmi.Structure:
    if isinstance(structure, gemmi.Structure):
        return structure
    if isinstance(structure, str | os.PathLike):
        from densitydiff.structures import read_structure

        return read_structure(structure)
    raise InputError(f"structure must be a gemmi.Structure or a path, got {type(structure)}")


def _atoms(structure) -> tuple[np.ndarray, list, np.ndarray, np.ndarray]:
    """Model 1's atoms: positions (N, 3) in (z, y, x) Å, element names, occupancies, B-factors.

    Element names, not gemmi.Element objects: those point into the structure, which is freed
    when it was read here from a path (that gave different maps on each call).
    """
    st = _load(structure)
    if len(st) == 0:
        raise InputError("the structure has no models")
    pos, elements, occ, b = [], [], [], []
    for cra in st[0].all():
        atom = cra.atom
        if atom.element.atomic_number == 0:
            raise InputError(
                f"atom {cra.chain.name}/{cra.residue.name}{cra.residue.seqid.num}/{atom.name} "
                "has an unknown element; read the file with read_structure(fix_elements=True)"
            )
        p = atom.pos
        pos.append((p.z, p.y, p.x))
        elements.append(atom.element.name)
        occ.append(atom.occ)
        b.append(atom.b_iso)
    if not pos:
        raise InputError("the structure has no atoms")
    pos_a, occ_a, b_a = np.asarray(pos, dtype=float), np.asarray(occ), np.asarray(b)
    bad = ~(np.isfinite(pos_a).all(axis=1) & np.isfinite(occ_a) & np.isfinite(b_a))
    if bad.any():
        raise InputError(
            f"the structure has {int(bad.sum())} atoms with NaN or infinite coordinates, "
            "occupancies or B-factors"
        )
    return pos_a, elements, occ_a, b_a


def _positive(value, name: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"{name} must be a positive number of Å, got {value!r}")
    return value


def _rotation(rotation) -> np.ndarray:
    r = np.asarray(rotation, dtype=float)
    if r.shape != (3, 3) or not np.all(np.isfinite(r)):
        raise InputError(f"rotation must be a finite 3x3 matrix, got shape {r.shape}")
    if not np.allclose(r @ r.T, np.eye(3), atol=1e-4) or np.linalg.det(r) <= 0:
        raise InputError("rotation must be a proper rotation matrix (orthonormal, det +1)")
    return r


def _fast_len(n: int) -> int:
    """Smallest 2^a 3^b 5^c >= n (fast FFT sizes)."""
    best = 2 * n
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            p = p35
            while p < n:
                p *= 2
            best = min(best, p)
            p35 *= 3
        p5 *= 5
    return best


def _calculator(scattering: str):
    if scattering == "electron":
        return gemmi.DensityCalculatorE()
    if scattering in ("xray", "x-ray"):
        return gemmi.DensityCalculatorX()
    raise InputError(f"unknown scattering {scattering!r}; expected one of {SCATTERING}")


def _box(pos, voxel, padding, like, shape, center):
    """(origin (z y x) Å, shape) of the output grid."""
    if like is not None:
        if not isinstance(like, DensityMap):
            raise InputError(f"like must be a DensityMap, got {type(like)}")
        return np.asarray(like.origin, dtype=float), tuple(like.shape)
    if shape is not None:
        n = np.broadcast_to(np.asarray(shape), (3,))
        if not np.all(n == np.round(n)) or np.any(n <= 0):
            raise InputError(f"shape must be positive integers (z, y, x), got {shape!r}")
        n = n.astype(int)
        return center - (n // 2) * voxel, tuple(int(k) for k in n)
    padding = float(padding)
    if not math.isfinite(padding) or padding < 0:
        raise InputError(f"padding must be >= 0 Å, got {padding!r}")
    lo = pos.min(axis=0) - padding
    hi = pos.max(axis=0) + padding
    n = np.ceil((hi - lo) / voxel).astype(int) + 1
    return lo, tuple(int(k) for k in n)


def _placed_atoms(structure, center, rotation):
    """Atoms (positions (z, y, x) Å, elements, occupancies, B) turned by `rotation` about
    `center` (default: their centroid), and that centre."""
    pos, elements, occ, b = _atoms(structure)
    if center is None:
        center = pos.mean(axis=0)
    else:
        center = np.broadcast_to(np.asarray(center, dtype=float), (3,))
        if not np.all(np.isfinite(center)):
            raise InputError(f"center must be a finite (z, y, x) triple, got {center!r}")
    if rotation is not None:
        pos = (pos - center) @ _rotation(rotation).T + center
    return pos, elements, occ, b, center


def simulation_grid(
    structure,
    voxel_size=1.0,
    *,
    padding: float = 10.0,
    shape=None,
    center=None,
    rotation=None,
) -> DensityMap:
    """The (empty) grid `simulate_map` fills for these arguments without `like`.

    A box of `shape` (z, y, x) whose voxel n//2 sits at `center`, else a box around the
    (rotated) atoms with `padding` Å; pass it as `like` to simulate several resolutions on it.
    """
    pos, _, _, _, center = _placed_atoms(structure, center, rotation)
    voxel = np.array(voxel_triple(voxel_size))
    origin, out_shape = _box(pos, voxel, padding, None, shape, center)
    return DensityMap(np.zeros(out_shape, np.float32), tuple(voxel), tuple(origin))


def _max_radius(calc, elements: list, b: np.ndarray) -> float:
    """gemmi's summation radius (Å) for the widest of these elements at the largest B."""
    radius = 0.0
    probe = gemmi.Atom()
    probe.occ = 1.0
    probe.b_iso = float(b.max())
    for name in set(elements):
        probe.element = gemmi.Element(name)
        radius = max(radius, calc.estimate_radius(probe))
    return radius


def _extra_blur(s_alias: float, s_band: float) -> float:
    """The B (Å^2) that damps the aliased copies at |s| >= s_alias to _EPS relative to s_band."""
    return 4.0 * math.log(1.0 / _EPS) / (s_alias**2 - s_band**2)


def _gemmi_density(calc, pos, elements, occ, b, extent, n_fine) -> np.ndarray:
    """gemmi's blurred density of the atoms (positions relative to the box corner, z y x Å) on
    a P1 box of `extent` Å sampled `n_fine` voxels; returned as a (z, y, x) float64 array."""
    # gemmi works in x, y, z: reverse our (z, y, x) axes.
    grid = calc.grid
    grid.set_unit_cell(gemmi.UnitCell(extent[2], extent[1], extent[0], 90, 90, 90))
    grid.spacegroup = gemmi.find_spacegroup_by_name("P1")
    grid.set_size(int(n_fine[2]), int(n_fine[1]), int(n_fine[0]))
    grid.fill(0.0)
    model = gemmi.Model("1")
    chain = gemmi.Chain("A")
    residue = gemmi.Residue()
    residue.name = "UNK"
    element_of = {name: gemmi.Element(name) for name in set(elements)}
    for p, el, o, bi in zip(pos, elements, occ, b):
        atom = gemmi.Atom()
        atom.element = element_of[el]
        atom.pos = gemmi.Position(p[2], p[1], p[0])
        atom.occ = float(o)
        atom.b_iso = float(bi)
        residue.add_atom(atom)
    chain.add_residue(residue)
    model.add_chain(chain)
    calc.add_model_density_to_grid(model)
    return np.array(grid, copy=False).transpose(2, 1, 0).astype(np.float64)


def _band_limited(fine, v_fine, blur, resolution, lowpass_kind, s_band, n_ext) -> np.ndarray:
    """Fourier space: remove the extra blur, low-pass, cut to the `n_ext` grid's frequencies."""
    n_fine = np.asarray(fine.shape)
    spectrum = np.fft.rfftn(fine)
    s = frequency_magnitude(fine.shape, v_fine)
    spectrum *= (
        np.exp(blur * s**2 / 4.0) * lowpass_kernel(s, resolution, lowpass_kind) * within(s, s_band)
    )
    if np.any(n_fine != n_ext):
        iz = np.fft.fftfreq(n_ext[0], 1.0 / n_ext[0]).round().astype(int) % n_fine[0]
        iy = np.fft.fftfreq(n_ext[1], 1.0 / n_ext[1]).round().astype(int) % n_fine[1]
        ix = np.arange(n_ext[2] // 2 + 1)
        spectrum = spectrum[np.ix_(iz, iy, ix)] * (np.prod(n_ext) / np.prod(n_fine))
    return np.fft.irfftn(spectrum, s=tuple(int(n) for n in n_ext))


def _computing_box(pos, box_lo, box_hi, out_shape, voxel, guard, oversample):
    """The periodic box gemmi computes on: voxels padded below the output box, its FFT-friendly
    shape (`guard` Å between every atom and the box's far edge), and that shape oversampled."""
    lo_pad = np.ceil(np.maximum(0.0, guard - (pos.min(axis=0) - box_lo)) / voxel).astype(int)
    hi_pad = np.ceil(np.maximum(0.0, guard - (box_hi - pos.max(axis=0))) / voxel).astype(int)
    n_ext = np.array([_fast_len(int(n)) for n in np.asarray(out_shape) + lo_pad + hi_pad])
    n_fine = np.array([_fast_len(int(math.ceil(n * f - 1e-6))) for n, f in zip(n_ext, oversample)])
    return lo_pad, n_ext, n_fine


def simulate_map(
    structure,
    resolution: float,
    voxel_size=1.0,
    *,
    padding: float = 10.0,
    like: DensityMap | None = None,
    shape=None,
    center=None,
    rotation=None,
    scattering: str = "electron",
    lowpass_kind: str = "cosine",
    use_b_factors: bool = False,
    extra_b: float = 0.0,
) -> DensityMap:
    """Density of model 1 of `structure` band-limited to `resolution` Å on a grid.

    Grid: `like`'s (shape, voxel size, origin) if given; else a box of `shape` (z, y, x) whose
    voxel n//2 sits at `center` (Å, z y x; default the atoms' centroid); else a box around the
    atoms with `padding` Å. `rotation` (3x3 on z y x vectors) turns the atoms about `center`
    (or the centroid) before gridding. `scattering`: "electron" (cryo-EM, default) or "xray".
    Atomic B-factors are ignored (B = 0) unless `use_b_factors`; `extra_b` (Å^2) is added to
    every atom's B (a global B-factor, exp(-B s^2/4) on the whole map, without the periodic
    wrap of filtering the cropped box).
    Resolutions finer than 2 voxels are cut at the grid's Nyquist frequency.
    """
    resolution = _positive(resolution, "resolution")
    calc = _calculator(scattering)
    pos, elements, occ, b, center = _placed_atoms(structure, center, rotation)
    voxel = np.array(voxel_triple(like.voxel_size if isinstance(like, DensityMap) else voxel_size))
    origin, out_shape = _box(pos, voxel, padding, like, shape, center)
    out_shape_a = np.asarray(out_shape)
    b = b if use_b_factors else np.zeros_like(b)
    if not (np.isfinite(extra_b) and extra_b >= 0):
        raise InputError(f"extra_b must be a B-factor >= 0 Å^2, got {extra_b!r}")
    b = b + float(extra_b)

    # Band limit: 1/r for hard/cosine, where the Gaussian is < 0.2% for "gaussian", never
    # beyond the output grid's Nyquist frequency.
    lowpass_kernel(np.zeros(1), resolution, lowpass_kind)  # validates the kind
    s_band = (3.0 if lowpass_kind == "gaussian" else 1.0) / resolution
    s_band = min(s_band, float(np.max(0.5 / voxel)))
    # Compute on a finer grid (same extent, more voxels) when needed so that an extra blur B
    # pushes the aliased copies (at |s| >= 1/v_fine - s_band) below _EPS while dividing it out
    # again amplifies by at most 1/_EPS: this needs 1/v_fine >= (1 + sqrt 2) s_band.
    oversample = np.maximum(1.0, voxel * _SQRT2P1 * s_band)
    calc.d_min = resolution
    calc.cutoff = _CUTOFF
    s_alias = float(np.min(oversample / voxel)) - s_band  # FFT-size rounding only raises it
    calc.blur = _extra_blur(s_alias, s_band)  # an upper bound, for the radius
    radius = _max_radius(calc, elements, b)

    # Keep atoms near the box (their low-passed density reaches it); pad the computing box so
    # that no kept atom's blurred density wraps around the periodic box.
    reach = 1.5 * resolution + 3.0
    box_lo = origin
    box_hi = origin + (out_shape_a - 1) * voxel
    keep = np.all((pos >= box_lo - reach) & (pos <= box_hi + reach), axis=1)
    if not np.any(keep):
        return DensityMap(np.zeros(out_shape, np.float32), tuple(voxel), tuple(origin))
    pos, occ, b = pos[keep], occ[keep], b[keep]
    elements = [e for e, kept in zip(elements, keep) if kept]
    lo_pad, n_ext, n_fine = _computing_box(
        pos, box_lo, box_hi, out_shape, voxel, radius + resolution, oversample
    )
    ext_origin = origin - lo_pad * voxel
    v_fine = n_ext * voxel / n_fine
    blur = _extra_blur(float(np.min(1.0 / v_fine)) - s_band, s_band)
    calc.blur = blur

    fine = _gemmi_density(calc, pos - ext_origin, elements, occ, b, n_ext * voxel, n_fine)
    ext = _band_limited(fine, v_fine, blur, resolution, lowpass_kind, s_band, n_ext)
    sl = tuple(slice(int(p), int(p) + n) for p, n in zip(lo_pad, out_shape))
    return DensityMap(ext[sl].astype(np.float32), tuple(voxel), tuple(origin))


def atom_mask(
    structure, like: DensityMap, radius: float = 3.0, *, center=None, rotation=None
) -> np.ndarray:
    """Boolean array on `like`'s grid: voxels within `radius` Å of an atom of model 1 (turned
    by `rotation` about `center` as in simulate_map)."""
    from scipy.spatial import cKDTree

    radius = _positive(radius, "radius")
    if not isinstance(like, DensityMap):
        raise InputError(f"like must be a DensityMap, got {type(like)}")
    pos = _placed_atoms(structure, center, rotation)[0]
    voxel = np.asarray(like.voxel_size)
    origin = np.asarray(like.origin)
    shape = np.asarray(like.shape)
    mask = np.zeros(like.shape, dtype=bool)
    lo = np.maximum(0, np.floor((pos.min(axis=0) - radius - origin) / voxel).astype(int))
    hi = np.minimum(shape, np.ceil((pos.max(axis=0) + radius - origin) / voxel).astype(int) + 1)
    if np.any(hi <= lo):
        return mask
    axes = [origin[i] + np.arange(lo[i], hi[i]) * voxel[i] for i in range(3)]
    points = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    dist, _ = cKDTree(pos).query(points, k=1, distance_upper_bound=radius)
    sub = (dist <= radius).reshape(tuple(hi - lo))
    mask[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = sub
    return mask
