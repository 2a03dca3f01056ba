"""`densitydiff data build|merge|info`: the training patch store."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import typer

from densitydiff.cli.options import fix_elements_option, progress_option, strict_elements_option
from densitydiff.console import human_bytes

data_app = typer.Typer(
    help="Build, merge and inspect training patch stores (zarr v3).", no_args_is_help=True
)


def _floats(text: str, what: str) -> tuple[float, ...]:
    from densitydiff.errors import InputError

    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise InputError(f"{what} {text!r}: expected numbers separated by commas") from None


def _parse_pairs(text: str, resolutions: Sequence[float]) -> tuple[tuple[float, float], ...]:
    """'all' (r_out <= r_in), 'up' (r_out < r_in), 'to-finest', or 'r_in:r_out,...'."""
    from densitydiff.data.build import all_pairs
    from densitydiff.errors import InputError

    res = sorted(float(r) for r in resolutions)
    text = text.strip()
    if text == "all":
        return all_pairs(res)
    if text == "up":
        return tuple(p for p in all_pairs(res) if p[1] < p[0])
    if text == "to-finest":
        return tuple((r, res[0]) for r in res)
    try:
        return tuple((float(a), float(b)) for a, b in (item.split(":") for item in text.split(",")))
    except ValueError:
        raise InputError(
            f"--pairs {text!r}: use all, up, to-finest or a list like 4:2,3:2"
        ) from None


def _parse_shard(text: str | None) -> tuple[int, int] | None:
    """'i/n' with 0 <= i < n -> (i, n); None -> None."""
    from densitydiff.errors import InputError

    if text is None:
        return None
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise InputError(f"--shard {text!r}: expected i/n, e.g. 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise InputError(f"--shard {text!r}: need 0 <= i < n")
    return i, n


def _held_out(values: list[str]) -> tuple[str, ...]:
    """Ids given directly, comma-separated, or one per line in a file."""
    from densitydiff.structures import structure_id

    out: list[str] = []
    for v in values:
        p = Path(v)
        items = p.read_text().split() if p.is_file() else v.split(",")
        out += [structure_id(Path(s.strip())) for s in items if s.strip()]
    return tuple(out)


@data_app.command("build")
def build(
    structures: list[Path] = typer.Argument(
        None, help="Structure files (.pdb/.cif, .gz) or directories of them."
    ),
    out: Path = typer.Option(..., "-o", "--out", help="The store to write (STORE.zarr)."),
    resolutions: str = typer.Option("2,3,4", help="Resolutions in Å, e.g. 2,3,4."),
    voxel_size: float = typer.Option(1.0, "--voxel-size", help="Voxel size in Å."),
    patch: int = typer.Option(64, help="Patch edge in voxels."),
    patches_per_structure: int = typer.Option(16, "--patches-per-structure"),
    rotations: int = typer.Option(1, help="Random rotations per structure."),
    pairs: str = typer.Option(
        "all", help="r_in:r_out pairs: all (r_out <= r_in), up (r_out < r_in), to-finest, 4:2,3:2."
    ),
    dtype: str = typer.Option("float16", help="float16 or float32."),
    compressor: str = typer.Option("zstd", help="zstd, blosc or none."),
    seed: int = typer.Option(0, help="Seed: rotations, patches and the split follow from it."),
    workers: int = typer.Option(1, help="Processes building structures in parallel."),
    shard: str = typer.Option(
        None, help="i/n: build every n-th structure, from the i-th (0-based)."
    ),
    val_fraction: float = typer.Option(0.1, "--val-fraction"),
    test_fraction: float = typer.Option(0.1, "--test-fraction"),
    held_out: list[str] = typer.Option(
        [], "--held-out", help="Structures for the test split: ids, comma list, or a file of ids."
    ),
    min_fraction: float = typer.Option(
        0.03, "--min-fraction", help="Fraction of a patch above --threshold needed (skips solvent)."
    ),
    threshold: float = typer.Option(0.5, help="Density threshold, z-score of the coarsest map."),
    padding: float = typer.Option(8.0, help="Å of solvent around the atoms in each grid."),
    fix_elements: bool = fix_elements_option(),
    strict_elements: bool = strict_elements_option(),
    preset: str = typer.Option(
        "clean",
        "--preset",
        help="Input realism: clean (inputs = targets at their resolution) or realistic "
        "(B-factors, global B, noise, local resolution, neighbours, mask, voxel sizes; "
        "docs/data.md).",
    ),
    realism: list[str] = typer.Option(
        [], "--realism", help="Override one realism knob, KEY=VALUE (ranges lo:hi); repeatable."
    ),
    progress: bool | None = progress_option(),
) -> None:
    """Simulate structures at several resolutions on one grid and store aligned patches.

    Resumable: run the same command again after an interruption. Example:
    densitydiff data build structures/ -o train.zarr --resolutions 2,3,4 --voxel-size 1 --workers 2
    """
    from densitydiff.extras import require

    started = time.perf_counter()
    require("data", what="data build")
    from densitydiff.console import show_progress
    from densitydiff.data.build import BuildConfig, build_store, realism_from
    from densitydiff.runrecord import run_record, write_record

    res = _floats(resolutions, "--resolutions")
    config = BuildConfig(
        resolutions=res,
        voxel_size=voxel_size,
        patch=patch,
        patches_per_structure=patches_per_structure,
        rotations=rotations,
        pairs=_parse_pairs(pairs, res),
        dtype=dtype,
        seed=seed,
        padding=padding,
        threshold=threshold,
        min_fraction=min_fraction,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        held_out=_held_out(held_out),
        compressor=compressor,
        fix_elements=fix_elements,
        strict_elements=strict_elements,
        realism=realism_from(preset, realism),
    )
    build_store(
        structures or [],
        out,
        config,
        workers=workers,
        shard=_parse_shard(shard),
        progress=show_progress(progress),
    )
    if (out / "zarr.json").is_file():  # STORE/run.json: the store's groups are its folders
        write_record(out / "run.json", run_record(config=config.to_json(), seed=seed,
                                                  inputs=structures or [], started=started))


@data_app.command("merge")
def merge(
    shards: list[Path] = typer.Argument(..., help="Shard stores built with --shard i/n."),
    out: Path = typer.Option(..., "-o", "--out", help="The merged store (must not exist)."),
) -> None:
    """Join shard stores (same arguments, different --shard) into one store.

    Example: densitydiff data merge part0.zarr part1.zarr -o train.zarr
    """
    import sys

    from densitydiff.extras import require

    require("data", what="data merge")
    from densitydiff.data.build import merge_stores
    from densitydiff.runrecord import run_record, write_record

    started = time.perf_counter()
    result = merge_stores(shards, out)
    write_record(out / "run.json", run_record(inputs=shards, started=started,
                                              merged=result["merged"], missing=result["missing"]))
    print(f"merged {result['merged']} structures into {out}", file=sys.stderr)
    if result["missing"]:
        print(
            f"not built in any shard ({len(result['missing'])}): {', '.join(result['missing'])}",
            file=sys.stderr,
        )


@data_app.command("info")
def info(
    store: Path = typer.Argument(..., help="A store written by `densitydiff data build`."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    quick: bool = typer.Option(
        False, "--quick", help="Check files and metadata only; do not decode every chunk."
    ),
) -> None:
    """Counts per split and resolution, patch size and bytes of a store; checks it is whole.

    Every chunk is decoded (a corrupt or half-built store exits 2); --quick skips decoding.
    Example: densitydiff data info train.zarr --json
    """
    from densitydiff.extras import require

    require("data", what="data info")
    from densitydiff.data.layout import store_info, verify_store

    verify_store(store, decode=not quick)
    rec = store_info(store)
    if as_json:
        print(json.dumps(rec))
        return
    print(f"store        {rec['path']}  (densitydiff {rec['version']})")
    print(f"patch        {rec['patch']}^3 voxels of {rec['voxel_size']} Å, {rec['dtype']}")
    print(f"resolutions  {', '.join(f'{r:g}' for r in rec['resolutions'])} Å")
    print(f"pairs        {' '.join(f'{a:g}->{b:g}' for a, b in rec['pairs'])}")
    head = ("split", "structures", "missing", "res Å", "patches", "size")
    print("{:6s} {:>10s} {:>8s} {:>6s} {:>8s} {:>10s}".format(*head))
    for name, s in rec["splits"].items():
        for r, n in s["patches_per_resolution"].items():
            print(
                f"{name:6s} {s['structures']:10d} {s['structures_missing']:8d} {r:>6s} {n:8d} "
                f"{human_bytes(s['bytes_per_resolution'][r]):>10s}"
            )
    print(
        f"size         {human_bytes(rec['bytes_on_disk'])} on disk, "
        f"{human_bytes(rec['bytes_uncompressed'])} uncompressed"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
