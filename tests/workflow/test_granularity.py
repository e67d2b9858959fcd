"""``--granularity stage``: one job per exposure and stage, resumable step by step.

Real Snakemake runs. The stage workflow's products equal the step workflow's on simulated
Detector1 -> Image2 -> Image3 data; a changed jump threshold reruns the exposures' stage jobs,
and inside them only jump and the later steps (earlier intermediates and their records are not
rewritten); an interrupted stage job and a damaged intermediate resume at that step.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from wfhelpers import job_env, planned_jobs, snakemake
from wfsteps import STAGES

from jwpipe.pipeline import Detector1Pipeline
from jwpipe.simulate import simulate_field
from jwpipe.workflow.chain import unit_reader
from jwpipe.workflow.generate import generate_workflow
from jwpipe.workflow.status import read_states

DET1 = ["group_scale", "dq_init", "saturation", "superbias", "refpix", "linearity",
        "dark_current", "jump", "ramp_fit", "gain_scale"]
BEFORE_JUMP = DET1[:DET1.index("jump")]
FROM_JUMP = DET1[DET1.index("jump"):]


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    base = tmp_path_factory.mktemp("granularity")
    return simulate_field(base / "data", n_exposures=2, size=48, ngroups=5, seed=11)


def _generate(sim, work, granularity, **kw):
    return generate_workflow([str(sim.asn_image3)], work, refs=str(sim.store_dir),
                             granularity=granularity, pictures=False, **kw)


def _arrays(path):
    with fits.open(path) as hdul:
        return {h.name: h.data.copy() for h in hdul
                if h.data is not None and h.name != "ASDF" and h.is_image}


def _same_products(a, b):
    files = sorted(p.relative_to(a) for p in a.rglob("*.fits"))
    assert files and files == sorted(p.relative_to(b) for p in b.rglob("*.fits"))
    for rel in files:
        left, right = _arrays(a / rel), _arrays(b / rel)
        assert left.keys() == right.keys(), rel
        for name in left:
            np.testing.assert_array_equal(left[name], right[name], err_msg=f"{rel} {name}")
    return len(files)


def _stamps(work, root, steps):
    """Modification times of a unit's outputs and records (nanoseconds)."""
    out = {}
    for step in steps:
        state = work / "state" / step / f"{root}.json"
        out[f"state/{step}"] = state.stat().st_mtime_ns
        for o in json.loads(state.read_text())["outputs"]:
            out[o["path"]] = (work / o["path"]).stat().st_mtime_ns
    return out


def _actions(work, stage, key):
    record = json.loads((work / "state" / stage / f"{key}.json").read_text())
    return {s["step"]: s["action"] for s in record["steps"]}


def test_stage_jobs_equal_step_jobs_and_rerun_from_the_changed_step(sim, tmp_path):
    steps_wf, stage_wf = tmp_path / "steps", tmp_path / "stages"
    plan, _ = _generate(sim, steps_wf, "step")
    _generate(sim, stage_wf, "stage")
    roots = plan.exposures
    assert planned_jobs(stage_wf) == {"detector1": 2, "image2": 2, "image3": 1}
    snakemake(steps_wf)
    snakemake(stage_wf)
    assert _same_products(steps_wf / "products", stage_wf / "products") > 20
    assert planned_jobs(stage_wf) == {}
    states = read_states(stage_wf)
    assert {s.status for s in states} == {"done"} and len(states) == len(plan.units)
    assert set(_actions(stage_wf, "detector1", roots[0]).values()) == {"ran"}

    # the jump threshold changes: each exposure's stage jobs rerun, and inside Detector1 only
    # jump and the later steps recompute
    before = _stamps(stage_wf, roots[0], BEFORE_JUMP)
    after_jump = _stamps(stage_wf, roots[0], FROM_JUMP)
    for work in (steps_wf, stage_wf):
        _generate(sim, work, work.name[:-1],
                  overrides={"jump": {"rejection_threshold": 3.5}})
    assert planned_jobs(stage_wf) == {"detector1": 2, "image2": 2, "image3": 1}
    stale = {s.step for s in read_states(stage_wf) if s.status != "done"}
    assert stale.isdisjoint(BEFORE_JUMP) and set(FROM_JUMP) <= stale
    plan_out = subprocess.run([sys.executable, "-m", "jwpipe", "plan", str(stage_wf)],
                              env=job_env(), capture_output=True, text=True, check=True).stdout
    assert "snakemake would run 5 stage job(s)" in plan_out
    assert f"dark_current {roots[0]}" not in plan_out
    snakemake(steps_wf)
    snakemake(stage_wf)
    assert _stamps(stage_wf, roots[0], BEFORE_JUMP) == before
    moved = _stamps(stage_wf, roots[0], FROM_JUMP)
    assert all(moved[k] > after_jump[k] for k in after_jump)
    actions = _actions(stage_wf, "detector1", roots[0])
    assert [s for s in DET1 if actions[s] == "reused"] == BEFORE_JUMP
    assert _actions(stage_wf, "image2", roots[0]) == dict.fromkeys(
        ["assign_wcs", "flat_field", "photom"], "ran")  # a new _rate: the whole stage
    _same_products(steps_wf / "products", stage_wf / "products")
    assert planned_jobs(stage_wf) == {}
    assert {s.status for s in read_states(stage_wf)} == {"done"}


