"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture
def data_dir() -> Path:
    """Directory of the real JWST files copied from the shared research data."""
    return DATA


@pytest.fixture
def tmp_cwd(tmp_path, monkeypatch):
    """Run the test inside its own temporary working directory."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(autouse=True)
def _isolate_environment(monkeypatch):
    """Tests never see a CRDS cache or step-parameter switches from the outer shell."""
    for var in ("JWPIPE_REFS", "STPIPE_DISABLE_CRDS_STEPPARS", "JWPIPE_DISABLE_REF_STEPPARS",
                "CRDS_PATH", "CRDS_CONTEXT", "CRDS_MAPPATH", "CRDS_REFPATH", "CRDS_CFGPATH",
                "CRDS_SERVER_URL"):
        monkeypatch.delenv(var, raising=False)
