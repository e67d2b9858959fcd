"""Atomic writes leave either the old file or the complete new one, never a partial file."""

from __future__ import annotations

import os

import pytest

from jwpipe.atomic import atomic_path, umask, write_text_atomic


def test_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "x.txt"
    write_text_atomic(target, "old\n")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        with open(tmp, "w") as fh:
            fh.write("partial")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["x.txt"]


def test_success_replaces_with_normal_permissions(tmp_path):
    target = tmp_path / "y.txt"
    write_text_atomic(target, "new\n", fsync=True)
    assert target.read_text() == "new\n"
    assert os.stat(target).st_mode & 0o777 == 0o666 & ~umask()
