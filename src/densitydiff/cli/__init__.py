"""The `densitydiff` command: a typer app whose groups live one per module.

Kept light so `--help` answers fast: torch, lightning and diffusers are imported inside the
commands that need them. `main()` turns user errors into one line on stderr and exit status 2.
"""

from __future__ import annotations

import sys

import typer

from densitydiff.cli import data as _data
from densitydiff.cli import demo as _demo
from densitydiff.cli import evaluate as _evaluate
from densitydiff.cli import hetero as _hetero
from densitydiff.cli import maps as _maps
from densitydiff.cli import prior as _prior
from densitydiff.cli import sharpen as _sharpen
from densitydiff.cli import simulate as _simulate
from densitydiff.cli import train as _train
from densitydiff.errors import InputError

app = typer.Typer(
    name="densitydiff",
    help="Deep generative models of 3-D electron density (map sharpening, cryo-EM priors).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        from densitydiff import __version__

        print(f"densitydiff {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    """Deep generative models of 3-D electron density. Run a command with --help for examples."""


_maps.register(app)
_simulate.register(app)
_demo.register(app)
_data.register(app)
_prior.register(app)
_hetero.register(app)
_train.register(app)
_sharpen.register(app)
_evaluate.register(app)


def _cli_exceptions() -> tuple[tuple[type, ...], tuple[type, ...], tuple[type, ...]]:
    """(exit, abort, usage-error) classes of typer, and of click where typer still uses it."""
    exits: list[type] = [typer.Exit]
    aborts: list[type] = [typer.Abort]
    usage: list[type] = [typer.exceptions.TyperException]
    try:
        import click

        exits.append(click.exceptions.Exit)
        aborts.append(click.exceptions.Abort)
        usage.append(click.exceptions.ClickException)
    except ImportError:
        pass
    return tuple(exits), tuple(aborts), tuple(usage)


def _user_error(message: str) -> int:
    """One line on stderr (newlines in library messages are folded), exit status 2."""
    print(f"densitydiff: error: {' '.join(str(message).split())}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit status (0 ok, 2 bad input)."""
    from densitydiff.console import one_line_warnings
    from densitydiff.runrecord import invoked_as

    exits, aborts, usage = _cli_exceptions()
    args = sys.argv[1:] if argv is None else [str(a) for a in argv]
    try:
        with invoked_as(["densitydiff", *args]), one_line_warnings():
            result = app(args=argv, standalone_mode=False, prog_name="densitydiff")
    except exits as exc:
        return int(getattr(exc, "exit_code", 0) or 0)
    except aborts:
        print("densitydiff: aborted", file=sys.stderr)
        return 130
    except usage as exc:
        exc.show()
        return 2
    except InputError as exc:
        return _user_error(str(exc))
    except OSError as exc:  # missing file, folder in the way, read-only, disk full, ...
        where = f": {exc.filename}" if exc.filename else ""
        return _user_error(f"{exc.strerror or exc}{where}")
    except MemoryError:
        return _user_error("out of memory; try a smaller --batch-size or tile size")
    except RuntimeError as exc:
        if "out of memory" in str(exc).lower():
            return _user_error("out of GPU memory; try a smaller --batch-size or tile size")
        raise
    return int(result) if isinstance(result, int) else 0
