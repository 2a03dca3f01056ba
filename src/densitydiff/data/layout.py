"""The patch store's layout on disk: writing a structure's group, reading metadata and chunks.

Layout of STORE.zarr (a directory on local disk):

    zarr.json                   root group; attrs["densitydiff"]: format, version, build arguments,
                                resolutions, voxel size, patch, dtype, pairs, split {id: split},
                                shard
    structures/<id>/zarr.json   one group per structure; attrs: source file, rotations, grids,
                                normalisation statistics, patch origins, and "complete" (set last)
    structures/<id>/r<res>      (n_patches, P, P, P) array, one chunk (1, P, P, P) per patch

Every patch is stored once per resolution, all on the same grid; a training pair (r_in, r_out)
is two reads of the same patch index, never a copy. A structure's group is marked complete
only after all its chunks are written (zarr writes each file by temp file + rename), so a
killed build leaves incomplete groups that the next run deletes and rebuilds.

Reading: `ChunkReader` reads this layout (one chunk file per patch, bytes + zstd/blosc codecs)
straight from the chunk file and decodes it with numcodecs, which costs a fifth of zarr's
asynchronous read path per chunk on a busy 2-core machine; arrays in any other layout are read
through zarr.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from densitydiff.errors import InputError

FORMAT = 1
SPLITS = ("train", "val", "test")


def array_name(resolution: float) -> str:
    """Name of the array holding the patches at `resolution` Å: 2.0 -> 'r2', 2.5 -> 'r2.5'."""
    return f"r{float(resolution):g}"


def input_array_name(resolution: float) -> str:
    """Name of the array of degraded inputs at `resolution` Å (stores built with realism):
    2.0 -> 'i2'; the targets stay in array_name(resolution)."""
    return f"i{float(resolution):g}"


def _compressors(name: str):
    if name == "none":
        return None
    if name == "blosc":
        from zarr.codecs import BloscCodec

        return (BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"),)
    from zarr.codecs import ZstdCodec

    return (ZstdCodec(level=3),)


def write_structure(
    store: Path,
    sid: str,
    arrays: dict[float, np.ndarray],
    meta: dict,
    config,
    *,
    source: str = "",
    inputs: dict[float, np.ndarray] | None = None,
) -> None:
    """Write one structure's patches (`config`: its BuildConfig) and, for a realistic build,
    its degraded inputs; the group is marked complete last, so a crash shows."""
    import zarr

    group = zarr.open_group(
        store / "structures" / sid,
        mode="w",
        attributes={"structure_id": sid, "complete": False},
        zarr_format=3,
    )
    n = int(next(iter(arrays.values())).shape[0])
    P = config.patch
    named = [(array_name(r), arrays[r]) for r in config.resolutions]
    if inputs:
        named += [(input_array_name(r), inputs[r]) for r in config.resolutions]
    for name, values in named:
        a = group.create_array(
            name=name,
            shape=(n, P, P, P),
            chunks=(1, P, P, P),
            dtype=config.dtype,
            compressors=_compressors(config.compressor),
            fill_value=0.0,
        )
        a[...] = values.astype(config.dtype)
    _mark_complete(group, {"structure_id": sid, "source": source, "n_patches": n, **meta})


def _mark_complete(group, record: dict) -> None:
    """The last write of a structure: its metadata with complete=True (one atomic file write)."""
    group.attrs.update({**record, "complete": True})


def is_complete(store: Path, sid: str) -> bool:
    """True when the structure's group exists and was marked complete (its last write)."""
    try:
        text = (store / "structures" / sid / "zarr.json").read_text()
        return bool(json.loads(text).get("attributes", {}).get("complete", False))
    except (OSError, ValueError):
        return False


def root_attrs(config, split: dict[str, str], sources: dict[str, str], shard):
    """The root group's attrs for a store built with `config` (a BuildConfig)."""
    from densitydiff import __version__

    return {
        "densitydiff": {
            "format": FORMAT,
            "kind": "patch-store",
            "version": __version__,
            "build": config.to_json(),
            "resolutions": list(config.resolutions),
            "voxel_size": config.voxel_size,
            "patch": config.patch,
            "dtype": config.dtype,
            "pairs": [list(p) for p in config.pairs],
            "normalisation": "z-score of each whole simulated grid (per structure, rotation, "
            "resolution); statistics in each structure's attrs['stats']",
            "split": dict(sorted(split.items())),
            **({} if config.realism.is_clean else {"inputs": "degraded"}),
            "sources": dict(sorted(sources.items())),
            "shard": list(shard) if shard else None,
        }
    }


