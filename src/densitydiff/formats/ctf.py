"""cryoDRGN's ctf.pkl: nine CTF parameters per image, by name (`CTFParams`), and the file.

Columns, in order: D (box, pixels), Apix (pixel size, Å), dfU and dfV (defocus, Å), dfang
(astigmatism angle, degrees), kV (voltage), Cs (spherical aberration, mm), w (amplitude
contrast), phase_shift (degrees). The file is one pickled float32 array (N, 9).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from densitydiff.errors import InputError
from densitydiff.formats.pkl import load_pickle, save_pickles

CTF_COLUMNS = (
    "D",
    "pixel_size",
    "defocus_u",
    "defocus_v",
    "defocus_angle",
    "voltage",
    "cs",
    "amplitude_contrast",
    "phase_shift",
)


@dataclasses.dataclass(frozen=True)
class CTFParams:
    """Per-image CTF parameters, each an (N,) float64 array, named after ctf.pkl's columns.

    D: box (pixels); pixel_size: Å; defocus_u, defocus_v: Å; defocus_angle: degrees;
    voltage: kV; cs: mm; amplitude_contrast: w (0..1); phase_shift: degrees. Scalars are
    broadcast to the common length.
    """

    D: np.ndarray
    pixel_size: np.ndarray
    defocus_u: np.ndarray
    defocus_v: np.ndarray
    defocus_angle: np.ndarray
    voltage: np.ndarray
    cs: np.ndarray
    amplitude_contrast: np.ndarray
    phase_shift: np.ndarray

    def __post_init__(self) -> None:
        values = [np.asarray(getattr(self, name), dtype=np.float64) for name in CTF_COLUMNS]
        try:
            values = np.broadcast_arrays(*(np.atleast_1d(v) for v in values))
        except ValueError:
            raise InputError("CTF parameters have different lengths") from None
        if values[0].ndim != 1:
            raise InputError(f"CTF parameters must be 1-D per column, got {values[0].shape}")
        for name, v in zip(CTF_COLUMNS, values):
            object.__setattr__(self, name, np.array(v))

    @classmethod
    def from_array(cls, params) -> CTFParams:
        """From ctf.pkl rows (N, 9) (or one row (9,)); NaN or infinite values are refused."""
        p = np.asarray(params, dtype=np.float64)
        if p.ndim == 1:
            p = p[None]
        if p.ndim != 2 or p.shape[1] != len(CTF_COLUMNS):
            raise InputError(f"CTF parameters must be an (N, 9) array, got shape {p.shape}")
        if not np.all(np.isfinite(p)):
            raise InputError("CTF parameters contain NaN or infinite values")
        return cls(*p.T)

    def to_array(self) -> np.ndarray:
        """ctf.pkl rows (N, 9) float32."""
        return np.stack([getattr(self, name) for name in CTF_COLUMNS], axis=1).astype(np.float32)

    def __len__(self) -> int:
        return len(self.D)

    def __getitem__(self, index) -> CTFParams:
        """The parameters of the images `index` selects (a slice, indices or a mask)."""
        return CTFParams(*(np.atleast_1d(getattr(self, name)[index]) for name in CTF_COLUMNS))


def save_ctf(path: str | os.PathLike, params: np.ndarray | CTFParams) -> None:
    """Write cryoDRGN's ctf.pkl (float32 N x 9)."""
    if isinstance(params, CTFParams):
        params = params.to_array()
    params = np.asarray(params, dtype=np.float32)
    _check_ctf(params, Path(path))
    save_pickles(path, params)


def load_ctf(path: str | os.PathLike) -> np.ndarray:
    """Read ctf.pkl as float32 (N, 9) (`CTFParams.from_array` names the columns)."""
    params = np.asarray(load_pickle(path), dtype=np.float32)
    _check_ctf(params, Path(path))
    return params


def _check_ctf(params: np.ndarray, path: Path) -> None:
    if params.ndim != 2 or params.shape[1] != len(CTF_COLUMNS):
        raise InputError(f"{path}: CTF parameters must be (N, 9), got {params.shape}")
    if not np.all(np.isfinite(params)):
        raise InputError(f"{path}: CTF parameters contain NaN or infinite values")
