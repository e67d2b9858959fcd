"""A spec3 association run end to end with the jwst engine: three MIRI LRS fixed-slit exposures
of one source, given as ``_rate`` files (the association names their ``_cal``), through real
Snakemake with jwst's Spec2 and then Spec3 step by step, against jwst's own in-process
``Spec2Pipeline.call`` on each ``_rate`` and ``Spec3Pipeline.call`` on the association.
Inputs and references are written by stdatamodels (:mod:`jwst_spec_data`)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "workflow"))

jwst = pytest.importorskip("jwst")

from jwst_spec_data import SPEC3_HIT, SPEC3_PRODUCT, SPEC3_ROOTS  # noqa: E402
from test_engine_jwst import _jwpipe  # noqa: E402
from test_engine_jwst_spec import _hdus  # noqa: E402
from test_engine_jwst_tso_spec import _inprocess, _snakemake  # noqa: E402
from wfhelpers import planned_jobs, within_requests  # noqa: E402

MODE = "MIR_LRS-FIXEDSLIT"
#: Spec3's rules in a workflow that also runs Spec2, whose side chain has the same steps.
SPEC3_RULES = ["outlier_detection", "spec3_resample_spec", "spec3_extract_1d"]


@pytest.fixture(scope="module")
def spec3(tmp_path_factory):
    """The association, its references in a CRDS cache, jwst's Spec2 and Spec3 in one
    process, and the jwst-engine workflow run by Snakemake."""
    from jwst_spec_data import lrs_cache, write_lrs_references, write_lrs_spec3

    root = tmp_path_factory.mktemp("spec3")
    asn = write_lrs_spec3(root / "in")
    cache = root / "cache"
    lrs_cache(cache, write_lrs_references(root / "refs"))
    inproc = root / "inprocess"
    _inprocess("_run_jwst_level3.py", "Spec3Pipeline", str(asn), str(inproc), "{}", "rate",
               cache=cache)
    wf = root / "wf"
    made = _jwpipe("make-workflow", str(asn), "--engine", "jwst", "--refs", str(cache),
                   "-o", str(wf), "--no-pictures")
    assert made.returncode == 0, made.stderr
    _snakemake(wf)
    return {"asn": asn, "cache": cache, "inprocess": inproc, "wf": wf}


def _same_product(theirs: Path, ours: Path) -> None:
    """Every array and column equal; in the blended member metadata (HDRTAB) the dates aside,
    references by path where jwst names them ``crds://``, and the statuses of steps no rule
    ran absent where jwst records them SKIPPED (docs/engines.md)."""
    a, b = _hdus(theirs), _hdus(ours)
    assert set(b) <= set(a) and len(b) >= 3, (ours.name, sorted(set(b) - set(a)))
    for name in sorted(set(a) - set(b)):
        assert name.startswith("HDRTAB.S_") and set(a[name]) == {"SKIPPED"}, (ours.name, name)
    for name in b:
        if name == "HDRTAB.DATE":
            continue
        if name.startswith("HDRTAB.R_"):
            assert [p if p == "N/A" else os.path.basename(p) for p in b[name]] == \
                [p.removeprefix("crds://") for p in a[name]], (ours.name, name)
            continue
        assert a[name].dtype == b[name].dtype, (ours.name, name)
        np.testing.assert_array_equal(a[name], b[name], err_msg=f"{ours.name} {name}")


@pytest.mark.slow
def test_spec3_workflow_products_are_spec3pipeline_call_products(spec3):
    from stdatamodels.jwst import datamodels as sdm
    from stdatamodels.jwst.datamodels.dqflags import pixel

    products = spec3["wf"] / "products"
    assert planned_jobs(spec3["wf"]) == {}
    for root in SPEC3_ROOTS:
        _same_product(spec3["inprocess"] / f"{root}_cal.fits", products / f"{root}_cal.fits")
        _same_product(spec3["inprocess"] / f"{root}_o013_crf.fits",
                      products / f"{SPEC3_PRODUCT}.crf" / f"{root}_crf.fits")
    for suffix in ("s2d", "x1d"):
        name = f"{SPEC3_PRODUCT}_{suffix}.fits"
        _same_product(spec3["inprocess"] / name, products / name)
    # the second exposure's hit is flagged as an outlier, the others' pixel is not
    flags = []
    for root in SPEC3_ROOTS:
        with sdm.open(str(products / f"{SPEC3_PRODUCT}.crf" / f"{root}_crf.fits")) as crf:
            assert crf.meta.cal_step.outlier_detection == "COMPLETE"
            flags.append(bool(crf.dq[SPEC3_HIT] & pixel["OUTLIER"]))
    assert flags == [False, True, False], flags
    with sdm.open(str(products / f"{SPEC3_PRODUCT}_s2d.fits")) as s2d:
        assert s2d.meta.cal_step.resample == "COMPLETE"
        assert s2d.meta.asn.table_name == spec3["asn"].name
    with sdm.open(str(products / f"{SPEC3_PRODUCT}_x1d.fits")) as x1d:
        flux = np.asarray(x1d.spec[0].spec_table["FLUX"])
        assert np.isfinite(flux).sum() > 20 and np.nanmax(flux) > 0


@pytest.mark.slow
def test_spec3_rules_are_the_steps_spec3pipeline_call_ran(spec3):
    """The order as data is the order the call ran its steps in (``combine_1d`` only in
    place of a resampling); Spec3's rules are those it did not skip, named apart from Spec2's
    side rules; every job stayed within its memory request."""
    from jwpipe.engines.jwst_stages import planned_order

    ran = json.loads((spec3["inprocess"] / "steps.json").read_text())
    assert [n for n, _ in ran] == [n for n in planned_order("calwebb_spec3", MODE)
                                   if n != "combine_1d"]
    plan = json.loads((spec3["wf"] / "plan.json").read_text())
    rules = [s["name"] for s in plan["steps"] if s["group"] == "spec3"]
    assert rules == SPEC3_RULES
    assert [r.removeprefix("spec3_") for r in rules] == [n for n, done in ran if done]
    assert [s["name"] for s in plan["steps"] if s["group"] == "spec2"][-2:] == \
        ["resample_spec", "extract_1d"]
    unit = json.loads((spec3["wf"] / "units" / "spec3_extract_1d" /
                       f"{SPEC3_PRODUCT}.json").read_text())
    assert unit["class"] == "jwst.extract_1d.extract_1d_step.Extract1dStep"
    assert unit["inputs"] == [{"kind": "file", "path": f"products/{SPEC3_PRODUCT}_s2d.fits"}]
    within_requests(spec3["wf"])


@pytest.mark.slow
def test_spec3_parameter_file_reruns_only_what_it_changes(spec3, tmp_path):
    """A Spec3 parameter file reaches Spec3's steps only: its ``extract_1d`` value reruns the
    product's ``_x1d``, not the members' Spec2 ``_x1d``; its ``resample_spec`` value the
    ``_s2d`` and ``_x1d``; the ``_cal`` and ``_crf`` stay done."""
    wf = tmp_path / "wf"
    shutil.copytree(spec3["wf"], wf, symlinks=True)
    for step, pars, rerun in (
            ("extract_1d", {"smoothing_length": 3}, {"spec3_extract_1d": 1}),
            ("resample_spec", {"pixfrac": 0.8},
             {"spec3_resample_spec": 1, "spec3_extract_1d": 1})):
        pars_file = _spec3_pars(tmp_path / f"spec3_{step}.asdf", step, pars)
        proc = _jwpipe("make-workflow", str(spec3["asn"]), "--engine", "jwst", "--refs",
                       str(spec3["cache"]), "-o", str(wf), "--no-pictures", "-p",
                       str(pars_file))
        assert proc.returncode == 0, proc.stderr
        assert planned_jobs(wf) == rerun, step
        unit = json.loads((wf / "units" / f"spec3_{step}" / f"{SPEC3_PRODUCT}.json"
                           ).read_text())
        assert all(unit["parameters"][k] == v for k, v in pars.items())


def _spec3_pars(path: Path, step: str, pars: dict) -> Path:
    """A jwst Spec3Pipeline parameter file setting ``pars`` on its step ``step``."""
    import asdf

    classes = {"extract_1d": "jwst.extract_1d.Extract1dStep",
               "resample_spec": "jwst.resample.ResampleSpecStep"}
    asdf.AsdfFile({"class": "jwst.pipeline.Spec3Pipeline", "name": "Spec3Pipeline",
                   "parameters": {}, "steps": [{"class": classes[step], "name": step,
                                                "parameters": pars}]}).write_to(path)
    return path


@pytest.mark.slow
def test_spec3_without_resampling_extracts_each_member_and_combines(spec3, tmp_path):
    """``resample_spec.skip`` (a Spec3 parameter file): jwst then extracts each member and
    combines the spectra (``_c1d``); the workflow plans that branch, and its products are
    ``Spec3Pipeline.call``'s with the same parameters."""
    wf = tmp_path / "wf"
    shutil.copytree(spec3["wf"], wf, symlinks=True)
    pars = _spec3_pars(tmp_path / "noresample.asdf", "resample_spec", {"skip": True})
    proc = _jwpipe("make-workflow", str(spec3["asn"]), "--engine", "jwst", "--refs",
                   str(spec3["cache"]), "-o", str(wf), "--no-pictures", "-p", str(pars))
    assert proc.returncode == 0, proc.stderr
    assert planned_jobs(wf) == {"spec3_extract_1d": 1, "combine_1d": 1}
    _snakemake(wf)
    theirs = tmp_path / "inprocess"
    _inprocess("_run_jwst_level3.py", "Spec3Pipeline",
               str(spec3["inprocess"] / spec3["asn"].name), str(theirs),
               json.dumps({"resample_spec": {"skip": True}}), cache=spec3["cache"])
    ran = json.loads((theirs / "steps.json").read_text())
    assert [n for n, done in ran if done] == ["outlier_detection", "extract_1d", "combine_1d"]
    for index, root in enumerate(SPEC3_ROOTS):  # jwst names them by the product and index
        _same_product(theirs / f"{SPEC3_PRODUCT}_{index}_x1d.fits",
                      wf / "products" / f"{SPEC3_PRODUCT}.x1d" / f"{root}_x1d.fits")
    _same_product(theirs / f"{SPEC3_PRODUCT}_c1d.fits",
                  wf / "products" / f"{SPEC3_PRODUCT}_c1d.fits")


