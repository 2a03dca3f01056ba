"""Building a patch store: find structures, simulate each once, cut aligned patches, write them.

Work is spread over processes (one structure at a time each) or over shards (`--shard i/n`,
merged afterwards); see `layout` for what is written where.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from densitydiff.data.layout import (
    complete_structures,
    is_complete,
    open_root,
    read_root,
    root_attrs,
    write_structure,
)
from densitydiff.data.splits import assign_splits, stable_hash
from densitydiff.errors import InputError
from densitydiff.maps import voxel_triple
from densitydiff.structures import is_structure_file, structure_id


def _range(value, name: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise InputError(f"realism {name} must be a range lo:hi, got {value!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo < 0 or hi < lo:
        raise InputError(f"realism {name} must be a range 0 <= lo <= hi, got {value!r}")
    return lo, hi


@dataclasses.dataclass(frozen=True)
class Realism:
    """How far the inputs of a store look like real maps (docs/data.md, "Realism"; the targets
    stay the same atoms, clean). Every knob off (the default, preset `clean`): inputs = targets.

    atomic_b: the file's B-factors blur the input; global_b: an extra B (Å^2) drawn uniformly
    per map; target_b: the targets' uniform B; resolution_spread: core r_in - spread, periphery
    r_in + spread (Å); noise_snr: the low-frequency SNR range (log-uniform) of noise whose
    half-map FSC crosses 0.143 at r_in; neighbours: copies of the structure at the box edge;
    mask_width / mask_radius: a soft solvent mask (Å); voxel_range: the voxel size (Å) each
    input is recorded on before resampling to the store's grid; postprocess: the fraction of
    inputs sharpened as deposited maps are (their Guinier B times a scale drawn uniformly from
    postprocess_scale removed, low-passed at r_in; filters.guinier_sharpen).
    """

    atomic_b: bool = False
    global_b: tuple[float, float] = (0.0, 0.0)
    target_b: float = 0.0
    resolution_spread: float = 0.0
    noise_snr: tuple[float, float] = (0.0, 0.0)
    neighbours: int = 0
    mask_width: float = 0.0
    mask_radius: float = 6.0
    voxel_range: tuple[float, float] = (0.0, 0.0)
    postprocess: float = 0.0
    postprocess_scale: tuple[float, float] = (1.0, 1.0)

    def __post_init__(self) -> None:
        for name in ("global_b", "noise_snr", "voxel_range", "postprocess_scale"):
            object.__setattr__(self, name, _range(getattr(self, name), name))
        for name in ("target_b", "resolution_spread", "mask_width", "mask_radius"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or not np.isfinite(v) or v < 0:
                raise InputError(f"realism {name} must be a number >= 0, got {v!r}")
            object.__setattr__(self, name, float(v))
        if self.mask_width > 0 and self.mask_radius <= 0:
            raise InputError("realism mask_radius must be positive with a mask")
        if int(self.neighbours) != self.neighbours or self.neighbours < 0:
            raise InputError(f"realism neighbours must be an integer >= 0, {self.neighbours!r}")
        object.__setattr__(self, "neighbours", int(self.neighbours))
        p = self.postprocess
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p <= 1:
            raise InputError(f"realism postprocess must be a fraction in [0, 1], got {p!r}")
        object.__setattr__(self, "postprocess", float(p))
        if p == 0:  # off: the scale is never drawn, so one canonical value (the default)
            object.__setattr__(self, "postprocess_scale", (1.0, 1.0))
        object.__setattr__(self, "atomic_b", bool(self.atomic_b))
        snr = self.noise_snr
        from densitydiff.simulate.realism import SNR_AT_THRESHOLD

        if snr[1] > 0 and snr[0] <= SNR_AT_THRESHOLD:
            raise InputError(
                f"realism noise_snr must lie above {SNR_AT_THRESHOLD:.3f} (0 0: no noise)"
            )

    @property
    def is_clean(self) -> bool:
        return self == Realism()

    def to_json(self, full: bool = False) -> dict:
        """Every knob (lists for ranges); unless `full`, without post-processing when it is off,
        as stores built before that knob recorded it, so they resume unchanged."""
        d = dataclasses.asdict(self)
        if not full and self.postprocess == 0:
            del d["postprocess"], d["postprocess_scale"]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


REALISM_PRESETS = {
    "clean": Realism(),
    "realistic": Realism(
        atomic_b=True,
        global_b=(0.0, 150.0),
        target_b=10.0,
        resolution_spread=1.0,
        noise_snr=(2.0, 30.0),
        neighbours=2,
        mask_width=6.0,
        mask_radius=6.0,
        voxel_range=(0.7, 1.6),
        postprocess=0.5,
        postprocess_scale=(0.5, 1.0),
    ),
}


def realism_from(preset: str = "clean", overrides: Sequence[str] = ()) -> Realism:
    """A preset (`clean`, `realistic`) with KEY=VALUE overrides (ranges as lo:hi)."""
    if preset not in REALISM_PRESETS:
        raise InputError(f"unknown realism preset {preset!r}; expected {sorted(REALISM_PRESETS)}")
    d = REALISM_PRESETS[preset].to_json(full=True)
    for item in overrides:
        key, sep, value = str(item).partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in d:
            raise InputError(f"--realism {item!r}: expected KEY=VALUE with KEY one of {sorted(d)}")
        try:
            if isinstance(d[key], list):
                d[key] = [float(v) for v in value.split(":")]
            elif isinstance(d[key], bool):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(value)
                d[key] = value.lower() in ("true", "1", "yes")
            elif key == "neighbours":
                d[key] = int(value)
            else:
                d[key] = float(value)
        except ValueError:
            raise InputError(f"--realism {item!r}: {value!r} is not a valid value") from None
    return realism_from_json(d)


def realism_from_json(d: dict | None) -> Realism:
    if not d:
        return Realism()
    d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
    try:
        return Realism(**d)
    except TypeError as exc:
        raise InputError(f"bad realism settings: {exc}") from None


@dataclasses.dataclass(frozen=True)
class BuildConfig:
    """Everything that decides the store's content (workers and shard do not)."""

    resolutions: tuple[float, ...] = (2.0, 3.0, 4.0)
    voxel_size: float = 1.0
    patch: int = 64
    patches_per_structure: int = 16
    rotations: int = 1
    pairs: tuple[tuple[float, float], ...] | None = None  # None: every r_out <= r_in
    dtype: str = "float16"
    seed: int = 0
    padding: float = 8.0
    # a patch is kept when >= min_fraction of its voxels exceed `threshold` (z-score) in the
    # coarsest map: its smooth envelope marks the molecule, the finest map only atom centres
    threshold: float = 0.5
    min_fraction: float = 0.03
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    held_out: tuple[str, ...] = ()
    scattering: str = "electron"
    compressor: str = "zstd"
    fix_elements: bool = False  # also override element columns contradicting atom names
    strict_elements: bool = False  # refuse blank element columns instead of inferring them
    realism: Realism = Realism()  # clean: inputs are the targets at their resolution

    def __post_init__(self) -> None:
        if isinstance(self.realism, dict):
            object.__setattr__(self, "realism", realism_from_json(self.realism))
        if not isinstance(self.realism, Realism):
            raise InputError(f"realism must be a Realism, got {type(self.realism)}")
        res = tuple(float(r) for r in self.resolutions)
        if not res:
            raise InputError("--resolutions: give at least one resolution")
        if any(not np.isfinite(r) or r <= 0 for r in res):
            raise InputError(f"--resolutions must be positive, got {list(res)}")
        if len(set(res)) != len(res):
            raise InputError(f"--resolutions has duplicates: {list(res)}")
        object.__setattr__(self, "resolutions", tuple(sorted(res)))
        voxel_triple(self.voxel_size, "--voxel-size")
        if res and min(res) < 2 * self.voxel_size:
            raise InputError(
                f"finest resolution {min(res)} Å is beyond Nyquist (2 x voxel size "
                f"{self.voxel_size} Å); use a smaller --voxel-size"
            )
        if self.patch < 4:
            raise InputError(f"--patch must be at least 4, got {self.patch}")
        if self.patches_per_structure < 1 or self.rotations < 1:
            raise InputError("--patches-per-structure and --rotations must be at least 1")
        if self.dtype not in ("float16", "float32"):
            raise InputError(f"--dtype must be float16 or float32, got {self.dtype!r}")
        if self.compressor not in ("zstd", "blosc", "none"):
            raise InputError(f"--compressor must be zstd, blosc or none, got {self.compressor!r}")
        if not (0 <= self.val_fraction < 1 and 0 <= self.test_fraction < 1):
            raise InputError("split fractions must lie in [0, 1)")
        if self.val_fraction + self.test_fraction >= 1:
            raise InputError("--val-fraction + --test-fraction must leave structures to train on")
        if not 0 <= self.min_fraction <= 1:
            raise InputError(f"--min-fraction must lie in [0, 1], got {self.min_fraction}")
        pairs = all_pairs(self.resolutions) if self.pairs is None else self.pairs
        pairs = tuple((float(a), float(b)) for a, b in pairs)
        for r_in, r_out in pairs:
            if r_in not in self.resolutions or r_out not in self.resolutions:
                raise InputError(f"pair {r_in}:{r_out} uses a resolution not in --resolutions")
            if r_out > r_in:
                raise InputError(f"pair {r_in}:{r_out}: the target must not be coarser")
        if not pairs:
            raise InputError("--pairs selects no pair")
        object.__setattr__(self, "pairs", pairs)
        object.__setattr__(self, "held_out", tuple(sorted(set(self.held_out))))

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["resolutions"] = list(self.resolutions)
        d["pairs"] = [list(p) for p in self.pairs]
        d["held_out"] = list(self.held_out)
        if not self.strict_elements:
            del d["strict_elements"]  # stores built before the option existed stay resumable
        if self.realism.is_clean:
            del d["realism"]  # so do clean stores built before realism existed
        else:
            d["realism"] = self.realism.to_json()
        return d


