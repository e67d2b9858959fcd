"""Wildcard constraints: constant length, and never letting a rule claim another rule's file."""

from __future__ import annotations

import json
import re

from wfhelpers import planned_jobs

from jwpipe.workflow.plan import Plan, Unit, file_spec
from jwpipe.workflow.wildcards import (
    GENERIC_NAME,
    ambiguous_files,
    constraints_for,
    wildcard_constraints,
)


def _step(name, *tails):
    return {"name": name, "wildcard": "exp", "outputs": [f"products/{{exp}}{t}" for t in tails]}


def _plan(exposures, steps):
    units = []
    for step in steps:
        for exp in exposures:
            outs = [p.replace("{exp}", exp) for p in step["outputs"]]
            units.append(Unit(step["name"], exp, "x.Y", "exposure", [file_spec(f"/in/{exp}.fits")],
                              [file_spec(p) for p in outs], {}, {}, 1, 1))
    return Plan(steps, units, [], sorted(exposures), ["p1"], None)


def test_generic_pattern_is_every_name_the_planner_accepts():
    for name in ("jw02000001001_01101_00001_nrca1", "a", "A.b-c_d", "9x"):
        assert re.fullmatch(GENERIC_NAME, name)
    for name in ("", "_x", ".x", "-x", "a/b", 'a"b', "a b", "a{b}"):
        assert not re.fullmatch(GENERIC_NAME, name)


def test_distinct_suffixes_get_the_generic_constraint():
    plan = _plan(["e1", "e1_jump", "e2"], [_step("jump", "_jump.fits"),
                                            _step("ramp_fit", "_rate.fits", "_rateints.fits")])
    constraints, notes = wildcard_constraints(plan)
    assert constraints == {"exp": GENERIC_NAME, "product": GENERIC_NAME}
    assert notes == []


def test_overlapping_suffixes_exclude_the_difference():
    # "{exp}_rateints.fits" would claim "e1_fit_rateints.fits" with exp="e1_fit"
    steps = [_step("fit", "_fit_rateints.fits"), _step("tail", "_rateints.fits")]
    plan = _plan(["e1", "e2"], steps)
    made = {p: (u.step, u.key) for u in plan.units for p in u.output_paths}
    assert ambiguous_files(steps, made, []) == ["products/e1_fit_rateints.fits",
                                                "products/e2_fit_rateints.fits"]
    constraints, notes = wildcard_constraints(plan)
    assert notes == []
    assert constraints["exp"] == GENERIC_NAME + "(?<!_fit)"
    assert re.fullmatch(constraints["exp"], "e1_fit") is None
    assert re.fullmatch(constraints["exp"], "e1_fitx")
    assert ambiguous_files(steps, made, [], constraints) == []


def test_a_name_the_short_constraint_excludes_falls_back_to_the_exact_names():
    steps = [_step("fit", "_fit_rateints.fits"), _step("tail", "_rateints.fits")]
    plan = _plan(["e1", "e1_fit"], steps)  # e1_fit's "tail" output is e1_fit_rateints.fits...
    constraints, notes = wildcard_constraints(plan)  # ...which is also e1's "fit" output
    assert constraints["exp"] == "e1_fit|e1"
    assert "overlap" in notes[0]


def test_a_longer_head_excludes_its_start():
    steps = [{"name": "a", "wildcard": "product", "outputs": ["products/x_{product}.fits"]},
             {"name": "b", "wildcard": "product", "outputs": ["products/{product}.fits"]}]
    assert constraints_for(steps)["product"] == "(?!x_)" + GENERIC_NAME


def test_an_input_in_a_rules_namespace_is_ambiguous():
    # a start file that looks like a product of a rule for another exposure
    steps = [_step("jump", "_jump.fits")]
    made = {"products/e1_jump.fits": ("jump", "e1")}
    assert ambiguous_files(steps, made, ["products/e9_jump.fits"]) == ["products/e9_jump.fits"]


def test_generated_workflow_uses_the_generic_constraint(field):
    from test_workflow_generator import _generate

    work = field["tmp"] / "wf"
    _generate(field, work)
    plan = json.loads((work / "plan.json").read_text())
    assert plan["exp_regex"].startswith(GENERIC_NAME) and len(plan["exp_regex"]) < 200
    assert plan["product_regex"] == GENERIC_NAME
    assert planned_jobs(work) == {"inc": 3, "dbl": 3, "scl": 3, "align": 1, "stack": 1}
