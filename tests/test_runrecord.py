"""Run records: the command line both ways, versions, input sizes and sha256, warnings."""

from __future__ import annotations

import hashlib
import json
import shlex
import sys

import yaml

from densitydiff import __version__, runrecord


def test_record_names_the_command_inputs_and_versions(tmp_path):
    data = tmp_path / "in put.mrc"
    data.write_bytes(b"\x01\x02" * 1000)
    argv = ["densitydiff", "sharpen", str(data), "-o", "o.mrc"]
    record = runrecord.run_record(config={"a": 1}, seed=7, inputs=[data, tmp_path],
                                  warnings=["w"], argv=argv, started=0.0, extra=(1, 2))  # fmt: skip
    assert record["command"]["argv"] == argv
    assert shlex.split(record["command"]["shell"]) == argv  # quoting survives the space
    assert record["inputs"][0] == {
        "path": str(data),
        "bytes": 2000,
        "sha256": hashlib.sha256(data.read_bytes()).hexdigest(),
    }
    assert record["inputs"][1]["kind"] == "directory"
    assert record["versions"]["densitydiff"] == __version__
    assert record["versions"]["python"] == sys.version.split()[0]
    assert (record["seed"], record["warnings"], record["config"]) == (7, ["w"], {"a": 1})
    assert record["wall_seconds"] > 0
    runrecord.write_record(tmp_path / "r.json", record)
    runrecord.write_record(tmp_path / "r.yaml", record)
    assert json.loads((tmp_path / "r.json").read_text())["extra"] == [1, 2]
    assert yaml.safe_load((tmp_path / "r.yaml").read_text())["command"]["argv"] == argv


def test_the_cli_records_its_own_command_line(tmp_path):
    from densitydiff.cli import main

    out = tmp_path / "m.mrc"
    model = "src/densitydiff/examples/1orc.pdb.gz"
    args = ["simulate", "map", model, "-o", str(out), "--resolution", "6", "--voxel-size", "2"]
    assert main(args) == 0
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["command"]["argv"] == ["densitydiff", *args]
    assert record["config"]["resolution"] == 6 and record["inputs"][0]["path"] == model
    assert runrecord.command()["argv"] == sys.argv  # outside a command: the process's own