def all_pairs(resolutions: Sequence[float]) -> tuple[tuple[float, float], ...]:
    """Every (r_in, r_out) with r_out <= r_in, the identity (denoise) pairs included."""
    res = sorted(resolutions)
    return tuple((a, b) for a in res for b in res if b <= a)


def find_structures(inputs: Iterable[str | os.PathLike]) -> dict[str, Path]:
    """Expand files and directories into {structure id: path}; missing files are kept (and
    reported as failures when built), duplicate ids are an input error."""
    out: dict[str, Path] = {}
    for item in inputs:
        path = Path(item)
        paths = (
            sorted(p for p in path.iterdir() if is_structure_file(p)) if path.is_dir() else [path]
        )
        for p in paths:
            sid = structure_id(p)
            if not sid or "/" in sid or sid.startswith("."):
                raise InputError(f"cannot name a structure after file {p}")
            if sid in out:
                same = out[sid].resolve() == p.resolve()
                other = f"two structures named {sid!r}: {out[sid]} and {p}"
                raise InputError(f"{p} is given twice" if same else other)
            out[sid] = p
    if not out:
        raise InputError("no structures given (pass files or directories of .pdb/.cif[.gz])")
    return out


def _patches_per_rotation(config: BuildConfig) -> list[int]:
    """`patches_per_structure` shared out over the rotations, the first ones taking the rest."""
    n, k = config.patches_per_structure, config.rotations
    return [n // k + (1 if i < n % k else 0) for i in range(k)]


def _simulate_rotated(structure, center, rotation, config: BuildConfig):
    """(grid, {resolution: array}): every resolution of the turned structure on one grid, a box
    of `padding` Å around the atoms grown to at least one patch."""
    from densitydiff.simulate.density import simulate_map

    grid = _grid(structure, center, rotation, config)
    maps = {
        r: simulate_map(
            structure, r, like=grid, center=center, rotation=rotation, scattering=config.scattering
        ).array
        for r in config.resolutions
    }
    return grid, maps


def _grid(structure, center, rotation, config: BuildConfig):
    from densitydiff.simulate.density import simulation_grid

    grid = simulation_grid(
        structure, config.voxel_size, padding=config.padding, center=center, rotation=rotation
    )
    if any(s < config.patch for s in grid.shape):
        shape = tuple(max(s, config.patch) for s in grid.shape)
        grid = simulation_grid(
            structure, config.voxel_size, shape=shape, center=center, rotation=rotation
        )
    return grid


def _neighbour_placements(structure, grid, center, rotation, n: int, rng) -> list:
    """n (rotation, shift) pairs placing copies of the structure just outside a random face of
    the box (in the turned frame), each reaching ~0.4 of its radius into the box."""
    from densitydiff.rotations import random_rotations
    from densitydiff.simulate.realism import atom_positions

    pos = atom_positions(structure)
    radius = float(np.sqrt(((pos - pos.mean(axis=0)) ** 2).sum(axis=1)).max())
    voxel = np.asarray(grid.voxel_size)
    half = (np.asarray(grid.shape) - 1) / 2 * voxel
    box_center = np.asarray(grid.origin) + half
    out = []
    for _ in range(n):
        turn = random_rotations(1, rng, scalar_last=True)[0]
        axis, sign = int(rng.integers(3)), float(rng.choice([-1.0, 1.0]))
        target = box_center + rng.uniform(-0.5, 0.5, 3) * half
        target[axis] = box_center[axis] + sign * (half[axis] + 0.6 * radius)
        shift = np.asarray(rotation).T @ (target - np.asarray(center))  # into the file's frame
        out.append((np.asarray(turn).round(12).tolist(), shift.round(6).tolist()))
    return out


def _realistic_rotated(structure, center, rotation, config: BuildConfig, rng):
    """(grid, targets, inputs, record) with the realism knobs (docs/data.md, "Realism"):
    targets are the atoms (and neighbours) at each resolution with the uniform target B; inputs
    the same atoms degraded, per resolution."""
    from densitydiff.simulate import realism as rl
    from densitydiff.simulate.density import atom_mask, simulate_map

    knobs, res, voxel = config.realism, config.resolutions, config.voxel_size
    grid = _grid(structure, center, rotation, config)
    record: dict = {}
    sim = structure
    if knobs.neighbours:
        placements = _neighbour_placements(structure, grid, center, rotation, knobs.neighbours, rng)
        sim = rl.with_neighbours(structure, placements)
        record["neighbours"] = placements

    def simulate(r: float, atomic_b: bool, b: float) -> np.ndarray:
        return simulate_map(sim, r, like=grid, center=center, rotation=rotation,
                            scattering=config.scattering, use_b_factors=atomic_b,
                            extra_b=b).array  # fmt: skip

    targets = {r: simulate(r, False, knobs.target_b) for r in res}
    # the input's signal: the file's B-factors (or B = 0) plus the sampled global B, never the
    # targets' uniform B
    b_global = rl.draw_global_b(rng, knobs.global_b)
    record["global_b"] = b_global
    clean_input = not knobs.atomic_b and b_global == knobs.target_b

    def signal(r: float) -> np.ndarray:
        return targets[r] if clean_input and r in targets else simulate(r, knobs.atomic_b, b_global)

    weight = mask = None
    if knobs.resolution_spread:
        pos = rl.atom_positions(structure)
        rg = float(np.sqrt(((pos - pos.mean(axis=0)) ** 2).sum(axis=1).mean()))
        at = (np.asarray(center) - np.asarray(grid.origin)) / voxel
        weight = rl.core_weight(grid.shape, voxel, at, rg)
        record["core_radius"] = rg
    if knobs.mask_width:
        from densitydiff.filters import soft_edge

        near = atom_mask(sim, grid, knobs.mask_radius, center=center, rotation=rotation)
        mask = soft_edge(near, voxel, knobs.mask_width)
    inputs, per_res = {}, {}
    for r in res:
        if weight is not None:  # w map(r - spread) + (1 - w) map(r + spread)
            r_core = max(2 * voxel, r - knobs.resolution_spread)
            x = weight * signal(r_core) + (1 - weight) * signal(r + knobs.resolution_spread)
        else:
            x = signal(r)
        info: dict = {}
        if knobs.noise_snr[1] > 0:
            info["snr0"] = snr0 = rl.draw_snr0(rng, knobs.noise_snr)
            x = x + rl.fsc_noise(x, voxel, r, snr0, rng)
        if knobs.postprocess and rng.uniform() < knobs.postprocess:
            x, info["postprocess_b"] = rl.postprocessed(x, voxel, r, knobs.postprocess_scale, rng)
        if mask is not None:
            x = x * mask
        if knobs.voxel_range[1] > 0:
            lo, hi = knobs.voxel_range
            v = float(rng.uniform(min(lo, r / 2), min(hi, r / 2)))  # v <= r / 2: r holds
            info["voxel_size"] = v
            x = rl.resampled_through(x, voxel, v)
        inputs[r] = np.asarray(x, dtype=np.float32)
        per_res[f"{r:g}"] = info
    record["inputs"] = per_res
    return grid, targets, inputs, record


def simulate_structure(
    path: Path, config: BuildConfig, rng: np.random.Generator
) -> tuple[dict[float, np.ndarray], dict[float, np.ndarray], dict]:
    """Simulate every resolution on one grid per rotation, z-score, cut patches.

    Returns ({resolution: (n, P, P, P) float32 targets}, {resolution: inputs} (empty for a
    clean build: the inputs are the targets), metadata).
    """
    from densitydiff.data.patches import choose_patch_origins
    from densitydiff.filters import zscore
    from densitydiff.rotations import random_rotations
    from densitydiff.structures import centroid, inferred_elements, read_structure

    if not path.exists():
        raise InputError(f"structure file not found: {path}")
    structure = read_structure(
        path, fix_elements=config.fix_elements, strict_elements=config.strict_elements
    )
    center = centroid(structure[0])
    res, P = config.resolutions, config.patch
    realistic = not config.realism.is_clean
    patches: dict[float, list[np.ndarray]] = {r: [] for r in res}
    in_patches: dict[float, list[np.ndarray]] = {r: [] for r in res}
    meta: dict = {"rotations": [], "grids": [], "stats": {f"{r:g}": [] for r in res}}
    if realistic:
        meta["input_stats"] = {f"{r:g}": [] for r in res}
        meta["realism"] = []
    meta["patch_rotation"], meta["patch_origin"] = [], []
    for k, n_patches in enumerate(_patches_per_rotation(config)):
        rotation = random_rotations(1, rng, scalar_last=True)[0]  # acts on (z, y, x)
        if realistic:
            grid, maps, degraded, record = _realistic_rotated(
                structure, center, rotation, config, rng
            )
            meta["realism"].append(record)
        else:
            grid, maps = _simulate_rotated(structure, center, rotation, config)
        # z-score each whole grid, as inference normalises the whole input map
        normed, normed_in = {}, {}
        for r in res:
            normed[r], (mean, std) = zscore(maps[r])
            meta["stats"][f"{r:g}"].append([float(mean), float(std)])
            if realistic:
                normed_in[r], (mean, std) = zscore(degraded[r])
                meta["input_stats"][f"{r:g}"].append([float(mean), float(std)])
        # the coarsest (clean) map decides where the molecule is
        origins = choose_patch_origins(
            normed[res[-1]],
            P,
            n_patches,
            rng,
            threshold=config.threshold,
            min_fraction=config.min_fraction,
        )
        for o in origins:
            sl = tuple(slice(int(c), int(c) + P) for c in o)
            for r in res:
                patches[r].append(normed[r][sl])
                if realistic:
                    in_patches[r].append(normed_in[r][sl])
            meta["patch_rotation"].append(k)
            meta["patch_origin"].append([int(c) for c in o])
        meta["rotations"].append(np.asarray(rotation, dtype=float).round(12).tolist())
        meta["grids"].append(
            {
                "shape": [int(s) for s in grid.shape],
                "origin": [float(v) for v in grid.origin],
                "voxel_size": [float(v) for v in grid.voxel_size],
            }
        )
    meta["center"] = [float(v) for v in center]
    meta["elements_inferred"] = inferred_elements(structure)
    n = len(meta["patch_origin"])

    def stack(lists) -> dict[float, np.ndarray]:
        return {r: (np.stack(lists[r]) if n else np.zeros((0, P, P, P), np.float32)) for r in res}

    return stack(patches), (stack(in_patches) if realistic else {}), meta


def build_one(store: str, sid: str, path: str, config_json: dict) -> dict:
    """Build one structure into the store (a top-level function, so spawned workers can run it).

    Returns {"id", "status": "ok"|"failed"|"empty", "n_patches", "seconds", "message"}.
    Anything an unreadable or odd structure raises is reported; KeyboardInterrupt is not caught.
    """
    from densitydiff.outputs import output_lock

    group = Path(store) / "structures" / sid
    try:  # one run per structure: a second build of the same store skips what the first holds
        with output_lock(group):
            return _build_locked(store, sid, path, config_json)
    except InputError as exc:
        return {"id": sid, "status": "failed", "message": str(exc), "n_patches": 0}


def _build_locked(store: str, sid: str, path: str, config_json: dict) -> dict:
    t0 = time.perf_counter()
    if is_complete(Path(store), sid):  # finished by another run meanwhile
        return {"id": sid, "status": "ok", "n_patches": 0, "seconds": 0.0, "message": ""}
    shutil.rmtree(Path(store) / "structures" / sid, ignore_errors=True)  # a killed run's part
    config = config_from_json(config_json)
    rng = np.random.default_rng(stable_hash(config.seed, sid))
    try:
        arrays, inputs, meta = simulate_structure(Path(path), config, rng)
    except Exception as exc:  # reported and skipped: the build goes on
        message = str(exc) if isinstance(exc, InputError) else f"{type(exc).__name__}: {exc}"
        return {"id": sid, "status": "failed", "message": message, "n_patches": 0}
    n = int(next(iter(arrays.values())).shape[0])
    if n == 0:
        return {
            "id": sid,
            "status": "empty",
            "n_patches": 0,
            "message": "no patch holds enough density (structure smaller than a patch?)",
        }
    write_structure(
        Path(store), sid, arrays, meta, config, source=Path(path).name, inputs=inputs or None
    )
    return {
        "id": sid,
        "status": "ok",
        "n_patches": n,
        "seconds": time.perf_counter() - t0,
        "message": "",
    }


def config_from_json(d: dict) -> BuildConfig:
    d = dict(d)
    d["resolutions"] = tuple(d["resolutions"])
    d["pairs"] = tuple(tuple(p) for p in d["pairs"]) if d.get("pairs") is not None else None
    d["held_out"] = tuple(d.get("held_out", ()))
    return BuildConfig(**d)


@dataclasses.dataclass
class BuildSummary:
    built: list[str]
    already_complete: list[str]
    failed: dict[str, str]
    n_patches: int
    seconds: float

    def lines(self) -> list[str]:
        out = [
            f"built {len(self.built)} structures ({self.n_patches} patches) in "
            f"{self.seconds:.1f} s; {len(self.already_complete)} were already complete; "
            f"{len(self.failed)} skipped"
        ]
        out += [f"  skipped {sid}: {msg}" for sid, msg in sorted(self.failed.items())]
        return out


def build_store(
    structures: Iterable[str | os.PathLike],
    out: str | os.PathLike,
    config: BuildConfig,
    *,
    workers: int = 1,
    shard: tuple[int, int] | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> BuildSummary:
    """Build (or resume) a patch store from structure files; see the module docstring."""
    t0 = time.perf_counter()
    log = log or (lambda line: print(line, file=sys.stderr))
    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    found = find_structures(structures)
    ids = sorted(found)
    split = assign_splits(
        ids, config.seed, config.val_fraction, config.test_fraction, config.held_out
    )
    store = Path(out)
    if store.exists() and not (store.is_dir() and (store / "zarr.json").is_file()):
        if not store.is_dir() or any(store.iterdir()):
            raise InputError(f"{store} exists and is not a patch store; choose a new -o")
    created = not (store / "zarr.json").exists()
    open_root(store, root_attrs(config, split, {s: found[s].name for s in ids}, shard))
    mine = ids if shard is None else ids[shard[0] :: shard[1]]
    done = [s for s in mine if is_complete(store, s)]
    todo = [s for s in mine if s not in set(done)]  # leftovers of a killed run: build_one

    from tqdm.auto import tqdm

    bar = tqdm(total=len(mine), initial=len(done), unit="structure", disable=not progress)
    results: list[dict] = []
    cfg = config.to_json()
    try:
        if workers == 1 or len(todo) <= 1:
            for sid in todo:
                results.append(build_one(str(store), sid, str(found[sid]), cfg))
                bar.update()
        else:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor, as_completed

            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                futures = [
                    pool.submit(build_one, str(store), sid, str(found[sid]), cfg) for sid in todo
                ]
                for fut in as_completed(futures):
                    results.append(fut.result())
                    bar.update()
    finally:
        bar.close()
    summary = BuildSummary(
        built=sorted(r["id"] for r in results if r["status"] == "ok"),
        already_complete=done,
        failed={r["id"]: r["message"] for r in results if r["status"] != "ok"},
        n_patches=sum(r["n_patches"] for r in results),
        seconds=time.perf_counter() - t0,
    )
    if not summary.built and not summary.already_complete and summary.failed:
        sid, message = sorted(summary.failed.items())[0]
        if created and not complete_structures(store):  # a new store that holds nothing
            shutil.rmtree(store, ignore_errors=True)
        raise InputError(
            f"none of {len(summary.failed)} structures could be built; {sid}: {message}"
        )
    for line in summary.lines():
        log(line)
    return summary


def merge_stores(shards: Sequence[str | os.PathLike], out: str | os.PathLike) -> dict:
    """Join shard stores built with the same arguments into a new store `out`.

    Complete structure groups are copied file by file; the merged store is written beside `out`
    and renamed into place, so an interrupted merge leaves nothing at `out`.
    """
    if not shards:
        raise InputError("data merge: give at least one shard store")
    out = Path(out)
    if out.exists():
        raise InputError(f"{out} exists; merge writes a new store")
    metas = [read_root(s) for s in shards]
    first = metas[0]
    for s, m in zip(shards, metas):
        if m["build"] != first["build"] or m["split"] != first["split"]:
            raise InputError(f"{s} was built with other arguments or structures than {shards[0]}")
    import zarr

    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        attrs = {"densitydiff": {**first, "shard": None}}
        root = zarr.open_group(tmp, mode="w", attributes=attrs, zarr_format=3)
        root.create_group("structures")
        copied: dict[str, str] = {}
        for s in shards:
            for sid in sorted(first["split"]):
                if sid not in copied and is_complete(Path(s), sid):
                    shutil.copytree(Path(s) / "structures" / sid, tmp / "structures" / sid)
                    copied[sid] = str(s)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    missing = sorted(set(first["split"]) - set(copied))
    return {"merged": len(copied), "missing": missing, "out": str(out)}