def test_interrupted_or_damaged_stage_job_resumes_at_that_step(sim, tmp_path):
    work = tmp_path / "wf"
    plan, _ = generate_workflow([str(p) for p in sim.asn_image2], work,
                                refs=str(sim.store_dir), stages=[Detector1Pipeline],
                                granularity="stage", pictures=False)
    assert planned_jobs(work) == {"detector1": 2}
    root = plan.exposures[0]
    snakemake(work)
    reference = {p.name: _arrays(p) for p in (work / "products").glob(f"{root}_*.fits")}

    # as a kill during ramp_fit leaves it: jump done, nothing after it, a temporary file
    read_unit = unit_reader(work, json.loads((work / "plan.json").read_text()))
    for step in ("ramp_fit", "gain_scale"):
        for o in read_unit(step, root)["outputs"]:
            (work / o["path"]).unlink()
        (work / "state" / step / f"{root}.json").unlink()
    (work / "state" / "detector1" / f"{root}.json").unlink()
    (work / "products" / f".{root}_ramp_fit.fits.123.part").write_bytes(b"partial")
    kept = _stamps(work, root, DET1[:DET1.index("ramp_fit")])
    states = {(s.step, s.key): s.status for s in read_states(work)}
    assert states[("jump", root)] == "done" and states[("ramp_fit", root)] == "pending"
    proc = subprocess.run([sys.executable, "-m", "jwpipe", "resume", str(work), "--cores", "2"],
                          env=job_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not list((work / "products").glob(".*.part"))
    assert _stamps(work, root, DET1[:DET1.index("ramp_fit")]) == kept
    actions = _actions(work, "detector1", root)
    assert [s for s in DET1 if actions[s] == "ran"] == ["ramp_fit", "gain_scale"]
    for name, arrays in reference.items():
        for ext, data in _arrays(work / "products" / name).items():
            np.testing.assert_array_equal(data, arrays[ext], err_msg=f"{name} {ext}")

    # a truncated intermediate: status says damaged; rebuilding the stage product redoes the
    # stage from that step on, and trusts nothing after it
    jump = work / "products" / f"{root}_jump.fits"
    with open(jump, "r+b") as fh:
        fh.truncate(jump.stat().st_size - 2880)
    damaged = [s for s in read_states(work) if s.status == "damaged"]
    assert [(s.step, s.key) for s in damaged] == [("jump", root)]
    assert f"--forcerun products/{root}_rate.fits" in damaged[0].reasons[0]
    earlier = _stamps(work, root, BEFORE_JUMP)
    snakemake(work, "--forcerun", f"products/{root}_rate.fits")
    assert _stamps(work, root, BEFORE_JUMP) == earlier
    actions = _actions(work, "detector1", root)
    assert [s for s in DET1 if actions[s] == "ran"] == FROM_JUMP
    assert {s.status for s in read_states(work)} == {"done"}
    for name, arrays in reference.items():
        for ext, data in _arrays(work / "products" / name).items():
            np.testing.assert_array_equal(data, arrays[ext], err_msg=f"{name} {ext}")


def test_failed_step_is_reported_and_the_rerun_starts_there(sim, tmp_path):
    work = tmp_path / "wf"
    broken = tmp_path / "dark.fits"
    broken.write_text("not a FITS file\n")
    plan, _ = _generate(sim, work, "stage", overrides={"dark_current": {
        "override_dark": str(broken)}})
    root = plan.exposures[0]
    proc = snakemake(work, "--keep-going", check=False)
    assert proc.returncode != 0
    states = {(s.step, s.key): s for s in read_states(work)}
    assert states[("linearity", root)].status == "done"
    assert states[("dark_current", root)].status == "failed"
    assert f"logs/dark_current/{root}.log" in states[("dark_current", root)].reasons[0]
    assert "error" in (work / "logs" / "dark_current" / f"{root}.log").read_text()
    kept = _stamps(work, root, DET1[:DET1.index("dark_current")])
    _generate(sim, work, "stage")  # the CRDS dark again
    snakemake(work)
    assert _stamps(work, root, DET1[:DET1.index("dark_current")]) == kept
    actions = _actions(work, "detector1", root)
    assert [s for s in DET1 if actions[s] == "ran"] == DET1[DET1.index("dark_current"):]
    assert planned_jobs(work) == {}


def test_discarded_intermediates_and_groups(field):
    """``keep``: the stage job deletes the others' outputs at its end. Stage rules declare no
    group (a cluster profile groups them by rule name: ``groups: {wf_det: wf_det}``); step
    jobs are in their stage's declared group with ``group_detector1``."""
    work = field["tmp"] / "wf"
    generate_workflow([field["asn"]], work, stages=STAGES, granularity="stage", keep=[],
                      overrides={"inc": {"override_gain": str(field["gain"])}})
    text = (work / "Snakefile").read_text()
    assert "run-chain --record {output.record:q} --discard inc {input.units:q}" in text
    assert "group:" not in text
    assert 'units="units/wf_det/{exp}.json"' in text  # one unit input per stage job
    snakemake(work)
    root = field["roots"][0]
    assert not (work / "products" / f"{root}_inc.fits").exists()
    assert (work / "products" / f"{root}_rate.fits").exists()
    assert (work / "products" / "jw01234-o001_t001_nircam_i2d.fits").exists()

    steps = field["tmp"] / "steps"
    generate_workflow([field["asn"]], steps, stages=STAGES, group_detector1=True,
                      overrides={"inc": {"override_gain": str(field["gain"])}})
    text = (steps / "Snakefile").read_text()
    assert text.count('group:\n        "wf_det"') == 2 and text.count('"wf_img"') == 1
    assert '"wf_mosaic"' not in text  # a product stage's jobs are not per exposure
    generate_workflow([field["asn"]], steps, stages=STAGES,
                      overrides={"inc": {"override_gain": str(field["gain"])}})
    assert "group:" not in (steps / "Snakefile").read_text()


def test_cli_granularity_and_again(sim, tmp_path):
    work = tmp_path / "wf"
    args = [sys.executable, "-m", "jwpipe", "make-workflow", str(sim.asn_image3), "-o",
            str(work), "--refs", str(sim.store_dir), "--no-pictures"]
    proc = subprocess.run([*args, "--granularity", "chunk"], env=job_env(),
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "invalid choice: 'chunk'" in proc.stderr
    proc = subprocess.run([*args, "--granularity", "stage"], env=job_env(),
                          capture_output=True, text=True, check=True)
    assert "5 stage job(s) over 18 step(s)" in proc.stdout
    assert json.loads((work / "generation.json").read_text())["granularity"] == "stage"
    subprocess.run([sys.executable, "-m", "jwpipe", "make-workflow", "--again", str(work)],
                   env=job_env(), capture_output=True, text=True, check=True)
    assert planned_jobs(work) == {"detector1": 2, "image2": 2, "image3": 1}


def test_catalog_config_chooses_stage_granularity_and_lints_clean(field):
    import yaml

    repo = Path(__file__).resolve().parents[2]
    tmp = field["tmp"]
    (tmp / "config").mkdir()
    (tmp / "config" / "config.yaml").write_text(yaml.safe_dump({
        "associations": [field["asn"]], "workdir": "catalog", "granularity": "stage",
        "overrides": {"inc": {"override_gain": str(field["gain"])}},
        "stages": ["wfsteps.WfDetStage", "wfsteps.WfImgStage", "wfsteps.WfMosaicStage"]}))
    dry = subprocess.run([sys.executable, "-m", "snakemake", "-s",
                          str(repo / "workflow" / "Snakefile"), "-n", "--cores", "1"],
                         cwd=tmp, env=job_env(), capture_output=True, text=True, timeout=600)
    assert dry.returncode == 0, dry.stderr
    assert planned_jobs(tmp / "catalog") == {"wf_det": 3, "wf_img": 3, "wf_mosaic": 1}
    lint = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=tmp / "catalog",
                          env=job_env(), capture_output=True, text=True, timeout=300)
    assert lint.returncode == 0, lint.stdout + lint.stderr
