"""Volumes at latents: the decoder on the whole 3-D frequency lattice, inverse-transformed.

A volume is real(ifftn_centered(F)) times img_std D (back to the images' units), on the images'
D^3 grid with their pixel size and the origin at 0 (cryoDRGN's `eval_vol` convention), so it
opens in ChimeraX on top of cryoDRGN's volumes and of `simulate particles`' ground truth.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from densitydiff.errors import InputError
from densitydiff.hetero.checkpoint import HeteroRun
from densitydiff.maps import DensityMap


def check_latents(run: HeteroRun, z) -> np.ndarray:
    """Latents as (M, zdim) float32, or InputError when their dimension is not the run's."""
    z = np.atleast_2d(np.asarray(z, dtype=np.float32))
    if z.ndim != 2 or z.shape[1] != run.zdim:
        raise InputError(f"latents have dimension {z.shape[-1]} but the run's zdim is {run.zdim}")
    if not np.isfinite(z).all():
        raise InputError("latents hold NaN or infinite values")
    return z


def decode_volume(run: HeteroRun, z) -> np.ndarray:
    """The volume (D, D, D) (z, y, x) float32 at one latent z (zdim,)."""
    import torch

    from densitydiff.simulate.fft import ifftn_centered

    zt = torch.from_numpy(check_latents(run, z)[0])
    spectrum = run.model.volume_spectrum(zt)
    volume = ifftn_centered(spectrum.to(torch.complex128)).real * (run.img_std * run.D)
    return volume.numpy().astype(np.float32)


def decode_volumes(run: HeteroRun, z) -> Iterator[np.ndarray]:
    """One volume per row of z (M, zdim), one at a time (memory: one volume)."""
    for row in check_latents(run, z):
        yield decode_volume(run, row)


def as_map(run: HeteroRun, volume: np.ndarray) -> DensityMap:
    """A volume as a DensityMap: the images' pixel size, origin 0."""
    return DensityMap(volume, run.pixel_size, (0.0, 0.0, 0.0))


def write_volume(run: HeteroRun, z, out: str | os.PathLike) -> Path:
    """Decode one latent and write it to OUT (.mrc), atomically."""
    from densitydiff.formats.maps import write_map

    z = check_latents(run, z)
    if len(z) != 1:
        raise InputError(f"one latent for one volume, got {len(z)}; use --zfile and a folder")
    return write_map(out, as_map(run, decode_volume(run, z[0])))


def write_volumes(
    run: HeteroRun,
    z,
    out_dir: str | os.PathLike,
    source: str = "",
    record: dict | None = None,
    *,
    latents: bool = False,
    strip: str | None = None,
) -> Path:
    """Decode each row of z into OUT_DIR/vol_000.mrc, vol_001.mrc, ... (cryoDRGN's names), with
    z_values.txt and volumes.json (`record`, a run record, with what was decoded); the folder
    appears whole (`outputs.atomic_dir`). `latents`: also z.txt and z.npy (`prior sample
    --volumes`); `strip`: a PNG of that name with the central slice of each volume in a row."""
    from densitydiff.formats.maps import write_map
    from densitydiff.outputs import atomic_dir

    z = check_latents(run, z)
    with atomic_dir(out_dir, "volumes.json") as tmp:
        slices = []
        for i, volume in enumerate(decode_volumes(run, z)):
            write_map(tmp / f"vol_{i:03d}.mrc", as_map(run, volume))
            slices.append(volume[volume.shape[0] // 2])
        np.savetxt(tmp / "z_values.txt", z)
        if latents:
            np.savetxt(tmp / "z.txt", z)
            np.save(tmp / "z.npy", z)
        if strip is not None:
            from densitydiff.viz import plot_strip

            plot_strip(slices, tmp / strip, voxel_size=run.pixel_size)
        info = {
            "n": len(z),
            "zdim": run.zdim,
            "pixel_size": run.pixel_size,
            "D": run.D,
            "zfile": source,
        }
        if record is not None:
            from densitydiff.runrecord import write_record

            write_record(tmp / "volumes.json", {**record, **info})
        else:
            (tmp / "volumes.json").write_text(json.dumps(info, indent=1) + "\n")
    return Path(out_dir)
