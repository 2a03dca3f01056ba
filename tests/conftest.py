"""Shared test fixtures: paths to the packaged example data and an in-process CLI runner."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import pytest
from hypothesis import settings

# Randomised tests: derandomised in CI (same examples on every run, no example database), so CI
# cannot fail by chance; locally they explore new examples, and HYPOTHESIS_PROFILE=explore runs
# many more. A failure found once is kept as an @example in its test.
settings.register_profile("ci", derandomize=True, database=None, deadline=None, max_examples=25)
settings.register_profile("dev", deadline=None, max_examples=25)
settings.register_profile("explore", deadline=None, max_examples=2000)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") == "true" else "dev")
)

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
