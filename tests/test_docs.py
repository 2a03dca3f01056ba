"""Every `densitydiff ...` line in the ```bash blocks of README.md and docs/*.md works.

Each line is parsed by the CLI (unknown options fail here), then run in a scratch folder that
holds the packaged examples and the few small files the lines name (map_4A.mrc, half maps, z.pkl,
a 2-frame trajectory), with tiny sizes (TINY) so the whole page runs in well under a minute.
Lines that need what no test can have are in SKIP, with the reason.
"""

from __future__ import annotations

import gzip
import re
import shlex
import shutil

import gemmi
import numpy as np
import pytest

from tests.conftest import EXAMPLES, REPO, TESTDATA, run_cli

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

# (regular expression, replacement): the same commands with tiny sizes
TINY = [
    (r"--n-images \d+", "--n-images 8"),
    (r"--box 64", "--box 16"),
    (r"--pixel-size 2\b", "--pixel-size 6"),
    (r"--samples 8", "--samples 2"),
    (r"(prior sample \S+) -n \d+", r"\1 -n 64"),
    (r"--resolutions 2,3,4,5", "--resolutions 3,5"),
    (r"--patch 32", "--patch 16 --patches-per-structure 2"),
    (r"--workers 2", "--workers 1"),
    (r"--config small", "--config tiny"),
]
# appended when the line is of this command
TINY_EXTRA = {
    ("prior", "train"): ["--epochs", "2", "--no-progress"],
    ("hetero", "train"): ["--epochs", "2", "--no-progress", "--config", "tiny", "--zdim", "8"],
    ("train", "sharpen"): ["--max-steps", "2", "--batch-size", "2"],
    ("evaluate",): ["--no-models"],  # the models' part runs in tests/test_evaluate.py
}
DDPM_STEPS = ["--steps", "2"]  # sharpen with the default (diffusion) model

# line prefix -> why it is not run (it is still parsed)
SKIP = {
    "densitydiff data build $(cat train_files.txt)": "docs/model.md's recipe: 83 structures, hours",
    "densitydiff train sharpen --data real32.zarr": "docs/model.md's recipe: an hour of training",
    "densitydiff train export runs/regression_unet": "docs/model.md's recipe: needs its run",
}


def _doc_lines() -> list[tuple[str, str]]:
    """(page, command line) for each `densitydiff` line of the bash blocks, in page order."""
    lines = []
    for page in PAGES:
        for block in re.findall(r"```bash\n(.*?)```", page.read_text(), flags=re.S):
            for line in block.replace("\\\n", " ").splitlines():
                line = re.sub(r"\s+#.*$", "", line).strip()
                line = re.sub(r"\s+", " ", line)
                if line.startswith("densitydiff "):
                    lines.append((page.name, line))
    return lines


def _command_path(args: list[str]) -> tuple[list[str], object]:
    """The subcommand words at the start of `args` and the click command they name."""
    import typer

    from densitydiff.cli import app

    command = typer.main.get_command(app)
    path = []
    while hasattr(command, "commands") and args and args[0] in command.commands:
        path.append(args[0])
        command = command.commands[args.pop(0)]
    return path, command


def test_the_docs_have_commands():
    lines = _doc_lines()
    assert len(lines) > 20
    assert any("compare emd_5168_monomer.mrc 3mfp.pdb.gz -r 6.6" in ln for _, ln in lines)


@pytest.mark.parametrize("page,line", _doc_lines(), ids=lambda v: v[:60])
def test_every_documented_line_parses_and_has_help(page, line):
    args = shlex.split(re.sub(r"\$\([^)]*\)", "x.pdb", line))[1:]  # $(cat files) -> one file
    path, command = _command_path(list(args))
    if not path:  # an option of densitydiff itself (--version)
        assert args and args[0].startswith("-"), f"{page}: {line}: not a densitydiff command"
        code, _, err = run_cli(*args)
        assert code == 0, err
        return
    code, out, err = run_cli(*path, "--help")
    assert code == 0 and "Usage" in out, err
    rest = args[len(path) :]
    command.make_context(" ".join(path), rest)  # raises on an unknown option or missing value


def _trajectory(path):
    st = gemmi.read_structure(str(EXAMPLES / "1orc.pdb.gz"))
    st.remove_waters()
    moved = st[0].clone()
    moved.num = 2
    for res in moved[0]:
        for atom in res:
            atom.pos = gemmi.Position(atom.pos.x + 2.0, atom.pos.y, atom.pos.z)
    st.add_model(moved)
    path.write_bytes(gzip.compress(st.make_pdb_string().encode()))


def _scratch(tmp_path):
    """The files the documented lines name, small."""
    from densitydiff import write_map
    from densitydiff.prior.latents import load_latents, save_latents
    from densitydiff.simulate.density import simulate_map
    from densitydiff.structures import read_structure

    for item in EXAMPLES.iterdir():
        if item.is_file():
            shutil.copy(item, tmp_path / item.name)
    st = read_structure(EXAMPLES / "3mfp.pdb.gz", quiet=True)
    a = simulate_map(st, 6.0, 3.0)
    rng = np.random.default_rng(0)
    noise = 0.3 * float(a.array.std())
    for k in (1, 2):
        half = a.array + noise * rng.normal(size=a.shape)
        write_map(tmp_path / f"half{k}.mrc", a.with_array(half))
    write_map(tmp_path / "mask.mrc", a.with_array((a.array > 0.02).astype(np.float32)))
    (tmp_path / "model.pdb").write_bytes(gzip.decompress((EXAMPLES / "3mfp.pdb.gz").read_bytes()))
    small = read_structure(EXAMPLES / "1orc.pdb.gz", quiet=True)
    write_map(tmp_path / "map_4A.mrc", simulate_map(small, 4.0, 1.0, shape=(32, 32, 32)))
    (tmp_path / "structures").mkdir()
    shutil.copy(EXAMPLES / "1orc.pdb.gz", tmp_path / "structures")
    _trajectory(tmp_path / "adk_closed_to_open.pdb.gz")
    z = load_latents(TESTDATA / "zvals_het-2_1k.pkl").mu  # cryoDRGN's z of 1319 particles
    save_latents(tmp_path / "z.pkl", z[:300])
    save_latents(tmp_path / "z.50.pkl", z[:900])  # prior.md interpolates to index 873


def _tiny(line: str) -> list[str]:
    for pattern, replacement in TINY:
        line = re.sub(pattern, replacement, line)
    args = shlex.split(line)[1:]
    path, _ = _command_path(list(args))
    args += TINY_EXTRA.get(tuple(path), [])
    if path == ["sharpen"] and "unet" not in args:
        args += DDPM_STEPS
    return args


def test_every_documented_line_runs(tmp_path, monkeypatch, one_thread):
    _scratch(tmp_path)
    monkeypatch.chdir(tmp_path)
    ran, skipped = [], []
    for page, line in _doc_lines():
        reason = next((why for prefix, why in SKIP.items() if line.startswith(prefix)), None)
        if reason is not None:
            skipped.append(line)
            continue
        code, out, err = run_cli(*_tiny(line))
        assert code == 0, f"{page}: `{line}` failed:\n{err[-2000:]}"
        ran.append(line)
    assert len(skipped) <= len(SKIP) + 1 and len(ran) >= 25, (len(ran), skipped)
