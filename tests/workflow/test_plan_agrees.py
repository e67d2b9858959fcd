"""Issue 15 item 2: `jwpipe plan`/`status` say what Snakemake will do; a copy is not redone.

Exposures are 1.4 MB, above Snakemake's 1 MB checksum threshold, so Snakemake decides on
modification times as it does for real data.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml
from wfhelpers import HERE, planned_jobs
from wfsteps import STAGES

import jwpipe
from jwpipe import datamodels
from jwpipe.associations import asn_from_list, write_asn
from jwpipe.workflow.generate import generate_workflow

SRC = str(Path(jwpipe.__file__).resolve().parents[1])
ROOTS = [f"jw01234001001_01101_0000{i}_nrca1" for i in range(1, 3)]


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([SRC, str(HERE)]),
                JWPIPE_ALLOW_IMPORT="wfsteps")


def _jw(*args, cwd):
    proc = subprocess.run([sys.executable, "-m", "jwpipe", *args], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def _finished(tmp: Path) -> Path:
    tmp = tmp / "big"
    data = tmp / "data"
    data.mkdir(parents=True)
    for i, root in enumerate(ROOTS):
        model = datamodels.ImageModel(data=np.full((600, 600), float(i), np.float32))
        model.meta.instrument.name = "NIRCAM"
        model.meta.instrument.detector = "NRCA1"
        model.save(str(data / f"{root}_uncal.fits"))
    write_asn(asn_from_list([f"{r}_cal.fits" for r in ROOTS], product_name="jw01234-o001_t001"),
              data / "image3_asn.json")
    gain = tmp / "gain.txt"
    gain.write_text("0.5\n")
    params = tmp / "det.yaml"
    params.write_text(yaml.safe_dump({"class": "wfsteps.WfDetStage", "steps": [
        {"name": "inc", "parameters": {"override_gain": str(gain)}}]}))
    work = tmp / "wf"
    generate_workflow([str(data / "image3_asn.json")], work, param_files=[str(params)],
                      stages=STAGES)
    subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2"], cwd=work, env=_env(),
                   check=True, capture_output=True, timeout=600)
    return work


def _snakemake_jobs(work: Path) -> int:
    """Step jobs a real Snakemake dry run would execute (the report's pictures aside)."""
    return sum(planned_jobs(work).values())


def test_touched_input_shows_in_plan_as_snakemake_will_rerun(field, tmp_path):
    work = _finished(tmp_path)
    assert "nothing to do" in _jw("plan", ".", cwd=work).stdout
    time.sleep(0.05)
    (tmp_path / "big" / "data" / f"{ROOTS[0]}_uncal.fits").touch()
    expected = _snakemake_jobs(work)
    assert expected >= 4  # inc, dbl, scl of that exposure, align, stack
    plan = _jw("plan", ".", cwd=work).stdout
    assert f"snakemake would run {expected} step job(s)" in plan
    assert f"inc {ROOTS[0]}: stale" in plan
    assert "snakemake: updated input files" in plan
    assert f"inc {ROOTS[1]}" not in plan
    status = _jw("status", ".", "--json", cwd=work).stdout
    assert "snakemake: updated input files" in status


def test_copied_workflow_is_not_reprocessed_with_trust_content(field, tmp_path):
    work = _finished(tmp_path)
    before = {p.name: p.read_bytes() for p in (work / "products").glob("*.fits")}
    copy = work.parent / "copy"
    time.sleep(0.05)
    subprocess.run(["cp", "-r", str(work), str(copy)], check=True)
    # a copy or restore gives files new times in an arbitrary order (readdir order for cp -r,
    # archive order for a backup); make the order deterministic and bad: earlier steps'
    # products come out newer than later ones (Snakemake compares checksums, not times, for
    # files under 1 MB, so the big products are what it reruns)
    plan = json.loads((copy / "plan.json").read_text())
    now = time.time()
    for age, step in enumerate(plan["steps"]):
        for unit in plan["units"][step["name"]].values():
            for out in unit["outputs"]:
                for path in [copy / out, *(copy / out).rglob("*")]:
                    if path.exists():
                        os.utime(path, (now - age, now - age))
    # plain copy: Snakemake would redo work, and jwpipe plan says so
    expected = _snakemake_jobs(copy)
    assert expected > 0
    assert f"snakemake would run {expected} step job(s)" in _jw("plan", ".", cwd=copy).stdout
    # decide on content: nothing is reprocessed, nothing rewritten
    resumed = _jw("resume", ".", "--trust-content", "--cores", "2", cwd=copy)
    assert "trusted the content of" in resumed.stderr
    assert _snakemake_jobs(copy) == 0
    assert "nothing to do" in _jw("plan", ".", cwd=copy).stdout
    after = {p.name: p.read_bytes() for p in (copy / "products").glob("*.fits")}
    assert after == before


def test_trust_content_refuses_changed_content(field, tmp_path):
    work = _finished(tmp_path)
    copy = work.parent / "copy"
    shutil.copytree(work, copy)  # new times, like cp -r
    victim = next((copy / "products").glob(f"{ROOTS[0]}_dbl*.fits"), None) or \
        sorted((copy / "products").glob(f"{ROOTS[0]}_*.fits"))[0]
    with open(victim, "r+b") as fh:
        fh.seek(-10, 2)
        fh.write(b"corrupted!")
    resumed = _jw("resume", ".", "--trust-content", "-n", "--cores", "1", cwd=copy)
    assert "differs from its record" in resumed.stderr
