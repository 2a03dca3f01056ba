"""The hostile-input audit as a table: each bad input ends in exit 2, one line, nothing written.

Rows are (id, command, output path, expected exit). `{i}` is a folder of hostile inputs built by
tests/audit_inputs.py, `{o}` a fresh folder per row. For exit 2 the test checks: exactly one
non-empty line on stderr, no traceback, nothing at the output path (and no file created by a
malicious payload). Rows with exit 0 are inputs judged right to accept (docs/reliability.md).
Ids starting with a letter and digits are the audit's (/work/shared/audit, 2026-12-02); `N..`
rows are from issue #14's list.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from tests import audit_inputs
from tests.conftest import EXAMPLES, run_cli

ORC = str(EXAMPLES / "1orc.pdb.gz")
TRAJ = "simulate particles -o {o}/parts --trajectory {i}/adk3.pdb --n-images 4 --box 16 --pixel-size 3 --device cpu"  # noqa: E501
TRAIN = "train sharpen --data {i}/base.zarr -o {o}/t --max-steps 1 --batch-size 2"
SHARPEN = "sharpen {i}/good.mrc -o {o}/h.mrc --input-resolution 4 --checkpoint unet"

# (id, argv, output that must not appear, expected exit status)
REFUSED: list[tuple[str, str, str]] = [
    # maps: info / fsc / compare
    ("N01", "info {i}/missing.mrc", ""),
    ("N02", "info {i}/adir.mrc", ""),
    ("N03", "info {i}/empty.mrc", ""),
    ("N04", "info {i}/text.mrc", ""),
    ("N05", "info {i}/truncated.mrc", ""),
    ("N06", "info {i}/nan.mrc", ""),
    ("N07", "info {i}/inf.mrc", ""),
    ("M09", "info {i}/zerovox.mrc", ""),
    ("M10", "info {i}/negvox.mrc", ""),
    ("N08", "info {i}/image2d.mrc", ""),
    ("M12", "info {i}/stack.mrcs", ""),
    ("M23", "info {i}/stack100.mrcs", ""),
    ("N09", "info {i}/stack_as.mrc", ""),
    ("N10", "info {i}/huge_nsymbt.mrc", ""),
    ("N11", "info {i}/notgzip.mrc.gz", ""),
    ("M29", "fsc {i}/zeros.mrc {i}/zeros.mrc --json", ""),
    ("M31", "fsc {i}/good.mrc {i}/good.mrc --plot {o}/fsc.txt", "fsc.txt"),
    ("M36", "fsc {i}/stack.mrcs {i}/stack.mrcs", ""),
    ("N12", "fsc {i}/good.mrc {i}/other_grid.mrc", ""),
    ("N13", "compare {i}/good.mrc {i}/noatoms.pdb --resolution 4", ""),
    ("N14", "compare {i}/good.mrc " + ORC + " --resolution -1", ""),
    # simulate map
    ("S09", "simulate map {i}/nan_coord.pdb -o {o}/s.mrc -r 4", "s.mrc"),
    ("S24", "simulate map " + ORC + " -o {i}/good.mrc/s.mrc -r 4", ""),
    ("S28", "simulate map " + ORC + " -o {o}/s.mrc -r 0.5", "s.mrc"),
    ("N15", "simulate map " + ORC + " -o {o}/s.mrc -r 0", "s.mrc"),
    ("N16", "simulate map " + ORC + " -o {o}/s.mrc -r -2", "s.mrc"),
    ("N17", "simulate map {i}/noatoms.pdb -o {o}/s.mrc -r 4", "s.mrc"),
    ("N18", "simulate map {i}/notgzip.pdb.gz -o {o}/s.mrc -r 4", "s.mrc"),
    ("N19", "simulate map " + ORC + " -o {o}/s.mrc -r 4 --voxel-size 0", "s.mrc"),
    ("N63", "simulate map " + ORC + " -o {i}/side.mrc -r 4", ""),  # {i}/side.json: not ours
    # a read-only folder: /proc refuses new files even to root (the tests run as root)
    ("N64", "simulate map " + ORC + " -o /proc/s.mrc -r 4", ""),
    ("N20", "simulate map " + ORC + " -o {o}/s.mrc -r 4 --like {i}/zerovox.mrc", "s.mrc"),
    # sharpen
    ("H29", SHARPEN.replace("-o", "--device tpu -o"), "h.mrc"),
    ("N22", SHARPEN + " --samples 0", "h.mrc"),
    ("N66", SHARPEN.replace("{o}/h.mrc", "/proc/h.mrc"), ""),
    ("N23", SHARPEN + " --batch-size 0", "h.mrc"),
    ("N25", SHARPEN + " --target-resolution 6", "h.mrc"),
    ("N26", SHARPEN + " --target-resolution -2", "h.mrc"),
    ("N27", SHARPEN.replace("{o}/h.mrc", "{i}/good.mrc"), ""),
    ("N28", SHARPEN.replace("unet", "{i}/trunc.ckpt"), "h.mrc"),
    ("N29", SHARPEN.replace("unet", "{i}/evil.pt"), "h.mrc"),
    ("N30", SHARPEN.replace("good.mrc", "nan.mrc"), "h.mrc"),
    ("N31", SHARPEN.replace("good.mrc", "stack.mrcs"), "h.mrc"),
    ("H43", SHARPEN.replace("{o}/h.mrc", "{i}/side.mrc"), ""),  # {i}/side.json: not ours
    # evaluate, demo
    ("E07", "evaluate " + ORC + " --no-models --report {i}/good.mrc", ""),
    ("E13", "evaluate " + ORC + " {i}/nan_coord.pdb --no-models --report {o}/r", "r"),
    ("E15", "evaluate " + ORC + " -c unet --device tpu --report {o}/r", "r"),
    ("N32", "evaluate " + ORC + " --no-models --input-resolution 2 --target-resolution 4", ""),
    ("X01", "demo -o {i}/good.mrc --steps 1 --samples 1", ""),
    ("X03", "demo -o {o}/demo3 --steps 0", "demo3"),
    ("X06", "demo -o {o}/demo6 --sampler foo", "demo6"),
    # data build / info
    ("D11", "data build " + ORC + " -o {i}/good.mrc --resolutions 2,4 --patch 16 --no-progress", ""),  # noqa: E501
    ("D12", "data build " + ORC + " -o {i}/plaindir --resolutions 2,4 --patch 16 --no-progress", ""),  # noqa: E501
    ("D14", "data build {i}/blank_elem.pdb -o {o}/d.zarr --resolutions 2,4 --patch 16 --strict-elements --no-progress", "d.zarr"),  # noqa: E501
    ("D23", "data build " + ORC + " " + ORC + " -o {o}/d.zarr --resolutions 2,4 --patch 16 --no-progress", "d.zarr"),  # noqa: E501
    ("N33", "data build " + ORC + " -o {o}/d.zarr --resolutions 2,-4 --patch 16", "d.zarr"),
    ("I04", "data info {i}/corrupt_group.zarr", ""),
    ("I05", "data info {i}/half.zarr", ""),
    ("I07", "data info {i}/corrupt_chunk.zarr", ""),
    ("I08", "data info {i}/missing_chunk.zarr", ""),
    ("N34", "data info {i}/noroot.zarr", ""),
    ("N35", "data info {i}/plaindir", ""),
    # train sharpen
    ("T05", TRAIN.replace("base.zarr", "corrupt_chunk.zarr"), "t"),
    ("T06", TRAIN.replace("base.zarr", "trunc_chunk.zarr"), "t"),
    ("T08", TRAIN.replace("base.zarr", "corrupt_arraymeta.zarr"), "t"),
    ("N36", TRAIN.replace("base.zarr", "half.zarr"), "t"),
    ("T15", TRAIN + " --config {i}/badtype.yaml", "t"),
    ("N37", TRAIN + " --config {i}/badyaml.yaml", "t"),
    ("N38", TRAIN + " --config {i}/evil.yaml", "t"),
    ("T25", "train sharpen --data {i}/base.zarr -o {i}/evilresume --resume --max-steps 2", ""),
    ("T26", "train sharpen --data {i}/base.zarr -o {i}/truncresume --resume --max-steps 2", ""),
    ("T28", TRAIN.replace("base.zarr", "p7.zarr"), "t"),
    ("T30", TRAIN.replace("{o}/t", "{i}/good.mrc"), ""),
    ("T32", TRAIN + " --seed -1", "t"),
    ("N39", TRAIN.replace("--batch-size 2", "--batch-size 0"), "t"),
    ("N40", "train export {i}/truncresume -o {o}/m.pt", "m.pt"),
    ("N41", "train export {i}/evilresume -o {o}/m.pt", "m.pt"),
    # prior
    ("N42", "prior train {i}/z_1d.pkl -o {o}/p --epochs 1 --no-progress", "p"),
    ("N43", "prior train {i}/z_3d.pkl -o {o}/p --epochs 1 --no-progress", "p"),
    ("N44", "prior train {i}/z_nan.pkl -o {o}/p --epochs 1 --no-progress", "p"),
    ("N45", "prior train {i}/z_onerow.pkl -o {o}/p --epochs 1 --no-progress", "p"),
    ("N46", "prior train {i}/z_empty.pkl -o {o}/p --epochs 1 --no-progress", "p"),
    ("N47", "prior train {i}/z_text.pkl -o {o}/p --epochs 1 --no-progress", "p"),
    ("N48", "prior train {i}/z_good.pkl -o {o}/p --epochs 0 --no-progress", "p"),
    ("N49", "prior train {i}/z_good.pkl -o {o}/p --batch-size 0 --no-progress", "p"),
    ("N50", "prior train {i}/z_good.pkl -o {o}/p --config {i}/prior_badtype.yaml", "p"),
    ("P32", "prior train {i}/z_good.pkl -o {i}/prior_evilresume --resume --epochs 2 --no-progress", ""),  # noqa: E501
    ("N51", "prior train {i}/z_good.pkl -o {i}/prior_truncresume --resume --epochs 2 --no-progress", ""),  # noqa: E501
    ("Q09", "prior sample {i}/prior_nokeys -n 10 -o {o}/zs.pkl", "zs.pkl"),
    ("Q10", "prior sample {i}/prior_badsd -n 10 -o {o}/zs.pkl", "zs.pkl"),
    ("N52", "prior sample {i}/prior_evil -n 10 -o {o}/zs.pkl", "zs.pkl"),
    ("N53", "prior sample {i}/prior_empty -n 10 -o {o}/zs.pkl", "zs.pkl"),
    ("N54", "prior sample {i}/prior_ok -n 0 -o {o}/zs.pkl", "zs.pkl"),
    ("N55", "prior sample {i}/prior_ok -n 10 -o {o}/zs.csv", "zs.csv"),
    ("N56", "prior evaluate {i}/prior_ok {i}/z_3d.pkl", ""),
    ("N57", "prior plot {i}/prior_ok {i}/z_nan.pkl -o {o}/p.png -n 10", "p.png"),
    ("N58", "prior interpolate {i}/prior_ok --start 0 --end 999 -o {o}/path.pkl", "path.pkl"),
    # simulate particles
    ("SP11", TRAJ + " --defocus 0 0", "parts"),
    ("SP22", TRAJ.replace("{o}/parts", "{i}/good.mrc"), ""),
    ("SP24", TRAJ + " --max-shift -3", "parts"),
    ("SP25", TRAJ + " --voltage 0", "parts"),
    ("SP26", TRAJ + " --amplitude-contrast 1.5", "parts"),
    ("N59", TRAJ + " --n-images 0", "parts"),
    ("N65", TRAJ.replace("{o}/parts", "/proc/parts"), ""),
    ("N60", TRAJ.replace("adk3.pdb", "nan_coord.pdb"), "parts"),
    ("N61", TRAJ + " --chunk-size 0", "parts"),
]

# Inputs judged right to accept (see docs/reliability.md): (id, argv, path that must appear)
ACCEPTED: list[tuple[str, str, str]] = [
    ("M21", "info {i}/huge_values.mrc --json", ""),
    ("M22", "info {i}/tiny4.mrc", ""),
    ("M28", "fsc {i}/tiny4.mrc {i}/tiny4.mrc", ""),
    ("M30", "fsc {i}/good.mrc {i}/good.mrc --plot {o}/nodir/fsc.png", "nodir/fsc.png"),
    ("N62", "info {i}/good.mrc.gz", ""),
    ("P21", "prior train {i}/z_huge.pkl -o {o}/p --epochs 1 --batch-size 64 --no-progress", "p/prior.pt"),  # noqa: E501
    ("N24", SHARPEN + " --batch-size 100000000000", "h.mrc"),
    ("E08", "evaluate " + ORC + " --no-models --csv {o}/nodir/r.csv", "nodir/r.csv"),
    ("Q07", "prior sample {i}/prior_ok -n 10 -o {o}/nodir/zs.pkl", "nodir/zs.pkl"),
    ("W05", "prior plot {i}/prior_ok {i}/z_good.pkl -o {o}/nodir/p.png -n 10", "nodir/p.png"),
    ("Q19", "prior sample {i}/prior_ok -n 10 -o {i}/z_copy.pkl", ""),  # -o names what to replace
    ("T43", "train export {i}/run_unet -o {o}/nodir/m.pt", "nodir/m.pt"),
    ("T31", "train sharpen --data {i}/p12.zarr -o {o}/t --config small --max-steps 1 "
     "--batch-size 1", "t/checkpoints/last.ckpt"),  # 12 -> 6 -> 3: a 3-level U-Net fits
    ("SP30", TRAJ.replace("--pixel-size 3", "--pixel-size 30"), "parts/dataset.json"),
]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield audit_inputs.build_all(tmp_path_factory.mktemp("hostile"))
    finally:
        torch.set_num_threads(threads)


def _argv(template: str, i: Path, o: Path) -> list[str]:
    return shlex.split(template.format(i=i, o=o))


@pytest.mark.parametrize("case, template, output", REFUSED, ids=[r[0] for r in REFUSED])
def test_refused(case, template, output, inputs, tmp_path):
    before = sorted(p.name for p in inputs.iterdir())
    code, out, err = run_cli(*_argv(template, inputs, tmp_path))
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, f"{case}: exit {code}\n{err}"
    assert len(lines) == 1, f"{case}: stderr is not one line:\n{err}"
    assert "Traceback" not in err
    if output:
        assert not (tmp_path / output).exists(), f"{case}: {output} was left behind"
    assert not (inputs / audit_inputs.MARKER).exists(), f"{case}: a payload ran"
    assert sorted(p.name for p in inputs.iterdir()) == before, f"{case}: inputs changed"


@pytest.mark.parametrize("case, template, output", ACCEPTED, ids=[r[0] for r in ACCEPTED])
def test_accepted(case, template, output, inputs, tmp_path):
    code, out, err = run_cli(*_argv(template, inputs, tmp_path))
    assert code == 0, f"{case}: exit {code}\n{err}"
    if output:
        assert (tmp_path / output).is_file()
