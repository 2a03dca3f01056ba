"""Reliability guarantees: optional extras checked first, folders written whole, one run per
output at a time (locks), and every pickle or checkpoint a user passes loaded safely."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from densitydiff.errors import InputError
from densitydiff.outputs import atomic_dir, lock_path, output_lock
from tests import audit_inputs
from tests.conftest import EXAMPLES, REPO, run_cli

ORC = EXAMPLES / "1orc.pdb.gz"


def _one_line_exit_2(code: int, err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ---------------------------------------------------------------- optional extras, found first


@pytest.fixture(scope="module")
def small_inputs(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("small")
    audit_inputs.maps(d)
    audit_inputs.structures(d)
    audit_inputs.latents(d)
    return d


EXTRA_CASES = [
    # (blocked module, extra named in the message, argv; {i} inputs, {o} output)
    ("zarr", "data", f"data build {ORC} -o {{o}} --resolutions 2,4 --patch 16 --no-progress"),
    ("lightning", "train", "prior train {i}/z_good.pkl -o {o} --epochs 1 --no-progress"),
    ("lightning", "train", "train sharpen --data {i}/missing.zarr -o {o} --max-steps 1"),
]  # fmt: skip


@pytest.mark.parametrize("module, extra, template", EXTRA_CASES, ids=[c[0] for c in EXTRA_CASES])
def test_missing_extra_is_named_before_any_work(
    module, extra, template, small_inputs, tmp_path, monkeypatch
):
    out = tmp_path / "out.mrc" if template.startswith("sharpen") else tmp_path / "out"
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now fails
    argv = template.format(i=small_inputs, o=out).split()
    line = _one_line_exit_2(*run_cli(*argv)[::2])
    assert module in line and f"pip install 'densitydiff[{extra}]'" in line
    assert list(tmp_path.iterdir()) == []


def test_extras_table_matches_pyproject():
    import tomllib

    from densitydiff.extras import EXTRAS

    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = declared["optional-dependencies"]
    for extra, modules in EXTRAS.items():
        names = {re.split(r"[<>=\[ ]", d)[0] for d in declared[extra]}
        assert set(modules) == names, extra


# ---------------------------------------------------------------- folders appear whole


def test_atomic_dir_leaves_nothing_on_error_and_replaces_only_its_own_output(tmp_path):
    out = tmp_path / "result"
    with pytest.raises(KeyboardInterrupt), atomic_dir(out, "done.json") as tmp:
        (tmp / "half.bin").write_bytes(b"x")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    for text in ("first", "second"):  # an earlier complete output is replaced whole
        with atomic_dir(out, "done.json") as tmp:
            (tmp / "data.txt").write_text(text)
            (tmp / "done.json").write_text("{}")
    assert (out / "data.txt").read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result"]
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="holds other files"), atomic_dir(foreign, "done.json"):
        pass
    assert (foreign / "notes.txt").read_text() == "keep me"
    with pytest.raises(RuntimeError, match="did not write"), atomic_dir(tmp_path / "x", "d.json"):
        pass  # no marker: not complete, so not renamed
    assert not (tmp_path / "x").exists()


def test_a_killed_run_partial_folder_is_cleared_by_the_next_run(tmp_path):
    out = tmp_path / "result"
    (tmp_path / ".result.partial").mkdir()
    (tmp_path / ".result.partial" / "junk").write_text("from a killed run")
    with atomic_dir(out, "done.json") as tmp:
        (tmp / "done.json").write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result"]
    assert sorted(p.name for p in out.iterdir()) == ["done.json"]


# ---------------------------------------------------------------- one run per output at a time


def test_lock_refuses_a_second_holder_and_dies_with_its_process(tmp_path):
    out = tmp_path / "out.mrc"
    with output_lock(out):
        with pytest.raises(InputError, match="another run"), output_lock(out):
            pass
    assert not lock_path(out).exists()
    # a process holding the lock is SIGKILLed: the kernel releases it, the next run proceeds
    code = (
        "import sys, time; sys.path.insert(0, sys.argv[2]);"
        "from densitydiff.outputs import output_lock;"
        "cm = output_lock(sys.argv[1]); cm.__enter__(); print('held', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(out), str(REPO / "src")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(InputError), output_lock(out):
            pass
    finally:
        proc.kill()
        proc.wait()
    with output_lock(out):  # the stale lock file of the killed process does not block
        pass


@pytest.fixture(scope="module")
def tiny_unet(tmp_path_factory) -> Path:
    from tests.tiny_models import export_tiny

    return export_tiny("unet", tmp_path_factory.mktemp("tiny"))


def test_concurrent_runs_on_one_output_refuse(small_inputs, tiny_unet, tmp_path):
    """While a run holds an output, a second run on it exits 2 and writes nothing there."""
    i, o = small_inputs, tmp_path
    cases = [
        (o / "h.mrc", ["sharpen", i / "good.mrc", "-o", o / "h.mrc", "--input-resolution", "4",
                       "--checkpoint", tiny_unet]),
        (o / "parts", ["simulate", "particles", "-o", o / "parts", "--trajectory", i / "adk3.pdb",
                       "--n-images", "4", "--box", "16", "--pixel-size", "3", "--device", "cpu"]),
        (o / "prior", ["prior", "train", i / "z_good.pkl", "-o", o / "prior", "--epochs", "1",
                       "--no-progress"]),
        (o / "report", ["evaluate", ORC, "--no-models", "--report", o / "report"]),
    ]  # fmt: skip
    for out, argv in cases:
        with output_lock(out):
            line = _one_line_exit_2(*run_cli(*argv)[::2])
        assert "another run" in line
        assert not out.exists(), out
        assert not out.with_suffix(".json").exists()


def test_two_builds_of_one_store_never_mix(tmp_path):
    """A structure being built by one run is skipped by another: each group has one writer."""
    store = tmp_path / "s.zarr"
    argv = ["data", "build", ORC, "-o", store, "--resolutions", "2,4", "--patch", "16",
            "--patches-per-structure", "2", "--no-progress"]  # fmt: skip
    assert run_cli(*argv)[0] == 0
    import shutil

    shutil.rmtree(store / "structures" / "1orc")  # as if its first build had been killed
    with output_lock(store / "structures" / "1orc"):  # ... and another run were rebuilding it
        line = _one_line_exit_2(*run_cli(*argv)[::2])
    assert "another run" in line
    assert not (store / "structures" / "1orc").exists()
    code, out, err = run_cli(*argv)  # the lock gone, the same build runs
    assert code == 0, err
    assert run_cli("data", "info", store)[0] == 0


# ---------------------------------------------------------------- pickles and checkpoints


@pytest.fixture(scope="module")
def evil(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("evil")
    audit_inputs.latents(d)
    audit_inputs.bad_checkpoints(d)
    audit_inputs.particles_files(d)
    audit_inputs.maps(d)
    (d / "run" / "checkpoints").mkdir(parents=True)
    (d / "run" / "checkpoints" / "last.ckpt").write_bytes((d / "evil.ckpt").read_bytes())
    (d / "prior_evil").mkdir()
    (d / "prior_evil" / "prior.pt").write_bytes((d / "evil.ckpt").read_bytes())
    (d / "prior_run" / "checkpoints").mkdir(parents=True)
    (d / "prior_run" / "checkpoints" / "last.ckpt").write_bytes((d / "evil.ckpt").read_bytes())
    return d


EVIL_CLI = [
    "prior train {d}/z_evil.pkl -o {o}/p --epochs 1 --no-progress",
    "prior train {d}/z_good.pkl -o {d}/prior_run --resume --epochs 2 --no-progress",
    "prior sample {d}/prior_evil -n 4 -o {o}/z.pkl",
    "prior evaluate {d}/prior_evil {d}/z_good.pkl",
    "prior plot {d}/prior_evil {d}/z_good.pkl -o {o}/p.png",
    "sharpen {d}/good.mrc -o {o}/h.mrc --input-resolution 4 --checkpoint {d}/evil.pt",
    "evaluate " + str(ORC) + " -c {d}/evil.ckpt",
    "train export {d}/run -o {o}/m.pt",
    "train sharpen --data {d}/missing.zarr -o {d}/run --resume --max-steps 2",
]


@pytest.mark.parametrize("template", EVIL_CLI, ids=[t.split(" {")[0] for t in EVIL_CLI])
def test_malicious_pickles_never_run(template, evil, tmp_path):
    argv = template.format(d=evil, o=tmp_path).split()
    line = _one_line_exit_2(*run_cli(*argv)[::2])
    assert not (evil / audit_inputs.MARKER).exists(), line
    assert list(tmp_path.iterdir()) == []


def test_malicious_side_files_never_run(evil):
    from densitydiff.formats import ctf, latents, particles
    from densitydiff.formats.pkl import load_pickle
    from densitydiff.prior.latents import load_latents

    loaders = [
        (particles.load_poses, "poses_evil.pkl"),
        (ctf.load_ctf, "ctf_evil.pkl"),
        (latents.read_latents, "z_evil.pkl"),
        (load_pickle, "ind_evil.pkl"),  # --ind index files
        (load_latents, "z_evil.pkl"),
        (load_latents, "evil.pt"),
    ]
    for load, name in loaders:
        with pytest.raises(InputError):
            load(evil / name)
    assert not (evil / audit_inputs.MARKER).exists()


def test_wrong_side_files_are_refused(evil):
    from densitydiff.formats import ctf, particles, star

    with pytest.raises(InputError, match="9"):
        ctf.load_ctf(evil / "ctf_wrongcols.pkl")
    n = len(particles.read_particles(evil / "particles5.mrcs"))
    rot, trans = particles.load_poses(evil / "poses4.pkl")
    with pytest.raises(InputError, match="4 rows but the stack holds 5"):
        particles.check_counts(n, poses=rot, ctf=np.zeros((5, 9)))
    df = star.read_star(evil / "nocols.star")
    with pytest.raises(InputError):
        star.ctf_from_star(df)


def test_every_load_in_the_code_is_restricted():
    """No yaml.load, no plain pickle.load, no torch.load without weights_only=True in src/,
    tests/ or bench/ (this test's own patterns aside)."""
    offenders = []
    files = [p for d in ("src", "tests", "bench") for p in (REPO / d).rglob("*.py")]
    for path in (p for p in files if p.resolve() != Path(__file__).resolve()):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]
            if re.search(r"\byaml\.(load|unsafe_load|full_load)\(", code):
                offenders.append(f"{path}:{n}: {line.strip()}")
            if re.search(r"\bpickle\.(load|loads)\(", code):
                offenders.append(f"{path}:{n}: {line.strip()}")
            if "torch.load(" in code and "weights_only=True" not in code:
                offenders.append(f"{path}:{n}: {line.strip()}")
    assert offenders == []


