"""Fixtures: a small field of FITS exposures and helpers to run Snakemake for real."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jwpipe import datamodels
from jwpipe.associations import asn_from_list, write_asn

HERE = Path(__file__).parent


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run the real snakemake CLI in ``workdir`` with the test steps importable."""
    env = dict(os.environ, PYTHONPATH=str(HERE), JWPIPE_ALLOW_IMPORT="wfsteps")
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", *args],
                          cwd=workdir, env=env, capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def planned_jobs(workdir: Path) -> dict[str, int]:
    """Jobs a run would execute, by rule (from a real dry run)."""
    out = snakemake(workdir, "-n").stdout
    if "Nothing to be done" in out:
        return {}
    counts: dict[str, int] = {}
    table = out.split("Job stats:", 1)[1]
    for line in table.splitlines()[3:]:
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not m:
            if line.strip().startswith("total"):
                break
            continue
        counts[m.group(1)] = int(m.group(2))
    counts.pop("all", None)
    counts.pop("total", None)
    return counts


@pytest.fixture
def field(tmp_path, monkeypatch):
    """Three exposures as _uncal FITS files, an image3 association, a gain 'reference'."""
    monkeypatch.setenv("PYTHONPATH", str(HERE))
    monkeypatch.setenv("JWPIPE_ALLOW_IMPORT", "wfsteps")
    monkeypatch.syspath_prepend(str(HERE))
    data = tmp_path / "data"
    data.mkdir()
    roots = [f"jw01234001001_01101_0000{i}_nrca1" for i in range(1, 4)]
    for i, root in enumerate(roots):
        model = datamodels.ImageModel(data=np.full((8, 8), float(i), np.float32))
        model.meta.instrument.name = "NIRCAM"
        model.meta.instrument.detector = "NRCA1"
        model.data[0, 0] = 10.0 * i
        model.save(str(data / f"{root}_uncal.fits"))
    asn = asn_from_list([f"{r}_cal.fits" for r in roots], product_name="jw01234-o001_t001_nircam")
    write_asn(asn, data / "image3_asn.json")
    gain = tmp_path / "gain.txt"
    gain.write_text("0.5\n")
    return {"dir": data, "asn": str(data / "image3_asn.json"), "roots": roots, "gain": gain,
            "tmp": tmp_path}
