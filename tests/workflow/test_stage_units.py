"""A stage job's one unit input holds its steps' units: one unit file per exposure and stage.

Generation at ``--granularity stage`` writes ``units/<stage>/<key>.json`` (the steps' units,
each as a step workflow's ``units/<step>/<key>.json`` holds it) and no file per step; a changed
step parameter rewrites only the stage files that hold that step, and the rerun stage jobs
start at that step (real Snakemake, the test steps of ``wfsteps``).
"""

from __future__ import annotations

import json
import os

import pytest
from wfhelpers import planned_jobs, snakemake
from wfsteps import STAGES

from jwpipe.errors import JwpipeError, WorkflowError
from jwpipe.workflow.chain import chain_units, read_stage_units, stage_units_text, unit_reader
from jwpipe.workflow.generate import canonical_json, generate_workflow
from jwpipe.workflow.integrity import restore_times
from jwpipe.workflow.status import read_states


def _unit(step: str, key: str = "k") -> dict:
    return {"format": "jwpipe-unit-1", "step": step, "key": key, "class": "x.Y", "call": "each",
            "parameters": {"a": 1}, "references": {}, "inputs": [],
            "outputs": [{"path": f"products/{key}_{step}.fits", "kind": "file"}],
            "record": f"state/{step}/{key}.json"}


def test_stage_units_file_holds_the_units_and_refuses_a_damaged_one(tmp_path):
    units = [_unit("a"), _unit("b")]
    stage = tmp_path / "units" / "st" / "k.json"
    stage.parent.mkdir(parents=True)
    text = stage_units_text("st", "k", [canonical_json(u) for u in units])
    stage.write_text(text)
    assert json.loads(text) == {"format": "jwpipe-stage-units-2", "key": "k", "stage": "st",
                                "units": units}
    assert read_stage_units(stage) == units
    assert chain_units([str(stage)]) == [(str(stage), units[0]), (str(stage), units[1])]
    one = tmp_path / "a.json"  # step unit files given one by one: read as they are
    one.write_text(canonical_json(units[0]))
    assert chain_units([str(one)]) == [(str(one), units[0])]
    stage.write_text(json.dumps({"format": "jwpipe-stage-units-2", "units": []}))
    with pytest.raises(WorkflowError, match="damaged stage units file"):
        chain_units([str(stage)])
    stage.write_text(json.dumps({"format": "jwpipe-stage-units-2",
                                 "units": [units[0], {**units[1], "call": "twice"}]}))
    with pytest.raises(JwpipeError, match=r"unit 2: missing or invalid call 'twice'"):
        chain_units([str(stage)])
    stage.write_text(json.dumps({"format": "jwpipe-stage-units-1", "units": ["units/a/k.json"],
                                 "sha256": ["0" * 64]}))  # written by an earlier jwpipe
    with pytest.raises(WorkflowError, match=r"not a jwpipe-stage-units-2 .*make-workflow --again"):
        chain_units([str(stage)])


def test_restore_times_dates_a_stage_units_file_before_its_last_steps_outputs(tmp_path):
    """After ``--trust-content`` the stage job's unit input is older than the outputs of every
    step it holds (as each step's own unit file would be), and only if all were trusted."""
    units = [_unit("a"), _unit("b")]
    (tmp_path / "plan.json").write_text(json.dumps({
        "units": {u["step"]: {"k": {"outputs": [u["outputs"][0]["path"]]}} for u in units},
        "chains": {"st": {"k": {"steps": ["a", "b"], "outputs": []}}}}))
    stage = tmp_path / "units" / "st" / "k.json"
    stage.parent.mkdir(parents=True)
    stage.write_text(stage_units_text("st", "k", [canonical_json(u) for u in units]))
    (tmp_path / "products").mkdir()
    for i, unit in enumerate(units):
        out = tmp_path / unit["outputs"][0]["path"]
        out.write_bytes(bytes(10 + i))
        from jwpipe.workflow.integrity import fingerprint

        record = tmp_path / unit["record"]
        record.parent.mkdir(parents=True)
        made = {**fingerprint(out), "mtime_ns": 10**18 + i * 10**9}
        record.write_text(json.dumps({**unit, "fingerprints": {unit["outputs"][0]["path"]:
                                                               made}}))
    assert restore_times(tmp_path) == (2, [])
    assert stage.stat().st_mtime_ns == 10**18 + 10**9 - 10**6
    assert not (tmp_path / "units" / "a").exists()  # no step unit file made up
    os.utime(stage, ns=(5, 5))
    (tmp_path / "products" / "k_b.fits").write_bytes(b"changed!!!!")
    restored, skipped = restore_times(tmp_path)
    assert restored == 1 and "b k: products/k_b.fits differs" in skipped[0]
    assert stage.stat().st_mtime_ns == 5  # not every step trusted: left to rerun