def read_root(store: str | os.PathLike) -> dict:
    """The store's root metadata (attrs['densitydiff']); InputError when it is not a store."""
    path = Path(store) / "zarr.json"
    try:
        attrs = json.loads(path.read_text()).get("attributes", {})
    except FileNotFoundError:
        raise InputError(f"not a densitydiff store (no {path})") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"unreadable store metadata {path}: {exc}") from None
    meta = attrs.get("densitydiff")
    if not isinstance(meta, dict) or meta.get("kind") != "patch-store":
        raise InputError(f"{store} is a zarr group but not a densitydiff patch store")
    if meta.get("format") != FORMAT:
        raise InputError(f"{store}: store format {meta.get('format')}, this version reads {FORMAT}")
    return meta


def open_root(store: Path, attrs: dict) -> None:
    """Create the root group, or check that an existing one was built with the same arguments."""
    import zarr

    if not (store / "zarr.json").exists():
        # "w-" never deletes: a shard that starts at the same moment keeps what another wrote
        try:
            zarr.open_group(store, mode="w-", attributes=attrs, zarr_format=3)
        except Exception:  # created meanwhile by another shard: checked below
            if not (store / "zarr.json").exists():
                raise
    old, new = read_root(store), attrs["densitydiff"]
    for key in ("build", "split"):
        if old[key] != new[key]:
            raise InputError(
                f"{store} was built with different "
                f"{'arguments' if key == 'build' else 'structures'}; "
                "resume with the same ones or write a new store"
            )
    try:
        zarr.open_group(store, mode="r+").require_group("structures")
    except Exception:  # a simultaneous build created it between the check and the write
        if not (store / "structures" / "zarr.json").exists():
            raise


def _dir_bytes(path: Path) -> int:
    """Bytes on disk of the files under `path` (allocated blocks, as du counts them)."""
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.stat(os.path.join(root, f)).st_blocks * 512
            except OSError:
                pass
    return total


def complete_structures(store: str | os.PathLike) -> dict[str, dict]:
    """{id: group attrs} of the structures whose build finished."""
    store = Path(store)
    out = {}
    base = store / "structures"
    if not base.is_dir():
        return out
    for d in sorted(base.iterdir()):
        if not d.is_dir():
            continue
        try:
            attrs = json.loads((d / "zarr.json").read_text()).get("attributes", {})
        except (OSError, ValueError):
            continue
        if attrs.get("complete"):
            out[d.name] = attrs
    return out


def verify_store(store: str | os.PathLike, decode: bool = True) -> int:
    """Check every structure group: readable, complete, each array whole; return the count.

    Raises InputError for unreadable metadata, a half-built group (a build stopped: run it
    again), an array with missing chunks (a build never leaves a patch unwritten: each holds
    density) or, with `decode`, a chunk that does not decode. Without `decode` only files are
    listed, which is quick.
    """
    import zarr

    store = Path(store)
    meta = read_root(store)
    base = store / "structures"
    groups = sorted(d for d in base.iterdir() if d.is_dir()) if base.is_dir() else []
    for d in groups:
        try:
            attrs = json.loads((d / "zarr.json").read_text()).get("attributes", {})
        except (OSError, ValueError) as exc:
            raise InputError(f"corrupt store: unreadable {d / 'zarr.json'} ({exc})") from None
        if not attrs.get("complete"):
            raise InputError(
                f"{store}: structure {d.name} is half-built (a build stopped); run the same "
                "`densitydiff data build` again to finish it"
            )
        n = int(attrs.get("n_patches", -1))
        names = [array_name(r) for r in meta["resolutions"]]
        if meta.get("inputs") == "degraded":
            names += [input_array_name(r) for r in meta["resolutions"]]
        for name in names:
            path = d / name
            try:
                array = zarr.open_array(path, mode="r")
                stored, expected = array.nchunks_initialized, array.nchunks
            except Exception as exc:  # noqa: BLE001 - zarr raises many types for bad metadata
                msg = " ".join(str(exc).split())[:200] or type(exc).__name__
                raise InputError(f"corrupt store: unreadable array {path} ({msg})") from None
            if array.shape[0] != n:
                raise InputError(f"corrupt store: {path} holds {array.shape[0]} patches, not {n}")
            if stored < expected:
                raise InputError(f"corrupt store: {path} misses {expected - stored} chunk files")
            if decode:
                reader = ChunkReader.open(path)
                for p in range(n):
                    reader[p]
    return len(groups)


