"""RELION .star files (3.0 single block, 3.1 and 5 with an optics block): read through
`starfile`, written by `write_star` itself (no pandas), so simulation needs no extra.

Poses follow cryoDRGN's `parse_pose_star`: matrix = RELION's Euler_angles2matrix(rot, tilt,
psi) (see `densitydiff.rotations`); translations = origin in pixels (rlnOriginX/Y, or
rlnOriginX/YAngst divided by the pixel size) divided by the box size D. CTF rows follow
cryoDRGN's ctf.pkl layout; the pixel size is rlnImagePixelSize (3.1+), rlnPixelSize, or
rlnDetectorPixelSize (µm) * 1e4 / rlnMagnification (3.0).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from densitydiff.errors import InputError
from densitydiff.formats.ctf import CTFParams
from densitydiff.outputs import atomic_path


def read_star(path: str | os.PathLike):
    """The particle table (pandas DataFrame) with each row's optics-group values merged in."""
    import starfile

    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    try:
        blocks = starfile.read(path, always_dict=True)
    except Exception as err:  # starfile raises assorted parser errors
        raise InputError(f"{path}: not a readable STAR file ({err})") from None
    tables = {k: v for k, v in blocks.items() if hasattr(v, "columns")}
    if not tables:
        raise InputError(f"{path}: no data table in the STAR file")
    optics = tables.get("optics")
    particles = tables.get("particles")
    if particles is None:
        others = [v for k, v in tables.items() if k != "optics"]
        if not others:
            raise InputError(f"{path}: no particle table in the STAR file")
        particles = others[0]
    particles = particles.reset_index(drop=True)
    if optics is not None and "rlnOpticsGroup" in particles.columns:
        if "rlnOpticsGroup" not in optics.columns:
            raise InputError(f"{path}: the optics block has no rlnOpticsGroup column")
        extra = [c for c in optics.columns if c not in particles.columns or c == "rlnOpticsGroup"]
        merged = particles.merge(optics[extra], on="rlnOpticsGroup", how="left", sort=False)
        if merged[extra[1:]].isna().any().any() if len(extra) > 1 else False:
            raise InputError(f"{path}: some particles name an optics group that is not defined")
        particles = merged
    particles.attrs["path"] = str(path)
    return particles


def _column(df, name: str, default=None) -> np.ndarray:
    if name in df.columns:
        return df[name].to_numpy(dtype=np.float64)
    if default is None:
        raise InputError(f"{df.attrs.get('path', 'STAR file')}: missing column _{name}")
    return np.full(len(df), float(default))


def pixel_size(df, pixel: float | None = None) -> np.ndarray:
    """Per-particle pixel size in Å (argument, else the STAR columns)."""
    if pixel is not None:
        return np.full(len(df), float(pixel))
    for name in ("rlnImagePixelSize", "rlnPixelSize"):
        if name in df.columns:
            return _column(df, name)
    if {"rlnDetectorPixelSize", "rlnMagnification"} <= set(df.columns):
        return _column(df, "rlnDetectorPixelSize") * 1e4 / _column(df, "rlnMagnification")
    raise InputError(
        f"{df.attrs.get('path', 'STAR file')}: no pixel size (rlnImagePixelSize, rlnPixelSize or "
        "rlnDetectorPixelSize + rlnMagnification); pass it explicitly"
    )


def box_size(df, D: int | None = None) -> np.ndarray:
    """Per-particle box size (argument, else rlnImageSize)."""
    if D is not None:
        return np.full(len(df), int(D))
    if "rlnImageSize" in df.columns:
        return _column(df, "rlnImageSize").astype(int)
    raise InputError(f"{df.attrs.get('path', 'STAR file')}: no rlnImageSize; pass the box size D")


