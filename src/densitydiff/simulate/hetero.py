"""Synthetic heterogeneous cryo-EM data sets with ground truth, written in chunks.

A `Source` says how many states there are, each state's continuous coordinate and volume, and
how images draw states: a trajectory (frames of a multi-model file, coordinate = frame / (F-1)),
a hinge (a rigid rotation of selected atoms on a grid of angles, "linear1d" over [A0, A1] or
"circular1d" over a full turn) or discrete structures with proportions. `simulate_particles`
draws every image's state, uniform random rotation, shift and CTF from one seed, then builds
the stack state by state (one volume and its projector in memory at a time, images written to
their slots of the .mrcs), and finally adds noise chunk by chunk:
sigma^2 = (mean over all N clean images of each image's pixel variance over the whole box) / SNR.
"""

from __future__ import annotations

import json
import math
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from densitydiff.errors import InputError
from densitydiff.maps import voxel_triple
from densitydiff.outputs import atomic_dir, atomic_path


@dataclass
class Source:
    """States of a heterogeneous data set: coordinates, sampling weights and volume makers."""

    kind: str  # "trajectory" | "linear1d" | "circular1d" | "discrete" | "volumes"
    coordinates: np.ndarray  # (n_states,) continuous coordinate of each state
    weights: np.ndarray  # (n_states,) probabilities of drawing each state
    params: dict = field(default_factory=dict)

    @property
    def n_states(self) -> int:
        return len(self.coordinates)

    def volume(self, k: int, box: int, pixel_size: float) -> np.ndarray:
        """The (box, box, box) density of state k (z, y, x), voxel n//2 at the box centre."""
        raise NotImplementedError


@dataclass
class VolumeSource(Source):
    """States given as arrays (for tests and user-made volumes)."""

    volumes: list = field(default_factory=list)

    def volume(self, k: int, box: int, pixel_size: float) -> np.ndarray:
        v = np.asarray(self.volumes[k], dtype=np.float32)
        if v.shape != (box, box, box):
            raise InputError(f"state {k} volume has shape {v.shape}, expected {(box,) * 3}")
        return v


@dataclass
class StructureSource(Source):
    """States made from atomic models (gemmi structures) via simulate_map on one fixed centre."""

    structures: list = field(default_factory=list)  # callables k -> gemmi.Structure, or objects
    center: np.ndarray | None = None  # (z, y, x) Å, shared by all states
    resolution: float | None = None

    def volume(self, k: int, box: int, pixel_size: float) -> np.ndarray:
        from densitydiff.simulate.density import simulate_map

        st = self.structures[k]
        st = st() if callable(st) else st
        resolution = self.resolution if self.resolution is not None else 2.0 * pixel_size
        m = simulate_map(st, resolution, pixel_size, shape=(box,) * 3, center=self.center)
        return m.array


def _single_model(st, index: int):
    import gemmi

    out = gemmi.Structure()
    out.cell = st.cell
    out.spacegroup_hm = st.spacegroup_hm
    out.add_model(st[index])
    return out


def trajectory_source(
    path: str | os.PathLike,
    resolution: float | None = None,
    *,
    fix_elements: bool = False,
    strict_elements: bool = False,
) -> StructureSource:
    """Frames of a multi-model PDB/mmCIF as states (coordinate frame / (F-1)), frame 1 centred.

    Read by `structures.read_structure(all_models=True)`, so blank element columns are inferred
    from the atom names in every frame and wrong ones refused.
    """
    from densitydiff.structures import centroid, inferred_elements, read_structure

    st = read_structure(
        path, all_models=True, fix_elements=fix_elements, strict_elements=strict_elements
    )
    n = len(st)
    if n < 2:
        raise InputError(f"{path}: a trajectory needs at least 2 models, found {n}")
    counts = {sum(1 for _ in m.all()) for m in st}
    if 0 in counts:
        raise InputError(f"{path}: some models have no atoms")
    frames = [_single_model(st, i) for i in range(n)]
    return StructureSource(
        kind="trajectory",
        coordinates=np.arange(n) / (n - 1),
        weights=np.full(n, 1.0 / n),
        params={"trajectory": str(path), "n_frames": n,
                "elements_inferred": inferred_elements(st)},  # fmt: skip
        structures=frames,
        center=centroid(st[0]),
        resolution=resolution,
    )


