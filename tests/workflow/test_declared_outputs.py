"""Steps declare their outputs once; the planner, the Snakefile and saving read that declaration."""

from __future__ import annotations

import json

import pytest

from jwpipe.simulate import simulate_field
from jwpipe.steps.ramp_fit import RampFitStep
from jwpipe.stpipe.outputs import Output
from jwpipe.workflow.generate import generate_workflow


@pytest.fixture(scope="module")
def planned(tmp_path_factory):
    base = tmp_path_factory.mktemp("declared")
    sim = simulate_field(base / "data", n_exposures=2, size=32, ngroups=3, seed=3)
    work = base / "wf"
    plan, _ = generate_workflow([str(sim.asn_image3)], work, refs=str(sim.store_dir), keep=[])
    return plan, work


def _unit(work, step):
    return json.loads(next((work / "units" / step).glob("*.json")).read_text())


def test_output_declaration_is_checked():
    with pytest.raises(ValueError, match="per must be one of"):
        Output("x", per="member")
    with pytest.raises(ValueError, match="plain word"):
        Output("../x")
    assert Output("cat", "Table").ext == ".ecsv" and Output("rate").kind == "file"


def test_ramp_fit_declares_its_two_outputs_once(planned):
    _, work = planned
    assert [o.suffix for o in RampFitStep.outputs] == ["rate", "rateints"]
    ramp_fit = _unit(work, "ramp_fit")
    assert [o["path"].rsplit("_nrca1_", 1)[1] for o in ramp_fit["outputs"]] == [
        "ramp_fit.fits", "ramp_fit_rateints.fits"]
    gain_scale = _unit(work, "gain_scale")  # runs on each: the stage's products
    assert [o["path"].rsplit("_nrca1_", 1)[1] for o in gain_scale["outputs"]] == [
        "rate.fits", "rateints.fits"]


def test_kinds_and_stage_products_come_from_the_declarations(planned):
    plan, work = planned
    catalog = _unit(work, "source_catalog")
    assert catalog["outputs"][0]["kind"] == "table" and catalog["call"] == "single"
    crf = _unit(work, "outlier_detection")["outputs"][0]
    assert crf["kind"] == "members" and crf["path"].endswith(".crf")
    assert [n.rsplit("_", 1)[1] for n in crf["names"]] == ["crf.fits", "crf.fits"]
    kept = {s["name"] for s in plan.steps if s["stage_product"]}
    assert kept == {"gain_scale", "photom", "outlier_detection", "resample", "source_catalog"}
    snakefile = (work / "Snakefile").read_text()  # --keep none: only intermediates are temp()
    rule = {name: snakefile.split(f"rule {name}:", 1)[1].split("\nrule ", 1)[0]
            for name in ("jump", "tweakreg", "outlier_detection", "resample", "gain_scale")}
    assert "temp(" in rule["jump"] and "temp(" in rule["tweakreg"]
    assert not any("temp(" in rule[n] for n in ("outlier_detection", "resample", "gain_scale"))
