"""Time-series spectroscopy with ``--engine jwst``: tso-spec2 and spectroscopic tso3.

Two MIRI LRS slitless segments (``_rateints``, written by stdatamodels, with the LRS
references of :mod:`jwst_spec_data` in a test CRDS cache), in a tso-spec2 association of the
real one's structure, run through real Snakemake to ``_calints`` and ``_x1dints``; the
workflow's ``_calints`` then through a tso3 workflow to ``_crfints``, one ``_x1dints`` and the
``_whtlt`` white-light curve. Every product's arrays and table columns are those of jwst's
own in-process ``Spec2Pipeline.call`` and ``Tso3Pipeline.call`` on the same inputs (header
times aside), and the orders stated as data are the orders those calls ran. The real
tso-spec2 association (NIRISS SOSS) plans, its runs needing references that cannot be made
small.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "workflow"))

jwst = pytest.importorskip("jwst")

from test_engine_jwst import _env, _jwpipe  # noqa: E402
from test_engine_jwst_spec import _hdus  # noqa: E402
from wfhelpers import planned_jobs, within_requests  # noqa: E402

MODE = "MIR_LRS-SLITLESS"
TSO3_PRODUCT = "jw01234-o003_t001_miri_p750l-slitlessprism"


def _snakemake(wf: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "snakemake", "--profile", "profiles/local",
                          "--cores", "2"], cwd=wf, capture_output=True, text=True,
                         timeout=900, env=_env())
    assert run.returncode == 0, run.stderr[-4000:]


def _inprocess(script: str, *args: str, cache: Path) -> None:
    proc = subprocess.run([sys.executable, str(HERE / script), *args], capture_output=True,
                          text=True, timeout=600, cwd=HERE,
                          env=_env(CRDS_PATH=str(cache), CRDS_READONLY_CACHE="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="module")
def tso(tmp_path_factory):
    """Both segments through jwst's Spec2Pipeline.call and a tso-spec2 workflow; the
    workflow's _calints through jwst's Tso3Pipeline.call and a tso3 workflow."""
    from jwst_spec_data import lrs_cache, write_lrs_references
    from jwst_tso_spec_data import TSO_SPEC_ROOTS, write_lrs_rateints

    root = tmp_path_factory.mktemp("tsospec")
    asn = write_lrs_rateints(root / "in")
    cache = root / "cache"
    lrs_cache(cache, write_lrs_references(root / "refs"))
    spec2 = root / "spec2-inprocess"
    _inprocess("_run_jwst_spec2.py", str(asn), str(spec2), cache=cache)
    wf = root / "wf"
    made = _jwpipe("make-workflow", str(asn), "--engine", "jwst", "--refs", str(cache),
                   "-o", str(wf), "--no-pictures")
    assert made.returncode == 0, made.stderr
    _snakemake(wf)
    # level 3 from the workflow's _calints
    l3 = root / "tso3-in"
    l3.mkdir()
    for name in TSO_SPEC_ROOTS:
        shutil.copy(wf / "products" / f"{name}_calints.fits", l3)
    tso3_asn = l3 / "jw01234-o003_20230601t000000_tso3_001_asn.json"
    tso3_asn.write_text(json.dumps({
        "asn_type": "tso3", "asn_rule": "candidate_Asn_Lv3SpecTSO", "asn_id": "o003",
        "asn_pool": "jw01234_20230601T000000_pool", "program": "01234", "target": "t001",
        "products": [{"name": TSO3_PRODUCT, "members": [
            {"expname": f"{r}_calints.fits", "exptype": "science"} for r in TSO_SPEC_ROOTS]}]},
        indent=1))
    tso3 = root / "tso3-inprocess"
    _inprocess("_run_jwst_level3.py", "Tso3Pipeline", str(tso3_asn), str(tso3), cache=cache)
    wf3 = root / "wf3"
    made = _jwpipe("make-workflow", str(tso3_asn), "--engine", "jwst", "--refs", str(cache),
                   "-o", str(wf3), "--no-pictures")
    assert made.returncode == 0, made.stderr
    _snakemake(wf3)
    return {"spec2": spec2, "wf": wf, "tso3": tso3, "wf3": wf3, "roots": TSO_SPEC_ROOTS}


def _same(theirs: Path, ours: Path, aside: tuple[str, ...] = ()) -> None:
    a, b = _hdus(theirs), _hdus(ours)
    assert sorted(a) == sorted(b) and len(a) >= 3, (ours.name, sorted(a), sorted(b))
    for name in a:
        if name in aside:
            continue
        assert a[name].dtype == b[name].dtype, (ours.name, name)
        np.testing.assert_array_equal(a[name], b[name], err_msg=f"{ours.name} {name}")


@pytest.mark.slow
def test_tso_spec2_workflow_products_are_spec2pipeline_call_products(tso):
    from stdatamodels.jwst import datamodels as sdm

    assert planned_jobs(tso["wf"]) == {}
    for root in tso["roots"]:
        for suffix in ("calints", "x1dints"):
            name = f"{root}_{suffix}.fits"
            _same(tso["spec2"] / name, tso["wf"] / "products" / name)
        with sdm.open(str(tso["wf"] / "products" / f"{root}_calints.fits")) as cal:
            assert cal.data.ndim == 3 and cal.data.shape[0] == 3  # integrations kept
            done = cal.meta.cal_step
            assert (done.assign_wcs, done.srctype, done.flat_field, done.photom) == \
                ("COMPLETE",) * 4
        with sdm.open(str(tso["wf"] / "products" / f"{root}_x1dints.fits")) as x1d:
            flux = np.asarray(x1d.spec[0].spec_table["FLUX"])
            assert flux.shape[0] == 3 and np.isfinite(flux).sum() > 40


@pytest.mark.slow
def test_tso_spec2_rules_are_the_steps_spec2pipeline_call_ran(tso):
    from jwpipe.engines.jwst_stages import planned_order, side_order

    (run,) = json.loads((tso["spec2"] / "steps.json").read_text())
    steps = run["steps"][:len(run["steps"]) // 2]  # the first of the two products
    assert run["steps"] == steps * 2
    side = side_order("tso-spec2", MODE)
    assert [n for n, _ in steps] == planned_order("tso-spec2", MODE) + [n for n, _ in side]
    assert side[-1] == ("extract_1d", "x1dints")
    plan = json.loads((tso["wf"] / "plan.json").read_text())
    assert [s["name"] for s in plan["steps"]] == [n for n, ran in steps if ran]
    assert sorted(plan["targets"]) == sorted(f"products/{r}_{s}.fits" for r in tso["roots"]
                                             for s in ("calints", "x1dints"))
    within_requests(tso["wf"])


@pytest.mark.slow
def test_tso3_spectra_workflow_is_tso3pipeline_call(tso):
    from astropy.table import Table

    from jwpipe.engines.jwst_stages import planned_order

    inproc, wf3 = tso["tso3"], tso["wf3"]
    assert planned_jobs(wf3) == {}
    steps = json.loads((inproc / "steps.json").read_text())
    assert list(dict.fromkeys(n for n, _ in steps)) == planned_order("calwebb_tso3", MODE)
    plan = json.loads((wf3 / "plan.json").read_text())
    assert [s["name"] for s in plan["steps"]] == list(dict.fromkeys(n for n, ran in steps
                                                                    if ran))
    for root in tso["roots"]:  # jwst adds the association id to member products' names
        _same(inproc / f"{root}_o003_crfints.fits", wf3 / "products" / f"{root}_crfints.fits")
    name = f"{TSO3_PRODUCT}_x1dints.fits"
    _same(inproc / name, wf3 / "products" / name, aside=("HDRTAB.DATE",))
    theirs = _hdus(inproc / name)
    assert theirs["INT_TIMES.integration_number"].tolist() == list(range(1, 7))
    assert theirs["HDRTAB.FILENAME"].tolist() == [f"{r}_calints.fits" for r in tso["roots"]]
    theirs = Table.read(inproc / f"{TSO3_PRODUCT}_whtlt.ecsv")
    ours = Table.read(wf3 / "products" / f"{TSO3_PRODUCT}_whtlt.ecsv")
    assert len(theirs) == 6 and theirs.colnames == ours.colnames
    for column in theirs.colnames:
        np.testing.assert_array_equal(theirs[column], ours[column], err_msg=column)
    assert {k: v for k, v in ours.meta.items() if k != "jwpipe_run_step"} == dict(theirs.meta)
    from stdatamodels.jwst import datamodels as sdm

    with sdm.open(str(inproc / name)) as a, sdm.open(str(wf3 / "products" / name)) as b:
        assert a.spec[0].s_region == b.spec[0].s_region
        assert a.spec[0].s_region.endswith("-27.7890")  # the first segment's
        assert (a.meta.cal_step.adaptive_trace_model, a.meta.cal_step.pixel_replace) == \
            (b.meta.cal_step.adaptive_trace_model, b.meta.cal_step.pixel_replace) == \
            ("SKIPPED", "SKIPPED")
        assert (a.meta.asn.pool_name, a.meta.asn.table_name) == \
            (b.meta.asn.pool_name, b.meta.asn.table_name)
    within_requests(wf3)


# ------------------------------------------------------------------------------- fast
def _plan_soss(asn: Path, tmp_path: Path, wf: Path) -> dict:
    """make-workflow of a NIS_SOSS association on a cache naming every type jwst's Detector1
    and Spec2 declare N/A (enough for planning); its plan."""
    from jwst.pipeline import Detector1Pipeline, Spec2Pipeline

    from jwpipe.engines.jwst_stages import _reference_types
    from jwpipe.references.cache_writer import write_context

    cache = tmp_path / "cache"
    declared = {t for p in (Detector1Pipeline, Spec2Pipeline) for c in p.step_defs.values()
                for t in _reference_types(c)}
    write_context(cache, {"NIRISS": {t: "N/A" for t in sorted(declared)}})
    proc = _jwpipe("make-workflow", str(asn), "--engine", "jwst", "--refs", str(cache),
                   "-o", str(wf), "--no-pictures")
    assert proc.returncode == 0, proc.stderr
    return json.loads((wf / "plan.json").read_text())


def test_real_tso_spec2_association_plans_niriss_soss_to_calints(tmp_path):
    """The real tso-spec2 association: a rule per step jwst's Spec2 runs for NIS_SOSS (its
    declarations, the SOSS branch), from the member's _rateints to its _calints."""
    from jwst.pipeline import Spec2Pipeline
    from jwst_tso_spec_data import write_soss_rateints

    from jwpipe.engines.jwst_stages import applicable_order

    asn = write_soss_rateints(tmp_path / "in")
    wf = tmp_path / "wf"
    plan = _plan_soss(asn, tmp_path, wf)
    names = [s["name"] for s in plan["steps"]]
    skipped = {n for n, c in Spec2Pipeline.step_defs.items() if c().skip}
    assert names == [n for n in applicable_order("tso-spec2", "NIS_SOSS") if n not in skipped]
    assert names == ["assign_wcs", "bkg_subtract", "srctype", "flat_field", "pathloss"]
    root = "jw10004001001_02101_00001_nis"
    assert plan["targets"] == [f"products/{root}_calints.fits"]
    unit = json.loads((wf / "units" / "assign_wcs" / f"{root}.json").read_text())
    assert unit["inputs"][0]["path"].endswith(f"{root}_rateints.fits")
    assert unit["class"] == "jwst.assign_wcs.assign_wcs_step.AssignWcsStep"