def _axis_rotation(axis: np.ndarray, degrees: float) -> np.ndarray:
    """Rotation matrix about a unit axis (x, y, z) by `degrees` (right hand; Rodrigues)."""
    from densitydiff.rotations import rotvec_to_matrix

    return rotvec_to_matrix(axis * math.radians(degrees))[0]


def hinge_source(
    path: str | os.PathLike,
    selection: str,
    axis,
    angles=(0.0, 360.0),
    *,
    pivot=None,
    circular: bool = False,
    n_states: int = 50,
    resolution: float | None = None,
    fix_elements: bool = False,
    strict_elements: bool = False,
) -> StructureSource:
    """A rigid rotation of the atoms matched by `selection` (gemmi syntax) about `axis` (x, y, z).

    The axis passes through `pivot` (Å, x y z; default: the centroid of the selected atoms that
    lie within 5 Å of unselected ones, i.e. the hinge). States: `n_states` angles uniform over
    [A0, A1] ("linear1d") or A0 + 360 k / n ("circular1d", a full turn, `angles[1]` ignored).
    """
    import gemmi

    from densitydiff.structures import centroid, inferred_elements, read_structure

    st = read_structure(path, fix_elements=fix_elements, strict_elements=strict_elements)
    axis = np.asarray(axis, dtype=float)
    if axis.shape != (3,) or not np.all(np.isfinite(axis)) or np.linalg.norm(axis) == 0:
        raise InputError(f"the hinge axis must be a non-zero (x, y, z) vector, got {axis!r}")
    axis = axis / np.linalg.norm(axis)
    a0, a1 = (float(a) for a in angles)
    if not (math.isfinite(a0) and math.isfinite(a1)) or (not circular and a1 <= a0):
        raise InputError(f"hinge angles must be finite with A0 < A1, got {angles!r}")
    if n_states < 2:
        raise InputError(f"need at least 2 hinge states, got {n_states}")
    try:
        sel = gemmi.Selection(selection)
    except (RuntimeError, ValueError) as err:
        raise InputError(f"bad selection {selection!r} ({err})") from None
    chosen = set()
    for model in sel.models(st):
        for chain in sel.chains(model):
            for residue in sel.residues(chain):
                for atom in sel.atoms(residue):
                    chosen.add(
                        (chain.name, str(residue.seqid), residue.name, atom.name, atom.altloc)
                    )
        break
    xyz, moving = [], []
    for cra in st[0].all():
        key = (
            cra.chain.name,
            str(cra.residue.seqid),
            cra.residue.name,
            cra.atom.name,
            cra.atom.altloc,
        )
        xyz.append(cra.atom.pos.tolist())
        moving.append(key in chosen)
    xyz, moving = np.array(xyz), np.array(moving)
    if not moving.any():
        raise InputError(f"selection {selection!r} matches no atoms")
    if moving.all():
        raise InputError(f"selection {selection!r} matches every atom; a hinge needs a fixed part")
    if pivot is None:
        from scipy.spatial import cKDTree

        near = cKDTree(xyz[~moving]).query(xyz[moving], distance_upper_bound=5.0)[0]
        hinge = xyz[moving][np.isfinite(near)]
        pivot = (hinge if len(hinge) else xyz[moving]).mean(axis=0)
    pivot = np.asarray(pivot, dtype=float)
    if pivot.shape != (3,) or not np.all(np.isfinite(pivot)):
        raise InputError(f"the pivot must be a finite (x, y, z) point, got {pivot!r}")
    if circular:
        values = a0 + 360.0 * np.arange(n_states) / n_states
    else:
        values = np.linspace(a0, a1, n_states)

    def make(theta: float):
        def build():
            out = st.clone()
            r = _axis_rotation(axis, theta)
            new = (xyz[moving] - pivot) @ r.T + pivot
            i = 0
            flat = np.flatnonzero(moving)
            lookup = dict(zip(flat.tolist(), new.tolist()))
            for j, cra in enumerate(out[0].all()):
                if j in lookup:
                    cra.atom.pos = gemmi.Position(*lookup[j])
                    i += 1
            return out

        return build

    return StructureSource(
        kind="circular1d" if circular else "linear1d",
        coordinates=values,
        weights=np.full(n_states, 1.0 / n_states),
        params={
            "structure": str(path),
            "selection": selection,
            "axis_xyz": axis.tolist(),
            "pivot_xyz": pivot.tolist(),
            "angles_deg": [a0, a0 + 360.0] if circular else [a0, a1],
            "n_states": n_states,
            "n_moving_atoms": int(moving.sum()),
            "elements_inferred": inferred_elements(st),
        },
        structures=[make(float(t)) for t in values],
        center=centroid(st[0]),
        resolution=resolution,
    )


