"""Hostile inputs for the audit tests, built small in a folder: bad maps, models, stores, runs.

Each builder writes files a realistic user could hand to a command by mistake (or on purpose):
wrong headers, NaNs, truncated or corrupt files, malicious pickles. Sizes are tiny so the whole
set builds in a few seconds.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import pickle
import shutil
from pathlib import Path

import numpy as np

from tests.conftest import EXAMPLES

MARKER = "pwned.txt"  # a malicious payload would create this file in the input folder


class Evil:
    """A pickle payload: unpickling it would create the file `path` (via os.system)."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def _mrc(path: Path, data: np.ndarray, voxel=1.0, stack: bool = False) -> Path:
    import mrcfile

    with mrcfile.new(path, overwrite=True) as m:
        m.set_data(np.asarray(data, np.float32))
        m.voxel_size = voxel
        if stack:
            m.set_image_stack()
    return path


def _pdb_atoms(coords: list[tuple[float, float, float]], element: str = "C") -> str:
    lines = []
    for i, (x, y, z) in enumerate(coords, 1):
        lines.append(
            f"ATOM  {i:5d}  CA  ALA A{i:4d}    {x:8.3f}{y:8.3f}{z:8.3f}  1.00 20.00"
            f"          {element:>2s}"
        )
    return "\n".join(lines) + "\n"


def maps(d: Path) -> None:
    """Map files: a good 16^3 map and every way a map file goes wrong."""
    rng = np.random.default_rng(0)
    good = rng.normal(size=(16, 16, 16)).astype(np.float32)
    _mrc(d / "good.mrc", good)
    _mrc(d / "other_grid.mrc", good[:, :, :12])
    _mrc(d / "zerovox.mrc", good, voxel=0.0)
    _mrc(d / "negvox.mrc", good, voxel=-1.0)
    nan = good.copy()
    nan[3, 4, 5] = np.nan
    _mrc(d / "nan.mrc", nan)
    inf = good.copy()
    inf[1, 2, 3] = np.inf
    _mrc(d / "inf.mrc", inf)
    _mrc(d / "image2d.mrc", good[0])
    _mrc(d / "stack.mrcs", good[:5], stack=True)
    _mrc(d / "stack100.mrcs", rng.normal(size=(100, 16, 16)), voxel=2.0, stack=True)
    _mrc(d / "stack_as.mrc", good[:5], stack=True)  # image-stack flag, map suffix
    _mrc(d / "zeros.mrc", np.zeros((16, 16, 16)))
    _mrc(d / "huge_values.mrc", np.full((8, 8, 8), 3e38, np.float32))
    _mrc(d / "tiny4.mrc", good[:4, :4, :4])
    (d / "empty.mrc").write_bytes(b"")
    (d / "text.mrc").write_text("this is not a map\n" * 100)
    raw = (d / "good.mrc").read_bytes()
    (d / "truncated.mrc").write_bytes(raw[: 1024 + 1000])
    big = bytearray(raw)
    big[92:96] = np.int32(2**30).tobytes()  # NSYMBT: a 1 GiB extended header
    (d / "huge_nsymbt.mrc").write_bytes(bytes(big))
    (d / "notgzip.mrc.gz").write_bytes(raw[:4000])
    with gzip.open(d / "good.mrc.gz", "wb") as fh:
        fh.write(raw)
    (d / "adir.mrc").mkdir()
    (d / "side.json").write_text('{"my": "notes"}\n')  # beside side.mrc: not a sharpen record


def structures(d: Path) -> None:
    """Atomic models: NaN coordinates, no atoms, blank elements, a 3-model trajectory."""
    coords = [(float(i), 0.0, 0.0) for i in range(10)]
    (d / "nan_coord.pdb").write_text(
        _pdb_atoms(coords).replace("   9.000", "     nan", 1) + "END\n"
    )
    (d / "noatoms.pdb").write_text("REMARK nothing here\nEND\n")
    (d / "blank_elem.pdb").write_text(_pdb_atoms(coords, element="") + "END\n")
    (d / "notgzip.pdb.gz").write_text("ATOM  garbage\n")
    text = gzip.decompress((EXAMPLES / "1orc.pdb.gz").read_bytes()).decode()
    atoms = [ln for ln in text.splitlines() if ln.startswith(("ATOM", "HETATM"))]
    frames = []
    for k in range(3):
        frames.append(f"MODEL     {k + 1:4d}")
        for ln in atoms:
            x = float(ln[30:38]) + 0.5 * k
            frames.append(f"{ln[:30]}{x:8.3f}{ln[38:]}")
        frames.append("ENDMDL")
    (d / "adk3.pdb").write_text("\n".join(frames) + "\nEND\n")