def test_tso_spec2_from_uncal_plans_detector1_then_spec2_on_its_rateints(tmp_path):
    """The member present as ``_uncal`` only: Detector1, then Spec2 on the ``_rateints``
    ramp_fit writes (not its ``_rate``)."""
    from jwst_data import uncal_instead
    from jwst_tso_spec_data import write_soss_rateints

    asn = write_soss_rateints(tmp_path / "in")
    root = "jw10004001001_02101_00001_nis"
    uncal_instead(asn.parent / f"{root}_rateints.fits")
    wf = tmp_path / "wf"
    plan = _plan_soss(asn, tmp_path, wf)
    assert list(dict.fromkeys(s["stage"] for s in plan["steps"])) == [
        "Detector1Pipeline", "Spec2Pipeline"]
    last = plan["steps"][[s["stage"] for s in plan["steps"]].index("Spec2Pipeline") - 1]
    assert last["outputs"] == ["products/{exp}_rate.fits", "products/{exp}_rateints.fits"]
    unit = json.loads((wf / "units" / "assign_wcs" / f"{root}.json").read_text())
    assert [f["path"] for f in unit["inputs"]] == [f"products/{root}_rateints.fits"]
    assert plan["targets"] == [f"products/{root}_calints.fits"]


def test_tso_spec2_order_is_spec2s_for_the_same_exposure_types():
    """The variant runs Spec2's own branches: the same order per type, on TSO types only;
    the product and extraction suffixes and the CubeModel's missing resampling are jwst's
    (its source), and its always-TSO spectroscopic types are planned."""
    import inspect

    from jwst.associations.lib.dms_base import TSO_EXP_TYPES
    from jwst.pipeline import Spec2Pipeline

    from jwpipe.engines.jwst_stages import TSO_SPEC2_TYPES, planned_order, side_order

    source = inspect.getsource(Spec2Pipeline.process_exposure_product)
    assert 'suffix = "calints"' in source and 'self.extract_1d.suffix = "x1dints"' in source
    assert "not isinstance(calibrated, datamodels.CubeModel)" in source
    assert {t.upper() for t in TSO_EXP_TYPES} - {"NRC_TSIMAGE"} <= set(TSO_SPEC2_TYPES)

    for mode in TSO_SPEC2_TYPES:
        assert planned_order("tso-spec2", mode) == planned_order("calwebb_spec2", mode)
        assert "resample_spec" not in dict(side_order("tso-spec2", mode))
    assert dict(side_order("tso-spec2", "NIS_SOSS")) == {"adaptive_trace_model":
                                                         "adaptive_trace_model",
                                                         "pixel_replace": "pixel_replace"}


