"""The CLI's contract: fast --help, one-line errors with exit status 2."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import numpy as np

from densitydiff import DensityMap, write_map


def test_help_is_fast_and_imports_no_torch():
    code = (
        "import sys, time; t=time.perf_counter();"
        "from densitydiff.cli import app;"
        "print(time.perf_counter()-t, 'torch' in sys.modules, 'lightning' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    seconds, torch_loaded, lightning_loaded = out.stdout.split()
    assert torch_loaded == "False" and lightning_loaded == "False"
    assert float(seconds) < 1.0
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "densitydiff", "--help"], capture_output=True)
    assert proc.returncode == 0
    assert time.perf_counter() - start < 3.0  # interpreter start included


def test_info_reads_a_written_map(cli, tmp_path):
    m = DensityMap(np.arange(24, dtype=np.float32).reshape(2, 3, 4), (1.0, 2.0, 3.0), (5, 6, 7))
    write_map(tmp_path / "m.mrc", m)
    code, out, err = cli("info", tmp_path / "m.mrc", "--json")
    assert code == 0, err
    assert '"shape_xyz": [4, 3, 2]' in out
    assert '"voxel_size_xyz": [3.0, 2.0, 1.0]' in out


def test_bad_inputs_end_in_one_line_and_status_2(cli, tmp_path):
    text = tmp_path / "text.mrc"
    text.write_text("not a map\n" * 100)
    for path in (tmp_path / "missing.mrc", text):
        code, out, err = cli("info", path)
        assert code == 2
        assert err.count("\n") == 1 and err.startswith("densitydiff: error:")
        assert "Traceback" not in err



def test_version_prints_the_package_version(cli):
    import densitydiff

    code, out, err = cli("--version")
    assert code == 0, err
    assert out.strip() == f"densitydiff {densitydiff.__version__}"
    assert re.fullmatch(r"\d+\.\d+\.\d+", densitydiff.__version__)
    proc = subprocess.run(
        [sys.executable, "-m", "densitydiff", "--version"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and proc.stdout == out