def split_structures(store: str | os.PathLike, split: str) -> dict[str, str]:
    """{id: source file name} of the store's structures in `split` (train, val or test), in id
    order: what an evaluation or a calibration on that split must simulate again."""
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    meta = read_root(store)
    sources = meta.get("sources") or {}
    return {s: str(sources.get(s, "")) for s, sp in sorted(meta["split"].items()) if sp == split}


def store_info(store: str | os.PathLike) -> dict:
    """Counts per split and resolution, patch size and bytes of a store."""
    store = Path(store)
    meta = read_root(store)
    done = complete_structures(store)
    res = meta["resolutions"]
    splits: dict[str, dict] = {}
    for name in SPLITS:
        ids = [s for s, sp in meta["split"].items() if sp == name]
        built = [s for s in ids if s in done]
        patches = sum(int(done[s]["n_patches"]) for s in built)
        splits[name] = {
            "structures": len(built),
            "structures_missing": len(ids) - len(built),
            "patches": patches,
            "patches_per_resolution": {f"{r:g}": patches for r in res},
            "bytes_per_resolution": {
                f"{r:g}": sum(_dir_bytes(store / "structures" / s / array_name(r)) for s in built)
                for r in res
            },
        }
    itemsize = 2 if meta["dtype"] == "float16" else 4
    n_all = sum(v["patches"] for v in splits.values())
    return {
        "path": str(store),
        "version": meta["version"],
        "patch": meta["patch"],
        "voxel_size": meta["voxel_size"],
        "resolutions": res,
        "pairs": meta["pairs"],
        "dtype": meta["dtype"],
        "shard": meta["shard"],
        "splits": splits,
        "bytes_on_disk": _dir_bytes(store),
        "bytes_uncompressed": n_all * len(res) * meta["patch"] ** 3 * itemsize,
    }


class ChunkReader:
    """Read patch p of a (n, P, P, P) array stored one chunk per patch, by file and codec."""

    def __init__(self, path: Path, meta: dict, codec) -> None:
        self.path = path
        self.shape = tuple(meta["shape"][1:])
        self.dtype = np.dtype(meta["data_type"]).newbyteorder("<")
        self.fill_value = meta.get("fill_value", 0.0)
        self.codec = codec

    @staticmethod
    def open(path: Path):
        """A ChunkReader for the layout `write_structure` writes, else the zarr array itself."""
        try:
            meta = json.loads((path / "zarr.json").read_text())
        except (OSError, ValueError):
            raise InputError(f"unreadable patch array {path}") from None
        codecs = meta.get("codecs", [])
        simple = (
            meta.get("chunk_grid", {}).get("configuration", {}).get("chunk_shape")
            == [1, *meta["shape"][1:]]
            and meta.get("chunk_key_encoding")
            == {"name": "default", "configuration": {"separator": "/"}}
            and codecs[:1] == [{"name": "bytes", "configuration": {"endian": "little"}}]
            and len(codecs) <= 2
            and (len(codecs) == 1 or codecs[1]["name"] in ("zstd", "blosc"))
            and meta.get("storage_transformers", []) == []
        )
        if not simple:
            import zarr

            return zarr.open_array(path, mode="r")
        codec = None
        if len(codecs) == 2:
            from numcodecs import Blosc, Zstd

            codec = Zstd() if codecs[1]["name"] == "zstd" else Blosc()
        return ChunkReader(path, meta, codec)

    def __getitem__(self, p: int) -> np.ndarray:
        file = self.path / "c" / str(int(p)) / "0" / "0" / "0"
        try:
            raw = file.read_bytes()
        except FileNotFoundError:  # zarr leaves chunks equal to the fill value unwritten
            return np.full(self.shape, self.fill_value, dtype=self.dtype)
        try:
            data = self.codec.decode(raw) if self.codec is not None else raw
            return np.frombuffer(data, dtype=self.dtype).reshape(self.shape)
        except Exception as exc:  # noqa: BLE001 - codecs raise many types for damaged bytes
            msg = " ".join(str(exc).split()) or type(exc).__name__
            raise InputError(f"corrupt chunk {file} in the store ({msg})") from None
