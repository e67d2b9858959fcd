"""Shared pytest fixtures."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest

import local_slurm  # tests/ is on the path: pytest puts a rootdir conftest's folder there

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


@pytest.fixture(scope="session", autouse=True)
def _slurm_controller():
    """A SLURM controller that answers for the whole session, where SLURM's commands are
    installed (see ``local_slurm``: otherwise every ``snakemake`` waits 9 s for it)."""
    if shutil.which("scontrol") is None or local_slurm.cluster_answers():
        yield
        return
    if local_slurm.cannot_start() or shutil.which("slurmctld") is None:
        warnings.warn("SLURM's commands are installed but no controller answers: every "
                      "snakemake started by a test waits ~9 s for `scontrol show config`",
                      stacklevel=1)
        yield
        return
    started = local_slurm.up().returncode == 0
    try:
        yield
    finally:
        if started:
            local_slurm.down()
