"""The whole chain from the command line: simulate, make-workflow, snakemake, status, plan.

Uses the real Detector1, Image2 and Image3 steps on a small simulated field, driven only by the
`jwpipe` and `snakemake` commands a user types.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from astropy.table import Table

from jwpipe import datamodels


def _run(*args, cwd):
    proc = subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_full_chain_from_the_command_line(tmp_path):
    _run("jwpipe", "simulate", "sim", "--exposures", "3", "--size", "96", "--ngroups", "4",
         "--seed", "5", cwd=tmp_path)
    asn = next((tmp_path / "sim").glob("*image3*_asn.json"))
    out = _run("jwpipe", "make-workflow", str(asn), "--refs", "sim/refs", "-o", "wf",
               "--steps.jump.rejection_threshold=5", cwd=tmp_path)
    assert "3 exposure(s), 1 product(s)" in out
    _run("snakemake", "--profile", "profiles/local", "--cores", "2", "--quiet", "all",
         cwd=tmp_path / "wf")
    products = tmp_path / "wf" / "products"
    i2d = next(products.glob("*_i2d.fits"))
    with datamodels.open(str(i2d)) as mosaic:
        assert mosaic.meta.bunit_data == "MJy/sr"
        assert np.isfinite(mosaic.data).mean() > 0.5
    catalog = Table.read(next(products.glob("*_cat.ecsv")), format="ascii.ecsv")
    assert len(catalog) > 0
    crf = next(products.glob("*.crf"))
    assert len(list(crf.glob("*_crf.fits"))) == 3
    with datamodels.open(str(next(products.glob("*_00001_nrca1_cal.fits")))) as cal:
        assert cal.meta.cal_step.jump == "COMPLETE"
        assert cal.meta.cal_step.photom == "COMPLETE"
    status = _run("jwpipe", "status", "wf", cwd=tmp_path)
    assert "done" in status and "pending" not in status and "stale" not in status
    assert "nothing to do" in _run("jwpipe", "plan", "wf", cwd=tmp_path)
    # a parameter change from the command line: the jump units become stale, with the reason
    _run("jwpipe", "make-workflow", "--again", "wf", "--steps.jump.rejection_threshold=6",
         cwd=tmp_path)
    plan = _run("jwpipe", "plan", "wf", cwd=tmp_path)
    assert "parameter rejection_threshold: 5.0 -> 6.0" in plan
    assert "dq_init" not in plan  # nothing upstream of jump
