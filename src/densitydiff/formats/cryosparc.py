"""cryoSPARC .cs particle files (numpy structured arrays): poses and CTF as cryoDRGN parses them.

Poses (cryoDRGN's `parse_pose_csparc`): alignments3D/pose is an axis-angle vector whose matrix,
transposed, is the pose; alignments3D/shift is in pixels and is divided by the box size.
CTF: blob/shape, blob/psize_A, ctf/df1_A, df2_A, df_angle_rad, accel_kv, cs_mm, amp_contrast,
phase_shift_rad (angles converted to degrees).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from densitydiff.errors import InputError
from densitydiff.formats.ctf import CTFParams


def read_cs(path: str | os.PathLike) -> np.ndarray:
    """The structured array in a .cs file (loaded without pickle)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise InputError(f"{path}: not a readable cryoSPARC .cs file ({err})") from None
    if not isinstance(data, np.ndarray) or data.dtype.names is None:
        raise InputError(f"{path}: not a cryoSPARC .cs file (no named fields)")
    return data


def _field(cs: np.ndarray, name: str) -> np.ndarray:
    if name not in cs.dtype.names:
        raise InputError(f"the .cs file has no field {name!r}")
    return np.asarray(cs[name], dtype=np.float64)


def box_size(cs: np.ndarray, D: int | None = None) -> int:
    """Box size D (argument, else blob/shape)."""
    if D is not None:
        return int(D)
    shape = _field(cs, "blob/shape")
    return int(shape.reshape(len(cs), -1)[0, 0])


def poses_from_cs(cs: np.ndarray, D: int | None = None, prefix: str = "alignments3D"):
    """(rotations N x 3 x 3, translations N x 2 / box) float32, as cryoDRGN's poses.pkl."""
    from densitydiff.rotations import rotvec_to_matrix

    rotvec = _field(cs, f"{prefix}/pose").reshape(len(cs), 3)
    rot = rotvec_to_matrix(rotvec).transpose(0, 2, 1)
    shift = _field(cs, f"{prefix}/shift").reshape(len(cs), 2)
    trans = shift / box_size(cs, D)
    return rot.astype(np.float32), trans.astype(np.float32)


def ctf_from_cs(cs: np.ndarray, D: int | None = None) -> np.ndarray:
    """ctf.pkl rows (N, 9) float32."""
    return CTFParams(
        D=box_size(cs, D),
        pixel_size=_field(cs, "blob/psize_A"),
        defocus_u=_field(cs, "ctf/df1_A"),
        defocus_v=_field(cs, "ctf/df2_A"),
        defocus_angle=np.rad2deg(_field(cs, "ctf/df_angle_rad")),
        voltage=_field(cs, "ctf/accel_kv"),
        cs=_field(cs, "ctf/cs_mm"),
        amplitude_contrast=_field(cs, "ctf/amp_contrast"),
        phase_shift=np.rad2deg(_field(cs, "ctf/phase_shift_rad")),
    ).to_array()