def latents(d: Path) -> None:
    """z files: good, wrong shape, NaN, one row, huge values, malicious."""
    rng = np.random.default_rng(1)
    z = rng.normal(size=(64, 2)).astype(np.float32)
    for name, obj in {
        "z_good.pkl": z,
        "z_1d.pkl": z[:, 0],
        "z_3d.pkl": z[None],
        "z_nan.pkl": np.where(np.arange(64)[:, None] == 3, np.nan, z),
        "z_onerow.pkl": z[:1],
        "z_huge.pkl": z * np.float32(1e30),
        "z_text.pkl": "not latents",
    }.items():
        with open(d / name, "wb") as fh:
            pickle.dump(obj, fh)
    with open(d / "z_evil.pkl", "wb") as fh:
        pickle.dump(Evil(d / MARKER), fh)
    (d / "z_empty.pkl").write_bytes(b"")
    np.save(d / "z_good.npy", z)


def store(d: Path) -> Path:
    """A tiny store (1orc, patch 16, 2 patches, 2 and 4 Å) and broken copies of it."""
    from densitydiff.data.build import BuildConfig, build_store

    base = d / "base.zarr"
    config = BuildConfig(
        resolutions=(2.0, 4.0), voxel_size=1.0, patch=16, patches_per_structure=2,
        dtype="float32", seed=0, val_fraction=0.0, test_fraction=0.0,
    )  # fmt: skip
    build_store([EXAMPLES / "1orc.pdb.gz"], base, config, progress=False, log=lambda _: None)
    group = base / "structures" / "1orc"
    chunks = sorted(p for p in (group / "r2").rglob("*") if p.is_file() and p.name != "zarr.json")

    def copy(name: str) -> Path:
        out = d / name
        shutil.copytree(base, out)
        return out

    c = copy("corrupt_chunk.zarr")  # every chunk, so any training step reads a bad one
    t = copy("trunc_chunk.zarr")
    for chunk in (p for p in group.rglob("*") if p.is_file() and p.name != "zarr.json"):
        (c / chunk.relative_to(base)).write_bytes(b"\x00garbage" * 8)
        (t / chunk.relative_to(base)).write_bytes(chunk.read_bytes()[:10])
    m = copy("missing_chunk.zarr")
    (m / chunks[0].relative_to(base)).unlink()
    a = copy("corrupt_arraymeta.zarr")
    (a / "structures" / "1orc" / "r2" / "zarr.json").write_text("{not json")
    g = copy("corrupt_group.zarr")
    (g / "structures" / "1orc" / "zarr.json").write_text("{not json")
    h = copy("half.zarr")
    meta = h / "structures" / "1orc" / "zarr.json"
    meta.write_text(meta.read_text().replace('"complete": true', '"complete": false'))
    p12 = dataclasses.replace(config, patch=12)
    build_store([EXAMPLES / "1orc.pdb.gz"], d / "p12.zarr", p12, progress=False, log=lambda _: None)
    p7 = dataclasses.replace(config, patch=7, min_fraction=0.0)
    build_store([EXAMPLES / "1orc.pdb.gz"], d / "p7.zarr", p7, progress=False, log=lambda _: None)
    r = copy("noroot.zarr")
    (r / "zarr.json").unlink()
    (d / "plaindir").mkdir()
    (d / "plaindir" / "notes.txt").write_text("my notes\n")
    return base