def discrete_source(
    paths: list,
    proportions=None,
    resolution: float | None = None,
    *,
    fix_elements: bool = False,
    strict_elements: bool = False,
) -> StructureSource:
    """Distinct structures as states (compositional heterogeneity), on the first's centroid."""
    from densitydiff.structures import centroid, inferred_elements, read_structure

    if len(paths) < 2:
        raise InputError(f"discrete heterogeneity needs at least 2 structures, got {len(paths)}")
    structures = [
        read_structure(p, fix_elements=fix_elements, strict_elements=strict_elements)
        for p in paths
    ]
    n = len(structures)
    if proportions is None:
        weights = np.full(n, 1.0 / n)
    else:
        weights = np.asarray(proportions, dtype=float)
        if weights.shape != (n,) or not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise InputError(f"need {n} non-negative proportions, got {list(proportions)}")
        if weights.sum() <= 0:
            raise InputError("proportions must not all be zero")
        weights = weights / weights.sum()
    return StructureSource(
        kind="discrete",
        coordinates=np.arange(n, dtype=float),
        weights=weights,
        params={"structures": [str(p) for p in paths], "proportions": weights.tolist(),
                "elements_inferred": sum(inferred_elements(st) for st in structures)},  # fmt: skip
        structures=structures,
        center=centroid(structures[0][0]),
        resolution=resolution,
    )


@dataclass(frozen=True)
class Acquisition:
    """How each image's pose and CTF are drawn, and the microscope that forms it."""

    defocus: tuple[float, float] = (10000.0, 25000.0)  # Å, uniform in [MIN, MAX]
    astigmatism: float = 200.0  # Å, dfU - dfV uniform in [0, astigmatism]
    max_shift: float = 3.0  # pixels, shifts uniform in [-max_shift, max_shift]
    voltage: float = 300.0  # kV
    cs: float = 2.7  # mm
    amplitude_contrast: float = 0.1  # w

    def __post_init__(self) -> None:
        """Settings a data set can be simulated with (InputError otherwise)."""
        lo, hi = (float(d) for d in self.defocus)
        if not (0 < lo <= hi and math.isfinite(hi)):
            raise InputError(
                f"--defocus MIN MAX must satisfy 0 < MIN <= MAX (Å), got {lo:g} {hi:g}"
            )
        object.__setattr__(self, "defocus", (lo, hi))
        a = self
        checks = [
            (a.astigmatism >= 0 and math.isfinite(a.astigmatism),
             f"--astigmatism {a.astigmatism} < 0"),
            (a.max_shift >= 0 and math.isfinite(a.max_shift), f"--max-shift {a.max_shift} < 0"),
            (a.voltage > 0 and math.isfinite(a.voltage),
             f"--voltage must be positive, got {a.voltage}"),
            (a.cs >= 0 and math.isfinite(a.cs), f"--cs must be >= 0 mm, got {a.cs}"),
            (0 <= a.amplitude_contrast <= 1,
             f"--amplitude-contrast must lie in [0, 1], got {a.amplitude_contrast}"),
        ]  # fmt: skip
        for ok, message in checks:
            if not ok:
                raise InputError(message)


@dataclass
class ImageParameters:
    """Per-image draws: state, rotation (cryoDRGN pose), shift in pixels (x, y), ctf.pkl row."""

    states: np.ndarray
    rotations: np.ndarray
    shifts: np.ndarray
    ctf: np.ndarray


def draw_parameters(
    source: Source,
    n_images: int,
    box: int,
    pixel_size: float,
    rng: np.random.Generator,
    acquisition: Acquisition = Acquisition(),
) -> ImageParameters:
    """Draw each image's state, uniform random rotation, uniform shift and CTF, in that order."""
    from densitydiff.formats.ctf import CTFParams
    from densitydiff.rotations import random_rotations

    a = acquisition
    d0, d1 = a.defocus
    states = rng.choice(source.n_states, size=n_images, p=source.weights)
    rotations = random_rotations(n_images, rng)
    shifts = rng.uniform(-a.max_shift, a.max_shift, size=(n_images, 2))
    dfu = rng.uniform(d0, d1, size=n_images)
    dfv = dfu - rng.uniform(0.0, a.astigmatism, size=n_images)
    dfang = rng.uniform(-180.0, 180.0, size=n_images)
    ctf = CTFParams(
        D=box,
        pixel_size=pixel_size,
        defocus_u=dfu,
        defocus_v=dfv,
        defocus_angle=dfang,
        voltage=a.voltage,
        cs=a.cs,
        amplitude_contrast=a.amplitude_contrast,
        phase_shift=0.0,
    )
    return ImageParameters(states, rotations, shifts, ctf.to_array())