@pytest.mark.slow
def test_stage_unit_files_per_exposure_and_a_changed_step_reruns_from_it(field):
    tmp = field["tmp"]
    gain = {"inc": {"override_gain": str(field["gain"])}}
    steps_wf, stage_wf = tmp / "steps", tmp / "stages"
    plan, counts = generate_workflow([field["asn"]], steps_wf, stages=STAGES, overrides=gain,
                                     pictures=False)
    _, stage_counts = generate_workflow([field["asn"]], stage_wf, stages=STAGES,
                                        overrides=gain, granularity="stage", pictures=False)
    files = sorted(str(p.relative_to(stage_wf)) for p in (stage_wf / "units").rglob("*.json"))
    roots = field["roots"]
    assert files == sorted([f"units/wf_det/{r}.json" for r in roots]
                           + [f"units/wf_img/{r}.json" for r in roots]
                           + ["units/wf_mosaic/jw01234-o001_t001_nircam.json"])
    assert counts["written"] == len(plan.units) and stage_counts["written"] == len(files)
    # each stage file holds exactly what the step workflow's unit files hold, in step order
    held = read_stage_units(stage_wf / "units" / "wf_det" / f"{roots[0]}.json")
    assert held == [json.loads((steps_wf / "units" / s / f"{roots[0]}.json").read_text())
                    for s in ("inc", "dbl")]
    plan_json = json.loads((stage_wf / "plan.json").read_text())
    assert plan_json["chains"]["wf_det"][roots[0]]["steps"] == ["inc", "dbl"]
    assert unit_reader(stage_wf, plan_json)("dbl", roots[0]) == held[1]

    snakemake(stage_wf)
    assert {s.status for s in read_states(stage_wf)} == {"done"}
    before = {p: p.stat().st_mtime_ns for p in (stage_wf / "units").rglob("*.json")}
    inc_out = {r: (stage_wf / "products" / f"{r}_inc.fits").stat().st_mtime_ns for r in roots}

    # dbl's factor changes: only the Detector1-like stage files are rewritten; the stage jobs
    # rerun (their products feed the later stages) and start at dbl
    _, again = generate_workflow([field["asn"]], stage_wf, stages=STAGES, granularity="stage",
                                 pictures=False, overrides={**gain, "dbl": {"factor": 4.0}})
    assert again == {"written": len(roots), "unchanged": len(files) - len(roots), "removed": 0}
    moved = {str(p.relative_to(stage_wf)) for p, t in before.items()
             if p.stat().st_mtime_ns != t}
    assert moved == {f"units/wf_det/{r}.json" for r in roots}
    stale = {(s.step, s.status) for s in read_states(stage_wf) if s.status != "done"}
    assert ("dbl", "stale") in stale and all(step != "inc" for step, _ in stale)
    assert planned_jobs(stage_wf) == {"wf_det": 3, "wf_img": 3, "wf_mosaic": 1}
    snakemake(stage_wf)
    for r in roots:
        steps = json.loads((stage_wf / "state" / "wf_det" / f"{r}.json").read_text())["steps"]
        assert [(s["step"], s["action"]) for s in steps] == [("inc", "reused"), ("dbl", "ran")]
        assert (stage_wf / "products" / f"{r}_inc.fits").stat().st_mtime_ns == inc_out[r]
    assert planned_jobs(stage_wf) == {}
    assert {s.status for s in read_states(stage_wf)} == {"done"}

    # switching to step granularity writes the step unit files and removes the stage files
    _, back = generate_workflow([field["asn"]], stage_wf, stages=STAGES, pictures=False,
                                overrides={**gain, "dbl": {"factor": 4.0}})
    assert back["removed"] == len(files) and back["written"] == len(plan.units)
    assert not (stage_wf / "units" / "wf_det").exists() or \
        not list((stage_wf / "units" / "wf_det").iterdir())


def test_a_new_context_alone_rewrites_no_stage_units_file(tmp_path):
    """As for step unit files: a new reference context that selects the same files leaves the
    units (and their context, the one the products were made under) as they are."""
    from jwpipe.simulate import simulate_field
    from jwpipe.workflow.generate import plan_for_workflow, write_workflow

    sim = simulate_field(tmp_path / "data", n_exposures=1, size=32, ngroups=3, seed=5)
    asn = [str(sim.asn_image3)]
    plan = plan_for_workflow(asn, refs=str(sim.store_dir))
    work = tmp_path / "wf"
    first = write_workflow(plan, work, asn_paths=asn, granularity="stage", pictures=False)
    assert first["written"] == 3 and plan.context
    files = sorted((work / "units").rglob("*.json"))
    before = {p: p.read_bytes() for p in files}
    old_context = plan.context
    plan.context = "jwst_9999.pmap"
    again = write_workflow(plan, work, asn_paths=asn, granularity="stage", pictures=False)
    assert again == {"written": 0, "unchanged": 3, "removed": 0}
    assert {p: p.read_bytes() for p in files} == before
    contexts = {u["references"]["context"] for p in files for u in read_stage_units(p)}
    assert contexts == {old_context, None}  # None: units with no CRDS-selected reference
