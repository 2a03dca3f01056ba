"""atomic_path: nothing at the output path unless the write finished; usual file permissions."""

from __future__ import annotations

import os

import pytest

from densitydiff.outputs import atomic_path


def test_interrupted_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.mrc"
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_finished_write_is_renamed_with_umask_permissions(tmp_path):
    target = tmp_path / "sub" / "out.mrc.gz"
    with atomic_path(target) as tmp:
        assert tmp.name.endswith(".mrc.gz")
        tmp.write_bytes(b"done")
    assert target.read_bytes() == b"done"
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask
    assert [p.name for p in target.parent.iterdir()] == ["out.mrc.gz"]
