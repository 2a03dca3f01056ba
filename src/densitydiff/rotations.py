"""Rotations: the pose conventions of the particle files (RELION Euler angles, cryoSPARC
axis-angle vectors, cryoDRGN's matrices), quaternions, and uniform random rotations.

Convention (RELION's `Euler_angles2matrix`, which cryoDRGN's `R_from_relion` reproduces): the
matrix A(rot, tilt, psi) = Rz(psi) Ry(tilt) Rz(rot) written with passive rotations, equal to the
transpose of scipy's intrinsic "ZYZ" rotation. A acts on (x, y, z) column vectors (x = the image
column axis) and maps a point r of the reference volume to the image frame: p = A r; the image is
the projection of the rotated volume along z. cryoDRGN's poses.pkl stores this A per image.

Two coordinate orders meet these matrices: poses act on (x, y, z) column vectors, as above;
`simulate.density.simulate_map(rotation=...)` and the patch store turn atoms given as (z, y, x)
vectors. A uniform rotation is uniform in either order, so one sampler serves both.
"""

from __future__ import annotations

import numpy as np

from densitydiff.errors import InputError


def euler_to_matrix(euler: np.ndarray) -> np.ndarray:
    """RELION (rot, tilt, psi) in degrees, shape (N, 3) or (3,), to matrices (N, 3, 3) or (3, 3)."""
    euler = np.asarray(euler, dtype=np.float64)
    single = euler.ndim == 1
    euler = np.atleast_2d(euler)
    if euler.shape[-1] != 3 or not np.all(np.isfinite(euler)):
        raise InputError(f"Euler angles must be finite (N, 3) arrays, got shape {euler.shape}")
    a, b, g = np.deg2rad(euler).T
    ca, sa, cb, sb, cg, sg = np.cos(a), np.sin(a), np.cos(b), np.sin(b), np.cos(g), np.sin(g)
    cc, cs, sc, ss = cb * ca, cb * sa, sb * ca, sb * sa
    # RELION src/euler.cpp Euler_angles2matrix
    m = np.empty((len(euler), 3, 3))
    m[:, 0, 0] = cg * cc - sg * sa
    m[:, 0, 1] = cg * cs + sg * ca
    m[:, 0, 2] = -cg * sb
    m[:, 1, 0] = -sg * cc - cg * sa
    m[:, 1, 1] = -sg * cs + cg * ca
    m[:, 1, 2] = sg * sb
    m[:, 2, 0] = sc
    m[:, 2, 1] = ss
    m[:, 2, 2] = cb
    return m[0] if single else m


def matrix_to_euler(matrix: np.ndarray) -> np.ndarray:
    """Matrices (N, 3, 3) to RELION (rot, tilt, psi) in degrees; tilt in [0, 180]."""
    m = np.asarray(matrix, dtype=np.float64)
    single = m.ndim == 2
    m = m.reshape(-1, 3, 3)
    # From the matrix above: A22 = cos(tilt), (A20, A21) = sin(tilt)(cos rot, sin rot),
    # (A02, A12) = sin(tilt)(-cos psi, sin psi).
    tilt = np.arccos(np.clip(m[:, 2, 2], -1.0, 1.0))
    rot = np.arctan2(m[:, 2, 1], m[:, 2, 0])
    psi = np.arctan2(m[:, 1, 2], -m[:, 0, 2])
    # Gimbal lock (tilt 0 or 180): only rot +- psi is defined; put it all in psi.
    lock = np.abs(np.sin(tilt)) < 1e-6
    if np.any(lock):
        rot[lock] = 0.0
        # tilt 0: A = Rz(rot + psi) passive -> A00 = cos, A01 = sin
        # tilt 180: A00 = -cos(psi - rot), A01 = sin(psi - rot); with rot = 0 use psi.
        cb = np.sign(m[lock, 2, 2])
        psi[lock] = np.arctan2(m[lock, 0, 1], cb * m[lock, 0, 0])
    euler = np.rad2deg(np.stack([rot, tilt, psi], axis=1))
    return euler[0] if single else euler


def random_rotations(n: int, rng: np.random.Generator, *, scalar_last: bool = False) -> np.ndarray:
    """`n` rotation matrices uniform on SO(3) (Haar measure), from uniform unit quaternions.

    The quaternion is drawn as 4 standard normals, normalised, and read (w, x, y, z), or
    (x, y, z, w) with `scalar_last` (scipy's `Rotation.random` order: the same draws as scipy).
    """
    q = rng.standard_normal((n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return quaternion_to_matrix(q[:, [3, 0, 1, 2]] if scalar_last else q)


def quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    """Unit quaternions (w, x, y, z), shape (N, 4), to rotation matrices (N, 3, 3)."""
    w, x, y, z = np.asarray(q, dtype=np.float64).T
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        axis=1,
    )


def rotvec_to_matrix(rotvec: np.ndarray) -> np.ndarray:
    """Axis-angle vectors (N, 3), angle = norm in radians, to matrices (Rodrigues' formula)."""
    v = np.asarray(rotvec, dtype=np.float64).reshape(-1, 3)
    theta = np.linalg.norm(v, axis=1)
    safe = np.where(theta > 0, theta, 1.0)
    k = v / safe[:, None]
    kx = np.zeros((len(v), 3, 3))
    kx[:, 0, 1], kx[:, 0, 2], kx[:, 1, 2] = -k[:, 2], k[:, 1], -k[:, 0]
    kx -= kx.transpose(0, 2, 1)
    s, c = np.sin(theta)[:, None, None], np.cos(theta)[:, None, None]
    # Rodrigues: R = I + sin(theta) K + (1 - cos(theta)) K^2
    return np.eye(3) + s * kx + (1 - c) * (kx @ kx)