def heterogeneity_source(
    *,
    trajectory: str | os.PathLike | None = None,
    structure: str | os.PathLike | None = None,
    hinge: str | None = None,
    axis=None,
    pivot=None,
    angles=None,
    circular: bool = False,
    n_states: int = 50,
    structures=(),
    proportions=None,
    resolution: float | None = None,
    fix_elements: bool = False,
    strict_elements: bool = False,
) -> StructureSource:
    """The one source of heterogeneity the arguments name: a trajectory, a hinge of `structure`
    (with `axis` and `angles`, or `circular`), or discrete `structures` with `proportions`.
    `fix_elements`/`strict_elements` go to `structures.read_structure`."""
    elements = {"fix_elements": fix_elements, "strict_elements": strict_elements}
    given = [trajectory is not None, hinge is not None, bool(structures)]
    if sum(given) != 1:
        raise InputError(
            "give exactly one source of heterogeneity: --trajectory, "
            "--structure with --hinge, or --structures"
        )
    if resolution is not None and not (resolution > 0 and math.isfinite(resolution)):
        raise InputError(f"--resolution must be positive, got {resolution}")
    if trajectory is not None:
        source = trajectory_source(trajectory, resolution, **elements)
    elif hinge is not None:
        if structure is None or axis is None:
            raise InputError("--hinge needs --structure and --axis")
        if angles is None and not circular:
            raise InputError("--hinge needs --angles A0 A1 (or --circular)")
        source = hinge_source(
            structure, hinge, axis, angles if angles is not None else (0.0, 360.0),
            pivot=pivot, circular=circular, n_states=n_states, resolution=resolution, **elements,
        )  # fmt: skip
    else:
        source = discrete_source(
            [Path(p) for p in structures], proportions, resolution, **elements
        )
    if structure is not None and hinge is None:
        raise InputError("--structure is only used with --hinge (use --structures for states)")
    return source


CONTRASTS = {"cryodrgn": -1.0, "positive": 1.0}
"""Sign of the written images. "cryodrgn": protein dark, -(CTF * (P V)) + N, as micrograph
particles are, so cryoDRGN's defaults (which invert the data) read positive density; "positive":
CTF * (P V) + N, which cryoDRGN needs `--uninvert-data` for."""


def _check_image_arguments(n_images, box, pixel_size, snr, chunk_size, contrast="cryodrgn"):
    if n_images < 1:
        raise InputError(f"--n-images must be at least 1, got {n_images}")
    if box < 8 or box % 2:
        raise InputError(f"the box must be an even number of pixels >= 8, got {box}")
    voxel_triple(pixel_size, "pixel size")
    if not (snr > 0):
        raise InputError(f"SNR must be positive (inf for noiseless images), got {snr}")
    if chunk_size < 1:
        raise InputError(f"chunk size must be at least 1, got {chunk_size}")
    if contrast not in CONTRASTS:
        raise InputError(f"unknown contrast {contrast!r}: use one of {', '.join(CONTRASTS)}")


def _write_clean_images(
    writer, source: Source, p: ImageParameters, vol_dir: Path, *, chunk_size: int, device, bar,
    sign: float = 1.0,
) -> float:  # fmt: skip
    """State by state: write its volume, form its images sign * CTF * (P V) into their slots.

    Volumes are on cryoDRGN's grid (what `eval_vol` and `backproject_voxel` write): origin 0,
    box D, the rotation centre at voxel D // 2, so they overlay cryoDRGN's maps in ChimeraX and
    `densitydiff fsc` compares them without resampling. One volume and its projector are in
    memory at a time. Returns the signal variance: the mean over all images of each clean
    image's pixel variance over the whole box.
    """
    from densitydiff.formats.maps import write_map
    from densitydiff.maps import DensityMap
    from densitydiff.simulate.cryoem import Projector, form_images

    box, pixel_size = writer.D, writer.pixel_size
    origin = (0.0, 0.0, 0.0)  # cryoDRGN's mrcfile.write_mrc: xorg = yorg = zorg = 0
    signal_var_sum = 0.0
    for k in range(source.n_states):
        volume = source.volume(k, box, pixel_size)
        write_map(vol_dir / f"state_{k:03d}.mrc", DensityMap(volume, pixel_size, origin))
        idx = np.flatnonzero(p.states == k)
        if len(idx) == 0:
            continue
        projector = Projector(volume, device=device)
        for start in range(0, len(idx), chunk_size):
            sel = idx[start : start + chunk_size]
            clean = form_images(projector, p.rotations[sel], p.shifts[sel], p.ctf[sel])
            clean = clean.cpu().numpy()
            signal_var_sum += float(clean.reshape(len(sel), -1).var(axis=1).sum())
            writer.write_at(sel, sign * clean)
            bar.update(len(sel))
        del projector
    return signal_var_sum / writer.n


