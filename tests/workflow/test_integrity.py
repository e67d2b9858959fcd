"""Issue 15 item 1: damaged products never flow downstream silently.

A finished `_jump.fits` truncated to PRIMARY+SCI (its old modification time kept, so Snakemake
sees nothing) must make `run-step ramp_fit` fail with one clear line, and `jwpipe status` and
`jwpipe verify` must flag it with the command that rebuilds it. Real simulated data, the real
Detector1 steps and the real Snakemake CLI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from astropy.io import fits

from jwpipe.errors import StepInputError

ROOT = "jw01234001001_02101_00001_nrca1"


def _jw(*args, cwd, check=True):
    proc = subprocess.run([sys.executable, "-m", "jwpipe", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)
    if check:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One simulated exposure run through Detector1 up to ramp_fit by real Snakemake."""
    base = tmp_path_factory.mktemp("integrity")
    _jw("simulate", "sim", "--exposures", "1", "--size", "64", "--ngroups", "4", "--seed", "3",
        cwd=base)
    asn = next((base / "sim").glob("*image2*_asn.json"))
    _jw("make-workflow", str(asn), "--refs", "sim/refs", "-o", "wf", cwd=base)
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--profile", "profiles/local",
                           "--cores", "2", f"products/{ROOT}_ramp_fit.fits", "--quiet", "all"],
                          cwd=base / "wf", capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return base


@pytest.fixture
def wf(finished, tmp_path):
    """A private copy of the finished workflow (modification times preserved)."""
    shutil.copytree(finished / "sim", tmp_path / "sim")
    shutil.copytree(finished / "wf", tmp_path / "wf", symlinks=True)
    return tmp_path / "wf"


def _truncate_keep_mtime(path: Path, dest: Path | None = None) -> None:
    st = path.stat()
    with fits.open(path) as hdul:
        small = fits.HDUList([hdul[0].copy(), hdul["SCI"].copy()])
        small.writeto(dest or path, overwrite=True)
    if dest is None:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_products_carry_fits_checksums(finished):
    jump = finished / "wf" / "products" / f"{ROOT}_jump.fits"
    with fits.open(jump, checksum=True) as hdul:
        assert all("CHECKSUM" in h.header and "DATASUM" in h.header for h in hdul)


def test_truncated_jump_product_is_refused_and_reported(wf):
    jump = wf / "products" / f"{ROOT}_jump.fits"
    _truncate_keep_mtime(jump)
    # Snakemake sees nothing (the mtime did not move) ...
    dry = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1",
                          f"products/{ROOT}_ramp_fit.fits"], cwd=wf, capture_output=True,
                         text=True, timeout=300)
    assert "Nothing to be done" in dry.stdout + dry.stderr
    # ... but jwpipe status and verify do, with the command that rebuilds it
    status = _jw("status", ".", cwd=wf).stdout
    assert "damaged" in status
    detail = _jw("status", ".", "--json", cwd=wf).stdout
    assert f"products/{ROOT}_jump.fits: size" in detail
    assert f"--forcerun products/{ROOT}_jump.fits" in detail
    verify = _jw("verify", ".", cwd=wf, check=False)
    assert verify.returncode == 1
    assert f"products/{ROOT}_jump.fits: size" in verify.stdout
    # the job that would consume it fails with one clear line, writing nothing
    out = wf / "products" / f"{ROOT}_ramp_fit.fits"
    before = out.stat().st_mtime_ns
    run = _jw("run-step", f"units/ramp_fit/{ROOT}.json", cwd=wf, check=False)
    assert run.returncode == 1
    last = run.stderr.strip().splitlines()[-1]
    assert f"input products/{ROOT}_jump.fits is not what jump wrote" in last
    assert "Traceback" not in run.stderr
    assert out.stat().st_mtime_ns == before  # the old product is left as it was
    # the rebuild command named in the message works and verify is clean again
    subprocess.run([sys.executable, "-m", "snakemake", "--profile", "profiles/local", "--cores",
                    "2", f"products/{ROOT}_ramp_fit.fits", "--forcerun",
                    f"products/{ROOT}_jump.fits"], cwd=wf, check=True,
                   capture_output=True, timeout=600)
    assert _jw("verify", ".", cwd=wf).returncode == 0


def _unit_copy(wf, step, where, inputs, outputs):
    """A copy of the workflow's unit file for ``step`` reading ``inputs``, writing ``outputs``
    (a job outside the workflow's own bookkeeping)."""
    unit = json.loads((wf / "units" / step / f"{ROOT}.json").read_text())
    unit["inputs"] = [{"path": str(p), "kind": "file"} for p in inputs]
    unit["outputs"] = [{**spec, "path": str(p)} for spec, p in zip(unit["outputs"], outputs,
                                                                  strict=True)]
    unit["record"] = str(where / f"{step}.record.json")
    path = where / f"{step}.unit.json"
    path.write_text(json.dumps(unit))
    return path


def test_edited_content_same_size_is_detected(wf):
    rate = wf / "products" / f"{ROOT}_ramp_fit.fits"
    st = rate.stat()
    with fits.open(rate, mode="update") as hdul:  # same size, new values, checksums kept stale
        hdul["SCI"].data[0, 0] += 1.0
    assert rate.stat().st_size == st.st_size
    verify = _jw("verify", ".", cwd=wf, check=False)
    assert verify.returncode == 1
    assert "content differs (SHA-256)" in verify.stdout


def test_step_refuses_truncated_file_outside_a_workflow(wf, tmp_path):
    """Without any workflow record the step itself refuses: no PIXELDQ is not 'all zeros'."""
    trunc = tmp_path / "loose_jump.fits"
    _truncate_keep_mtime(wf / "products" / f"{ROOT}_jump.fits", trunc)
    out = tmp_path / "r.fits"
    unit = _unit_copy(wf, "ramp_fit", tmp_path, [trunc], [out, tmp_path / "ri.fits"])
    run = _jw("run-step", str(unit), cwd=tmp_path, check=False)
    assert run.returncode == 1
    last = run.stderr.strip().splitlines()[-1]
    assert f"{trunc} has no PIXELDQ extension although S_DQINIT=COMPLETE" in last
    assert not out.exists()
    from jwpipe.steps import RampFitStep

    with pytest.raises(StepInputError, match="PIXELDQ"):
        RampFitStep.call(str(trunc), override_gain="N/A", override_readnoise="N/A")


def test_raw_input_with_bad_fits_checksum_is_refused(wf):
    uncal = wf.parent / "sim" / f"{ROOT}_uncal.fits"
    with fits.open(uncal) as hdul:  # as archive products are: with DATASUM/CHECKSUM cards
        hdul.writeto(uncal, overwrite=True, checksum=True)
    dry = _jw("run-step", str(_unit_copy(wf, "dq_init", wf, [uncal], [wf / "ok.fits"])),
              cwd=wf)
    assert (wf / "ok.fits").exists()
    with fits.open(uncal) as hdul:
        offset = hdul["SCI"].fileinfo()["datLoc"]
    with open(uncal, "r+b") as fh:  # flip one data byte behind astropy's back
        fh.seek(offset + 10)
        byte = fh.read(1)
        fh.seek(offset + 10)
        fh.write(bytes([byte[0] ^ 0xFF]))
    assert dry.returncode == 0
    out = wf / "products" / "y.fits"
    run = _jw("run-step", str(_unit_copy(wf, "dq_init", wf, [uncal], [out])), cwd=wf,
              check=False)
    assert run.returncode == 1
    assert "fails its FITS checksum" in run.stderr.strip().splitlines()[-1]
    assert not out.exists()
