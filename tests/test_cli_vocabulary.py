"""One command-line vocabulary (docs/cli.md): the same option means the same thing everywhere.

The typer app is walked command by command (every group and subcommand), so a new command that
spells its output `--output`, defaults `--device` to cpu, or uses `--steps` for something other
than sampler steps fails here. Old spellings are hidden aliases, and are checked to still work.
"""

from __future__ import annotations

import pytest
import typer

from densitydiff.cli import app
from densitydiff.cli.options import DEVICE_HELP, PROGRESS_HELP, THREADS_HELP
from densitydiff.diffusion.sampling import HELP as SAMPLER_HELP

READ_ONLY = {"info", "fsc", "compare", "data info", "prior evaluate"}  # print, write no files
NO_TORCH = {"info", "fsc", "compare", "simulate map", "data build", "data merge", "data info"}
LONG = {"evaluate", "demo", "data build", "train sharpen", "prior train", "simulate particles",
        "sharpen", "hetero train"}  # fmt: skip
# command -> its hidden old spellings (each must still be accepted)
LEGACY = {
    "simulate map": {"--output"},
    "simulate particles": {"--output"},
    "demo": {"--out-dir"},
    "evaluate": {"--report"},
    "train export": {"--output", "--checkpoint"},
    "prior interpolate": {"--steps"},
}


def _commands() -> dict:
    """'group sub' -> command (typer's click-like objects), for every leaf command of the app."""
    found: dict = {}

    def walk(cmd, prefix: str) -> None:
        if hasattr(cmd, "commands"):  # a group
            for name, sub in cmd.commands.items():
                walk(sub, f"{prefix} {name}".strip())
        else:
            found[prefix] = cmd

    walk(typer.main.get_command(app), "")
    return found


COMMANDS = _commands()


def _options(cmd, hidden: bool = False) -> list:
    return [p for p in cmd.params if p.param_type_name == "option" and p.hidden == hidden]


def _named(cmd, name: str) -> list:
    return [p for p in _options(cmd) if name in p.opts or name in p.secondary_opts]


def test_the_walk_finds_every_command():
    expected = {"info", "fsc", "compare", "simulate map", "simulate particles", "demo",
                "data build", "data merge", "data info", "prior train", "prior sample",
                "prior interpolate", "prior evaluate", "prior plot", "train sharpen",
                "train export", "sharpen", "evaluate", "hetero train", "hetero volume",
                "hetero analyze"}  # fmt: skip
    assert set(COMMANDS) == expected
    assert LONG | NO_TORCH | READ_ONLY <= set(COMMANDS)


@pytest.mark.parametrize("name", sorted(set(COMMANDS) - READ_ONLY))
def test_every_writing_command_writes_to_o_out(name):
    (option,) = _named(COMMANDS[name], "--out")
    assert option.opts == ["-o", "--out"], name
    assert not [p for p in _options(COMMANDS[name]) if {"--output", "--out-dir"} & set(p.opts)]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_device_steps_checkpoint_sampler_mean_one_thing(name):
    cmd = COMMANDS[name]
    for option in _named(cmd, "--device"):
        assert option.default == "auto" and option.help == DEVICE_HELP, name
    for option in _named(cmd, "--steps"):
        assert "sampler steps" in option.help.lower(), (name, option.help)
    for option in _named(cmd, "--checkpoint"):
        assert option.opts[:1] == ["--checkpoint"] and "-c" in option.opts, name
        assert "model" in option.help.lower(), name
    for option in _named(cmd, "--sampler"):
        assert SAMPLER_HELP in option.help, name
    for option in _named(cmd, "--threads"):
        assert option.help == THREADS_HELP, name


@pytest.mark.parametrize("name", sorted(set(COMMANDS) - NO_TORCH))
def test_every_torch_command_takes_threads(name):
    assert _named(COMMANDS[name], "--threads"), name


@pytest.mark.parametrize("name", sorted(LONG))
def test_every_long_command_has_progress_flags(name):
    (option,) = _named(COMMANDS[name], "--progress")
    assert option.secondary_opts == ["--no-progress"] and option.default is None, name
    assert option.help == PROGRESS_HELP


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_hidden_options_are_only_the_old_spellings(name):
    hidden = {opt for p in _options(COMMANDS[name], hidden=True) for opt in p.opts}
    assert hidden == LEGACY.get(name, set()), name


def test_help_hides_the_old_spellings(cli):
    code, out, _ = cli("simulate", "map", "--help")
    assert code == 0 and "--out" in out and "--output" not in out
    code, out, _ = cli("train", "export", "--help")
    assert code == 0 and "--which" in out and "--checkpoint" not in out


def test_old_and_new_spelling_together_is_one_clear_error(cli, tmp_path):
    code, _, err = cli("simulate", "map", "x.pdb", "-o", tmp_path / "a.mrc", "--output",
                       tmp_path / "b.mrc", "-r", "4")  # fmt: skip
    assert code == 2 and err.count("\n") == 1 and "-o/--out" in err
    code, _, err = cli("simulate", "map", "x.pdb", "-r", "4")
    assert code == 2 and "missing option -o/--out" in err


def test_a_bad_device_is_refused_by_every_command_that_takes_one(cli, tmp_path):
    for name, cmd in COMMANDS.items():
        if not _named(cmd, "--device"):
            continue
        args = {
            "sharpen": ["sharpen", "in.mrc", "-o", tmp_path / "o.mrc", "--input-resolution", "4"],
            "evaluate": ["evaluate", "x.pdb"],
            "demo": ["demo", "-o", tmp_path / "demo"],
            "simulate particles": ["simulate", "particles", "-o", tmp_path / "p", "--n-images",
                                   "2", "--box", "16", "--pixel-size", "6"],  # fmt: skip
        }[name]
        code, _, err = cli(*args, "--device", "tpu")
        assert code == 2 and err.count("\n") == 1, (name, err)
        assert "tpu" in err or "not found" in err, (name, err)