def test_tso_spec2_refusals_are_one_line(tmp_path):
    """A spec2 association of _rateints is a time series too (as jwst 3.0 writes MIRI LRS
    slitless ones); a tso-spec2 association in a Spec2 workflow of _rate, a non-TSO exposure
    type in a tso-spec2 association: each one line, nothing made."""
    from jwst_tso_spec_data import write_lrs_rateints

    from jwpipe.engines.jwst_stages import CHAINS, chain_for, jwst_stages
    from jwpipe.errors import WorkflowError
    from jwpipe.workflow.plan import plan_workflow

    asn = write_lrs_rateints(tmp_path / "in", roots=("jw01234003001_04101_00001_mirimage",))
    assert chain_for([asn]) == "tso-spec2"
    assert CHAINS["tso-spec2"] == ("calwebb_detector1", "tso-spec2")
    spec2 = tmp_path / "in" / "spec2_asn.json"
    spec2.write_text(asn.read_text().replace('"tso-spec2"', '"spec2"'))
    assert chain_for([spec2]) == "tso-spec2"
    rate = tmp_path / "in" / "rate_asn.json"
    rate.write_text(spec2.read_text().replace("_rateints.fits", "_rate.fits"))
    assert chain_for([rate]) == "spectroscopy"
    with pytest.raises(WorkflowError, match="planned for spec2, nrslamp-spec2 associations"):
        plan_workflow([asn], stages=jwst_stages("spectroscopy"))
    image = tmp_path / "in" / "image_asn.json"
    image.write_text(asn.read_text())
    from astropy.io import fits

    rateints = tmp_path / "in" / "jw01234003001_04101_00001_mirimage_rateints.fits"
    with fits.open(rateints, mode="update") as hdul:
        hdul[0].header["EXP_TYPE"] = "MIR_IMAGE"
    from jwst_data import spec2_cache

    spec2_cache(tmp_path / "cache")
    proc = _jwpipe("make-workflow", str(image), "--engine", "jwst", "--refs",
                   str(tmp_path / "cache"), "-o", str(tmp_path / "wf"), "--no-pictures")
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "MIR_IMAGE is not one of the exposure types" in proc.stderr
    assert not (tmp_path / "wf").exists()


@pytest.mark.slow
def test_tso3_extraction_parameter_change_reruns_only_extraction_and_light_curve(tso, tmp_path):
    """An ``extract_1d`` parameter reruns the product's ``_x1dints`` and ``_whtlt``; the
    members' ``_crfints`` stay done."""
    wf = tmp_path / "wf3"
    shutil.copytree(tso["wf3"], wf, symlinks=True)
    proc = _jwpipe("make-workflow", "--again", str(wf), "--steps.extract_1d.smoothing_length=3")
    assert proc.returncode == 0, proc.stderr
    assert "unit files: 1 written" in proc.stdout, proc.stdout
    assert planned_jobs(wf) == {"extract_1d": 1, "white_light": 1}
