"""Generating and running workflows for real: reruns, no-op regeneration, resume, bad input."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from wfhelpers import job_env, planned_jobs, snakemake
from wfsteps import STAGES

from jwpipe import datamodels
from jwpipe.errors import WorkflowError
from jwpipe.workflow.generate import generate_workflow
from jwpipe.workflow.status import read_states


def _params(path, dbl=2.0, amount=1.0, order=False):
    inc = {"amount": amount}
    body = {"class": "wfsteps.WfDetStage", "steps": [
        {"name": "inc", "parameters": {"override_gain": str(path.parent / "gain.txt"), **inc}},
        {"name": "dbl", "parameters": {"factor": dbl}},
    ]}
    if order:  # same content, different key order
        body = {"steps": list(reversed(body["steps"])), "class": body["class"]}
    import yaml

    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return str(path)


def _generate(field, work, **kw):
    params = kw.pop("params", None) or _params(field["tmp"] / "det.yaml")
    return generate_workflow([field["asn"]], work, param_files=[params], stages=STAGES, **kw)


def test_end_to_end_then_targeted_reruns(field):
    work = field["tmp"] / "wf"
    _, counts = _generate(field, work)
    assert counts == {"written": 11, "unchanged": 0, "removed": 0}
    snakefile = (work / "Snakefile").read_text()
    # all + one rule per step, not per exposure (+ the report's picture rules, not per exposure)
    assert snakefile.count("\nrule ") == 6 + 4
    assert planned_jobs(work) == {"inc": 3, "dbl": 3, "scl": 3, "align": 1, "stack": 1}
    snakemake(work)
    product = work / "products" / "jw01234-o001_t001_nircam_i2d.fits"
    with datamodels.open(str(product)) as m:
        # (v + 1 + 0.5) * 2 * 3, minus each member's median, averaged
        vals = [np.full((8, 8), (i + 1.5) * 6, np.float32) for i in range(3)]
        for i, v in enumerate(vals):
            v[0, 0] = (10.0 * i + 1.5) * 6
            v -= np.median(v)
        np.testing.assert_allclose(m.data, np.mean(vals, axis=0), rtol=1e-6)
        prov = m.extra["jwpipe"]["run_step"]
        assert prov["step"] == "stack" and prov["peak_rss_mb"] > 0
    assert planned_jobs(work) == {}

    # editing one step's parameter reruns that step and everything downstream only
    _generate(field, work, params=_params(field["tmp"] / "det.yaml", dbl=4.0))
    assert planned_jobs(work) == {"dbl": 3, "scl": 3, "align": 1, "stack": 1}
    states = {(s.step, s.key): s for s in read_states(work)}
    dbl = states[("dbl", field["roots"][0])]
    assert dbl.status == "stale" and "parameter factor: 2.0 -> 4.0" in dbl.reasons[0]
    assert states[("inc", field["roots"][0])].status == "done"
    snakemake(work)
    assert planned_jobs(work) == {}

    # rewriting the same parameters with keys reordered changes nothing
    _, counts = _generate(field, work, params=_params(field["tmp"] / "det.yaml", dbl=4.0,
                                                     order=True))
    assert counts["written"] == 0
    assert planned_jobs(work) == {}

    # a command-line override reaches only its step
    _generate(field, work, params=_params(field["tmp"] / "det.yaml", dbl=4.0),
              overrides={"stack": {"offset": 1.0}})
    assert planned_jobs(work) == {"stack": 1}

    # a changed reference file reruns the units that use it
    time.sleep(0.01)
    field["gain"].write_text("0.75\n")
    _generate(field, work, params=_params(field["tmp"] / "det.yaml", dbl=4.0),
              overrides={"stack": {"offset": 1.0}})
    assert planned_jobs(work) == {"inc": 3, "dbl": 3, "scl": 3, "align": 1, "stack": 1}


def test_skipped_step_has_no_rule(field):
    work = field["tmp"] / "wf"
    _generate(field, work, overrides={"dbl": {"skip": True}})
    text = (work / "Snakefile").read_text()
    assert "rule dbl:" not in text and "rule inc:" in text
    assert planned_jobs(work) == {"inc": 3, "scl": 3, "align": 1, "stack": 1}


def test_walks_back_to_existing_products(field):
    root = field["roots"][0]
    model = datamodels.ImageModel(data=np.zeros((8, 8), np.float32))
    model.save(str(field["dir"] / f"{root}_cal.fits"))
    work = field["tmp"] / "wf"
    _generate(field, work)
    assert planned_jobs(work) == {"inc": 2, "dbl": 2, "scl": 2, "align": 1, "stack": 1}


@pytest.mark.parametrize("bad", ['x"; rm -rf ~ #_cal.fits', "../../etc/x_cal.fits",
                                 "/abs/x_cal.fits"])
def test_malicious_member_names_refused_before_anything_is_written(field, bad):
    asn = json.loads(open(field["asn"]).read())
    asn["products"][0]["members"][0]["expname"] = bad
    path = field["tmp"] / "evil_asn.json"
    path.write_text(json.dumps(asn))
    work = field["tmp"] / "wf"
    with pytest.raises((WorkflowError, ValueError)):
        generate_workflow([str(path)], work, stages=STAGES)
    assert not work.exists()


def test_missing_member_file_and_unknown_override(field):
    os.remove(field["dir"] / f"{field['roots'][1]}_uncal.fits")
    with pytest.raises(WorkflowError, match=r"none of .*_cal\.fits.*_uncal\.fits found"):
        _generate(field, field["tmp"] / "wf")
    with pytest.raises(WorkflowError, match="unknown step 'nope'"):
        generate_workflow([field["asn"]], field["tmp"] / "wf2", stages=STAGES,
                          overrides={"nope": {"x": 1}})


def test_sigkill_then_resume_gives_identical_products(field):
    ref = field["tmp"] / "ref"
    _generate(field, ref)
    snakemake(ref)
    work = field["tmp"] / "wf"
    _generate(field, work)
    env = dict(os.environ)
    proc = subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", "1"], cwd=work,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list((work / "products").glob("*_rate.fits")):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (work / "products" / "jw01234-o001_t001_nircam_i2d.fits").exists()
    # nothing partial under a final name
    for path in (work / "products").glob("*.fits"):
        datamodels.open(str(path)).close()
    from jwpipe.workflow.resume import resume

    assert resume(work, ["--cores", "2"]) == 0
    for path in sorted((ref / "products").rglob("*.fits")):
        other = work / path.relative_to(ref)
        with datamodels.open(str(path)) as a, datamodels.open(str(other)) as b:
            np.testing.assert_array_equal(a.data, b.data)
    assert planned_jobs(work) == {}


def test_non_science_members_are_refused_with_advice(field):
    asn = json.loads(open(field["asn"]).read())
    asn["asn_type"] = "image2"
    asn["products"][0]["members"] = [
        asn["products"][0]["members"][0],
        {"expname": "jw01234001001_01101_00009_nrca1_cal.fits", "exptype": "background"}]
    path = field["dir"] / "bg_asn.json"
    path.write_text(json.dumps(asn))
    with pytest.raises(WorkflowError, match=r"background member.* science members only: run "
                                            r"'jwpipe strun calwebb_image2"):
        generate_workflow([str(path)], field["tmp"] / "wf", stages=STAGES)
    assert not (field["tmp"] / "wf").exists()


def test_run_step_from_the_unit_file_alone_in_an_empty_directory(field):
    """A unit file is a job's whole contract: copied alone into an empty directory, it runs."""
    work = field["tmp"] / "wf"
    _generate(field, work)
    root = field["roots"][1]
    alone = field["tmp"] / "alone"
    alone.mkdir()
    shutil.copyfile(work / "units" / "inc" / f"{root}.json", alone / "job.json")
    unit = json.loads((alone / "job.json").read_text())
    assert "override_gain" not in unit["parameters"]
    assert unit["references"]["files"] == {"gain": str(field["gain"])}
    assert unit["outputs"] == [{"path": f"products/{root}_inc.fits", "kind": "file"}]
    proc = subprocess.run([sys.executable, "-m", "jwpipe", "run-step", "job.json"], cwd=alone,
                          env=job_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in alone.iterdir()) == ["job.json", "products", "state"]
    with datamodels.open(str(alone / "products" / f"{root}_inc.fits")) as m:
        expected = np.full((8, 8), 1.0 + 1.0 + 0.5, np.float32)  # member 1, amount, gain
        expected[0, 0] = 10.0 + 1.0 + 0.5
        np.testing.assert_array_equal(m.data, expected)
        assert m.meta.ref_file.gain.name == str(field["gain"])  # an override keeps its path
    record = json.loads((alone / "state" / "inc" / f"{root}.json").read_text())
    fingerprints = record.pop("fingerprints")  # what the next job checks its input against
    assert record == unit
    assert [f["size"] for f in fingerprints.values()] == [
        (alone / o["path"]).stat().st_size for o in unit["outputs"]]


def test_run_step_refuses_a_bad_unit_file_with_one_message(field):
    tmp_path = field["tmp"] / "job"
    tmp_path.mkdir()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "jwpipe-unit-1", "class": "wfsteps.IncStep"}))
    proc = subprocess.run([sys.executable, "-m", "jwpipe", "run-step", str(bad)], cwd=tmp_path,
                          env=job_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert "missing or invalid parameters" in proc.stderr and "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json"]