def test_spec3_plans_from_cal_and_refuses_what_it_does_not_plan(tmp_path):
    """From the members' ``_cal`` only Spec3 is planned (its rules keep their step names);
    ``--until`` a Spec2 step ends at the ``_cal``; ``--steps.spec3_<step>`` reaches Spec3's
    step only; a background member and an exposure type Spec3 makes per-source or IFU
    products of are refused in one line."""
    from jwst_data import SPEC2_ASN
    from jwst_spec_data import lrs_cache, write_lrs_spec3

    from jwpipe.engines.jwst_stages import chain_for

    cache = tmp_path / "cache"
    lrs_cache(cache, [])
    asn = write_lrs_spec3(tmp_path / "in")
    for rate in (tmp_path / "in").glob("*_rate.fits"):  # the headers are all planning reads
        rate.rename(rate.with_name(rate.name.replace("_rate", "_cal")))
    wf = tmp_path / "wf"
    proc = _jwpipe("make-workflow", str(asn), "--engine", "jwst", "--refs", str(cache),
                   "-o", str(wf), "--no-pictures")
    assert proc.returncode == 0, proc.stderr
    plan = json.loads((wf / "plan.json").read_text())
    assert [s["name"] for s in plan["steps"]] == ["outlier_detection", "resample_spec",
                                                  "extract_1d"]
    assert {s["stage"] for s in plan["steps"]} == {"Spec3Pipeline"}
    assert plan["targets"] == [f"products/{SPEC3_PRODUCT}_s2d.fits",
                               f"products/{SPEC3_PRODUCT}_x1d.fits"]
    unit = json.loads((wf / "units" / "outlier_detection" / f"{SPEC3_PRODUCT}.json"
                       ).read_text())
    assert unit["call"] == "members" and unit["jwst"]["members_as"] == "container"
    assert unit["jwst"]["names"] == [f"{r}_cal.fits" for r in SPEC3_ROOTS]
    assert unit["jwst"]["association"]["table_name"] == asn.name
    assert chain_for([asn, SPEC2_ASN]) == chain_for([asn]) == "spectroscopy"

    # from _rate: --until a Spec2 step, or Spec2, ends at the members' _cal
    rates = write_lrs_spec3(tmp_path / "rates")
    for until in ("photom", "calwebb_spec2"):
        wf = tmp_path / f"wf-{until}"
        proc = _jwpipe("make-workflow", str(rates), "--engine", "jwst", "--refs", str(cache),
                       "-o", str(wf), "--no-pictures", "--until", until)
        assert proc.returncode == 0, proc.stderr
        plan = json.loads((wf / "plan.json").read_text())
        assert plan["targets"] == [f"products/{r}_cal.fits" for r in SPEC3_ROOTS], until
    # --steps.<step>.<par> reaches both stages' extract_1d, --steps.spec3_<step>.<par> Spec3's
    wf = tmp_path / "wf-steps"
    proc = _jwpipe("make-workflow", str(rates), "--engine", "jwst", "--refs", str(cache),
                   "-o", str(wf), "--no-pictures", "--steps.extract_1d.smoothing_length=3",
                   "--steps.spec3_extract_1d.smoothing_length=5")
    assert proc.returncode == 0, proc.stderr
    for rule, key, value in (("extract_1d", SPEC3_ROOTS[0], 3),
                             ("spec3_extract_1d", SPEC3_PRODUCT, 5)):
        unit = json.loads((wf / "units" / rule / f"{key}.json").read_text())
        assert unit["parameters"]["smoothing_length"] == value, rule

    for kwargs, said in (({"background": True}, "background member(s)"),
                         ({"exp_type": "NRS_FIXEDSLIT"}, "one product per source")):
        bad = write_lrs_spec3(tmp_path / f"bad-{len(said)}", **kwargs)
        proc = _jwpipe("make-workflow", str(bad), "--engine", "jwst", "--refs", str(cache),
                       "-o", str(tmp_path / "wf-bad"), "--no-pictures")
        assert proc.returncode != 0 and said in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "wf-bad").exists()
