"""Atomic writes: old or new content, never partial; ordinary permissions; no stray temp files."""
import os
import stat

import pytest

from lawcat.atomic import atomic_path, atomic_write_text


def test_write_replace_and_permissions(tmp_path):
    target = tmp_path / "sub" / "f.json"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask  # not mkstemp's private 0600
    assert [p.name for p in target.parent.iterdir()] == ["f.json"]


def test_failure_keeps_old_file_and_cleans_up(tmp_path):
    target = tmp_path / "f.txt"
    atomic_write_text(target, "kept")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "kept"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]