def bad_checkpoints(d: Path) -> None:
    """Files named like checkpoints: truncated, malicious, not a dict, text."""
    import torch

    torch.save({"state_dict": {}, "evil": Evil(d / MARKER)}, d / "evil.ckpt")
    torch.save({"w": torch.zeros(3)}, d / "good_blob.ckpt")
    raw = (d / "good_blob.ckpt").read_bytes()
    (d / "trunc.ckpt").write_bytes(raw[: len(raw) // 2])
    torch.save([1, 2, 3], d / "list.pt")
    (d / "text.pt").write_text("not a checkpoint\n")
    (d / "evil.pt").write_bytes((d / "evil.ckpt").read_bytes())


def yaml_files(d: Path) -> None:
    (d / "badtype.yaml").write_text("trainer: {log_every_n_steps: a}\n")
    (d / "badyaml.yaml").write_text("trainer: [unclosed\n")
    (d / "list.yaml").write_text("- 1\n- 2\n")
    (d / "prior_badtype.yaml").write_text("width: wide\n")
    (d / "evil.yaml").write_text(
        f"!!python/object/apply:os.system ['touch {d / MARKER}']\n"
    )


def runs(d: Path, base_store: Path) -> None:
    """Runs to resume or read: sharpen runs with a malicious or truncated last.ckpt, priors."""
    import torch

    for name, src in (("evilresume", "evil.ckpt"), ("truncresume", "trunc.ckpt")):
        ck = d / name / "checkpoints"
        ck.mkdir(parents=True)
        shutil.copyfile(d / src, ck / "last.ckpt")
        (d / f"prior_{name}" / "checkpoints").mkdir(parents=True)
        shutil.copyfile(d / src, d / f"prior_{name}" / "checkpoints" / "last.ckpt")
    (d / "prior_nokeys").mkdir()
    from densitydiff.prior.train import FORMAT

    torch.save({"format": FORMAT}, d / "prior_nokeys" / "prior.pt")
    (d / "prior_badsd").mkdir()
    torch.save(
        {
            "format": FORMAT, "dim": 2, "config": {"width": 8, "depth": 1, "emb_dim": 8},
            "state_dict": {"net.output.bias": torch.zeros(5)},
            "mean": torch.zeros(2), "std": torch.ones(2), "latents": torch.zeros(4, 2),
        },
        d / "prior_badsd" / "prior.pt",
    )  # fmt: skip
    (d / "prior_evil").mkdir()
    shutil.copyfile(d / "evil.ckpt", d / "prior_evil" / "prior.pt")
    (d / "prior_empty").mkdir()
    from tests.tiny_models import export_tiny

    export_tiny("unet", d)  # leaves d/run_unet/checkpoints/last.ckpt, a Lightning checkpoint


def prior_ok(d: Path) -> Path:
    """A real (tiny) trained prior: 64 latents in 2-D, 1 epoch of a width-8 net."""
    from densitydiff.prior.train import PriorConfig, train_prior

    cfg = PriorConfig(epochs=1, batch_size=64, width=8, depth=1, emb_dim=8)
    train_prior(d / "z_good.pkl", d / "prior_ok", cfg, progress=False)
    shutil.copyfile(d / "z_good.pkl", d / "z_copy.pkl")
    return d / "prior_ok"


def particles_files(d: Path) -> None:
    """cryoDRGN/RELION side files with wrong shapes and counts."""
    with open(d / "ctf_wrongcols.pkl", "wb") as fh:
        pickle.dump(np.zeros((5, 4), np.float32), fh)
    with open(d / "poses_evil.pkl", "wb") as fh:
        pickle.dump(Evil(d / MARKER), fh)
    with open(d / "ctf_evil.pkl", "wb") as fh:
        pickle.dump(Evil(d / MARKER), fh)
    with open(d / "ind_evil.pkl", "wb") as fh:
        pickle.dump(Evil(d / MARKER), fh)
    rot = np.repeat(np.eye(3, dtype=np.float32)[None], 4, axis=0)
    with open(d / "poses4.pkl", "wb") as fh:
        pickle.dump((rot, np.zeros((4, 2), np.float32)), fh)
    _mrc(d / "particles5.mrcs", np.zeros((5, 8, 8)), stack=True)
    (d / "nocols.star").write_text(
        "data_particles\n\nloop_\n_rlnImageName #1\n_rlnVoltage #2\n1@p.mrcs 300\n"
    )


def build_all(d: Path) -> Path:
    """Every hostile input in folder `d`; returns `d`."""
    d.mkdir(parents=True, exist_ok=True)
    maps(d)
    structures(d)
    latents(d)
    bad_checkpoints(d)
    yaml_files(d)
    base = store(d)
    runs(d, base)
    prior_ok(d)
    particles_files(d)
    return d
