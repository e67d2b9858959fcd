"""The allocator settings apply once per process and can be switched off."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

CODE = "from jwpipe._malloc import tune_allocator; print(tune_allocator(), tune_allocator())"


def _run(**env: str) -> list[str]:
    base = {k: v for k, v in os.environ.items() if k != "JWPIPE_TUNE_MALLOC"}
    result = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True,
                            check=True, env=base | env)
    return result.stdout.split()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_tune_allocator_in_fresh_processes():
    assert _run() == ["True", "True"]
    assert _run(JWPIPE_TUNE_MALLOC="0") == ["False", "False"]