def ctf_from_star(df, D: int | None = None, pixel: float | None = None) -> np.ndarray:
    """ctf.pkl rows (N, 9) float32 from a particle table."""
    out = CTFParams(
        D=box_size(df, D),
        pixel_size=pixel_size(df, pixel),
        defocus_u=_column(df, "rlnDefocusU"),
        defocus_v=_column(df, "rlnDefocusV"),
        defocus_angle=_column(df, "rlnDefocusAngle"),
        voltage=_column(df, "rlnVoltage"),
        cs=_column(df, "rlnSphericalAberration"),
        amplitude_contrast=_column(df, "rlnAmplitudeContrast"),
        phase_shift=_column(df, "rlnPhaseShift", 0.0),
    ).to_array()
    if not np.all(np.isfinite(out)):
        raise InputError(f"{df.attrs.get('path', 'STAR file')}: CTF columns hold non-numbers")
    return out


def poses_from_star(
    df, D: int | None = None, pixel: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(rotations N x 3 x 3, translations N x 2 as a fraction of the box) from a particle table."""
    from densitydiff.rotations import euler_to_matrix

    euler = np.stack(
        [_column(df, "rlnAngleRot"), _column(df, "rlnAngleTilt"), _column(df, "rlnAnglePsi")], 1
    )
    rot = euler_to_matrix(euler).astype(np.float32)
    if {"rlnOriginX", "rlnOriginY"} <= set(df.columns):
        shift = np.stack([_column(df, "rlnOriginX"), _column(df, "rlnOriginY")], 1)
    elif {"rlnOriginXAngst", "rlnOriginYAngst"} <= set(df.columns):
        ang = np.stack([_column(df, "rlnOriginXAngst"), _column(df, "rlnOriginYAngst")], 1)
        shift = ang / pixel_size(df, pixel)[:, None]
    else:
        shift = np.zeros((len(df), 2))
    trans = (shift / box_size(df, D)[:, None]).astype(np.float32)
    return rot, trans


def image_names(df) -> list[tuple[int, str]]:
    """(0-based index, stack file) for each particle, from rlnImageName 'k@file'."""
    if "rlnImageName" not in df.columns:
        raise InputError(f"{df.attrs.get('path', 'STAR file')}: missing column _rlnImageName")
    out = []
    for name in df["rlnImageName"].astype(str):
        idx, sep, stack = name.partition("@")
        if not sep or not idx.strip().isdigit():
            raise InputError(f"bad rlnImageName {name!r}; expected 'index@stack.mrcs'")
        out.append((int(idx) - 1, stack))
    return out


def read_star_images(path: str | os.PathLike, datadir: str | os.PathLike | None = None):
    """Images (N, D, D) float32 named by a STAR file (stacks relative to `datadir` or the file)."""
    from densitydiff.formats.mrcs import read_stack

    path = Path(path)
    df = read_star(path)
    names = image_names(df)
    base = Path(datadir) if datadir is not None else path.parent
    stacks: dict[str, np.ndarray] = {}
    for _, stack in names:
        if stack not in stacks:
            file = Path(stack) if Path(stack).is_absolute() else base / stack
            if not file.is_file():
                raise InputError(f"{path}: particle stack {file} not found")
            stacks[stack] = read_stack(file, lazy=True)
    shapes = {s.shape[1:] for s in stacks.values()}
    if len(shapes) != 1:
        raise InputError(f"{path}: stacks have different image sizes {sorted(shapes)}")
    out = np.empty((len(names),) + shapes.pop(), dtype=np.float32)
    for i, (k, stack) in enumerate(names):
        if not 0 <= k < len(stacks[stack]):
            raise InputError(f"{path}: image {k + 1} is beyond the end of {stack}")
        out[i] = stacks[stack][k]
    return out


def write_star(
    path: str | os.PathLike,
    stack: str,
    ctf_params: np.ndarray,
    rotations: np.ndarray | None = None,
    translations: np.ndarray | None = None,
    extra: dict[str, np.ndarray] | None = None,
    micrographs: list[str] | None = None,
) -> Path:
    """Write a RELION 3.1 STAR file (optics + particles) for images 1..N of `stack`.

    What RELION 3.1+ tools expect: `# version 30001` before each block, the optics block,
    rlnMicrographName (`micrographs`, default one per particle, as each has its own defocus)
    and rlnRandomSubset (half sets 1, 2, 1, 2, ... for gold-standard refinement).
    ctf_params: ctf.pkl rows; optics groups are the distinct (D, pixel, kV, Cs, w) tuples.
    rotations/translations: poses as in poses.pkl (written as Euler angles and rlnOriginX/YAngst).
    extra: more particle columns (name without the leading underscore -> values).
    """
    from densitydiff.rotations import matrix_to_euler

    p = np.asarray(ctf_params, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 9:
        raise InputError(f"CTF parameters must be (N, 9), got {p.shape}")
    n = len(p)
    c = CTFParams(*p.T)
    keys = list(zip(c.D, c.pixel_size, c.voltage, c.cs, c.amplitude_contrast))
    groups: dict[tuple, int] = {}
    for key in keys:
        groups.setdefault(key, len(groups) + 1)
    optics = {
        "rlnOpticsGroup": list(groups.values()),
        "rlnOpticsGroupName": [f"opticsGroup{g}" for g in groups.values()],
        "rlnAmplitudeContrast": [k[4] for k in groups],
        "rlnSphericalAberration": [k[3] for k in groups],
        "rlnVoltage": [k[2] for k in groups],
        "rlnImagePixelSize": [k[1] for k in groups],
        "rlnImageSize": [int(k[0]) for k in groups],
        "rlnImageDimensionality": [2] * len(groups),
    }
    if micrographs is None:
        micrographs = [f"micrographs/{i + 1:06d}.mrc" for i in range(n)]
    if len(micrographs) != n:
        raise InputError(f"{len(micrographs)} micrograph names for {n} particles")
    data = {
        "rlnImageName": [f"{i + 1:06d}@{stack}" for i in range(n)],
        "rlnMicrographName": list(micrographs),
        "rlnOpticsGroup": [groups[k] for k in keys],
        "rlnDefocusU": c.defocus_u,
        "rlnDefocusV": c.defocus_v,
        "rlnDefocusAngle": c.defocus_angle,
        "rlnPhaseShift": c.phase_shift,
        "rlnRandomSubset": np.arange(n) % 2 + 1,
    }
    if rotations is not None:
        euler = matrix_to_euler(np.asarray(rotations, dtype=np.float64).reshape(n, 3, 3))
        data.update(rlnAngleRot=euler[:, 0], rlnAngleTilt=euler[:, 1], rlnAnglePsi=euler[:, 2])
    if translations is not None:
        t = np.asarray(translations, dtype=np.float64).reshape(n, 2)
        t = t * c.D[:, None] * c.pixel_size[:, None]  # fraction of the box -> Å
        data.update(rlnOriginXAngst=t[:, 0], rlnOriginYAngst=t[:, 1])
    for name, values in (extra or {}).items():
        data[name] = np.asarray(values)
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(_star_block("optics", optics) + _star_block("particles", data))
    return path


def _star_block(name: str, columns: dict) -> str:
    """One STAR loop: `# version 30001`, data_NAME, loop_, `_column #i` lines, then the rows.

    Written here rather than by starfile (which needs pandas), so `simulate particles` runs on
    the base install; floats keep full precision (repr), strings have no blanks.
    """
    cols = {k: list(np.asarray(v).tolist()) for k, v in columns.items()}
    lines = ["# version 30001", "", f"data_{name}", "", "loop_"]
    lines += [f"_{k} #{i}" for i, k in enumerate(cols, start=1)]
    for row in zip(*cols.values()):
        lines.append("\t".join(repr(v) if isinstance(v, float) else str(v) for v in row))
    return "\n".join(lines) + "\n\n"