def _two_at_once(argv: list) -> list[int]:
    """Start the same command twice at the same moment; return both exit statuses."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "densitydiff", *(str(a) for a in argv)]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]  # fmt: skip
    codes = []
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode in (0, 2), err
        if p.returncode == 2:
            assert len([ln for ln in err.splitlines() if ln.strip()]) == 1, err
        codes.append(p.returncode)
    return codes


def test_two_simultaneous_builds_end_in_one_consistent_store(tmp_path):
    from densitydiff.data.build import BuildConfig, build_store
    from tests.test_data_store import _assert_same_store

    structures = [EXAMPLES / "1orc.pdb.gz", EXAMPLES / "1aki.cif.gz"]
    store = tmp_path / "s.zarr"
    codes = _two_at_once(["data", "build", *structures, "-o", store, "--resolutions", "2,4",
                          "--patch", "16", "--patches-per-structure", "2", "--val-fraction", "0",
                          "--test-fraction", "0", "--no-progress"])  # fmt: skip
    assert 0 in codes  # at least one run built; the other built the rest, or refused
    code, _, err = run_cli("data", "build", *structures, "-o", store, "--resolutions", "2,4",
                           "--patch", "16", "--patches-per-structure", "2", "--val-fraction",
                           "0", "--test-fraction", "0", "--no-progress")  # fmt: skip
    assert code == 0, err  # nothing left to do, or what a refused run skipped
    config = BuildConfig(resolutions=(2.0, 4.0), voxel_size=1.0, patch=16,
                         patches_per_structure=2, val_fraction=0.0, test_fraction=0.0)  # fmt: skip
    build_store(structures, tmp_path / "ref.zarr", config, progress=False, log=lambda _: None)
    _assert_same_store(tmp_path / "ref.zarr", store)


def test_a_structures_group_created_meanwhile_by_another_build_is_kept(tmp_path, monkeypatch):
    """The race CI once hit: between open_root's check and its require_group("structures"), a
    simultaneous build created the group, and zarr raised ContainsGroupError. Replayed here
    deterministically: the group appears just before our write, which then fails."""
    import zarr

    from densitydiff.data.build import BuildConfig
    from densitydiff.data.layout import open_root, root_attrs

    store = tmp_path / "s.zarr"
    attrs = root_attrs(BuildConfig(resolutions=(2.0, 4.0)), {"1orc": "train"}, {}, None)
    real = zarr.Group.require_group

    def raced(self, name, **kw):
        zarr.open_group(store / name, mode="w-", zarr_format=3)  # the other build, first
        raise zarr.errors.ContainsGroupError(f"a group exists at {name!r}")

    monkeypatch.setattr(zarr.Group, "require_group", raced)
    open_root(store, attrs)  # no error: the group is there
    assert (store / "structures" / "zarr.json").exists()
    monkeypatch.setattr(zarr.Group, "require_group", real)
    open_root(store, attrs)  # and a later run opens it as usual
    assert zarr.open_group(store, mode="r")["structures"] is not None


def test_two_simultaneous_particle_sets_never_mix(tmp_path):
    import json

    audit_inputs.structures(tmp_path)
    out = tmp_path / "parts"
    codes = _two_at_once(["simulate", "particles", "-o", out, "--trajectory",
                          tmp_path / "adk3.pdb", "--n-images", "8", "--box", "16",
                          "--pixel-size", "3", "--device", "cpu"])  # fmt: skip
    assert 0 in codes
    record = json.loads((out / "dataset.json").read_text())
    from densitydiff.formats.particles import read_particles

    assert record["n_images"] == 8 and len(read_particles(out / "particles.mrcs")) == 8
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".parts")) == []