def _add_noise(writer, sigma: float, seed: int, *, chunk_size: int, bar) -> None:
    """Add white Gaussian noise of std `sigma` chunk by chunk (seeded per chunk), in place."""
    import torch

    for start in range(0, writer.n, chunk_size):
        stop = min(start + chunk_size, writer.n)
        images = writer.read(start, stop)
        if sigma > 0:
            gen = torch.Generator().manual_seed(int(seed) * 1_000_003 + start)
            noise = torch.randn(images.shape, generator=gen, dtype=torch.float32).numpy()
            images = images + sigma * noise
        writer.write_at(np.arange(start, stop), images, stats=True)
        bar.update(stop - start)


def _write_metadata(out: Path, source: Source, p: ImageParameters, box: int) -> None:
    """poses.pkl, ctf.pkl, particles.star, the ground truth per image and the states table."""
    from densitydiff.formats.ctf import save_ctf
    from densitydiff.formats.particles import save_poses
    from densitydiff.formats.star import write_star

    n_images = len(p.states)
    trans = (p.shifts / box).astype(np.float32)
    save_poses(out / "poses.pkl", p.rotations, trans)
    save_ctf(out / "ctf.pkl", p.ctf)
    coords = source.coordinates[p.states]
    write_star(
        out / "particles.star", "particles.mrcs", p.ctf, p.rotations, trans,
        extra={"rlnClassNumber": p.states + 1},
    )  # fmt: skip
    truth = np.stack([p.states.astype(np.float64), coords], axis=1)
    with atomic_path(out / "ground_truth.npy") as tmp:
        np.save(tmp, truth)
    _write_csv(out / "ground_truth.csv", ["index", "state", "coordinate"],
               zip(range(n_images), p.states.tolist(), coords.tolist()))  # fmt: skip
    _write_csv(out / "volumes" / "states.csv", ["state", "coordinate", "weight", "file"],
               ((k, float(source.coordinates[k]), float(source.weights[k]), f"state_{k:03d}.mrc")
                for k in range(source.n_states)))  # fmt: skip


def simulate_particles(
    out_dir: str | os.PathLike,
    source: Source,
    *,
    n_images: int,
    box: int,
    pixel_size: float,
    snr: float,
    seed: int = 0,
    acquisition: Acquisition = Acquisition(),
    chunk_size: int = 256,
    device=None,
    progress: bool = True,
    command: str | None = None,
    contrast: str = "cryodrgn",
    run: dict | None = None,
) -> dict:
    """Write a synthetic data set to `out_dir`; return the dataset.json record.

    contrast: "cryodrgn" (default; protein dark, read correctly by cryoDRGN's defaults) or
    "positive" (see CONTRASTS).
    `run` (a densitydiff.runrecord record: command line, versions, inputs) is kept in it as "run".

    Steps: draw every image's parameters, form the clean images state by state, add noise of
    sigma^2 = signal variance / SNR, write poses, CTF, star file and ground truth, the record.
    The folder appears whole or not at all (`atomic_dir`); an existing earlier data set there
    (it holds dataset.json) is replaced, any other non-empty folder is refused.
    """
    _check_image_arguments(n_images, box, pixel_size, snr, chunk_size, contrast)
    # everything is written in a temporary folder renamed when dataset.json, the last file, is in
    with atomic_dir(out_dir, "dataset.json") as out:
        return _simulate_into(
            out, source, n_images=n_images, box=box, pixel_size=pixel_size, snr=snr, seed=seed,
            acquisition=acquisition, chunk_size=chunk_size, device=device, progress=progress,
            command=command, contrast=contrast, run=run,
        )  # fmt: skip


