"""Shared test fixtures: paths to the packaged example data and an in-process CLI runner."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "src" / "densitydiff" / "examples"
TESTDATA = Path(__file__).resolve().parent / "data"


def run_cli(*args: str) -> tuple[int, str, str]:
    """Run `densitydiff ARGS` in this process; return (exit status, stdout, stderr)."""
    from densitydiff.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread: on a shared 2-core machine two threads fight and run far slower."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