def _simulate_into(
    out: Path, source: Source, *, n_images, box, pixel_size, snr, seed, acquisition, chunk_size,
    device, progress, command, contrast="cryodrgn", run=None,
) -> dict:  # fmt: skip
    """The body of `simulate_particles`, writing into the (temporary) folder `out`."""
    from tqdm import tqdm

    from densitydiff.formats.mrcs import ParticleWriter

    rng = np.random.default_rng(seed)
    p = draw_parameters(source, n_images, box, pixel_size, rng, acquisition)
    bar = tqdm(total=2 * n_images, desc="simulate particles", unit="img", disable=not progress)
    with ParticleWriter(out / "particles.mrcs", n_images, box, pixel_size) as writer:
        signal_var = _write_clean_images(
            writer, source, p, out / "volumes", chunk_size=chunk_size, device=device, bar=bar,
            sign=CONTRASTS[contrast],
        )
        sigma = 0.0 if math.isinf(snr) else math.sqrt(signal_var / snr)
        _add_noise(writer, sigma, seed, chunk_size=chunk_size, bar=bar)
    bar.close()
    _write_metadata(out, source, p, box)
    record = _record(
        source, acquisition, command=command, n_images=n_images, box=box,
        pixel_size=pixel_size, snr=snr, signal_var=signal_var, sigma=sigma, seed=seed,
        chunk_size=chunk_size, contrast=contrast,
    )  # fmt: skip
    if run is not None:
        record["run"] = run
    with atomic_path(out / "dataset.json") as tmp:
        Path(tmp).write_text(json.dumps(record, indent=2) + "\n")
    return record


def _record(
    source: Source,
    a: Acquisition,
    *,
    command: str | None,
    n_images: int,
    box: int,
    pixel_size: float,
    snr: float,
    signal_var: float,
    sigma: float,
    seed: int,
    chunk_size: int,
    contrast: str = "cryodrgn",
) -> dict:
    """dataset.json: what was simulated, how, and with which versions."""
    import torch

    return {
        "densitydiff_version": _version(),
        "command": command,
        "heterogeneity": source.kind,
        "source": source.params,
        "n_images": n_images,
        "box": box,
        "pixel_size": pixel_size,
        "snr": None if math.isinf(snr) else snr,
        "snr_definition": "signal variance / noise variance; signal variance = mean over all "
        "clean (CTF-applied) images of each image's pixel variance over the whole box",
        "signal_variance": signal_var,
        "noise_sigma": sigma,
        "contrast": contrast,
        "contrast_definition": {
            "cryodrgn": "protein dark: images = -(CTF * P V) + noise; cryoDRGN's defaults "
            "(--invert-data) read it as positive density; densitydiff backproject(invert=True)",
            "positive": "images = CTF * (P V) + noise; pass --uninvert-data to cryoDRGN",
        }[contrast],
        "seed": seed,
        "defocus_range_A": list(a.defocus),
        "astigmatism_A": a.astigmatism,
        "max_shift_px": a.max_shift,
        "voltage_kV": a.voltage,
        "cs_mm": a.cs,
        "amplitude_contrast": a.amplitude_contrast,
        "chunk_size": chunk_size,
        "n_states": source.n_states,
        "state_coordinates": source.coordinates.tolist(),
        "state_weights": source.weights.tolist(),
        "conventions": "cryoDRGN: poses.pkl (R per image, translations in box fractions; the "
        "particle centre sits at D//2 - t*D pixels), ctf.pkl rows [D, Å/px, dfU, dfV, dfang deg, "
        "kV, Cs mm, w, phase deg]; RELION 3.1 star; volumes (z,y,x) on cryoDRGN's grid: origin "
        "0 Å, box D, rotation centre at voxel D//2",
        "files": {
            "particles": "particles.mrcs",
            "poses": "poses.pkl",
            "ctf": "ctf.pkl",
            "star": "particles.star",
            "ground_truth": ["ground_truth.npy (columns state, coordinate)", "ground_truth.csv"],
            "volumes": "volumes/state_XXX.mrc, volumes/states.csv",
        },
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
    }


def _write_csv(path: Path, header: list[str], rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "w") as fh:
        fh.write(",".join(header) + "\n")
        for row in rows:
            fh.write(",".join(str(v) for v in row) + "\n")


def _version() -> str:
    from densitydiff import __version__

    return __version__
