"""``make-workflow --engine jwst``: jwst's pipelines, step by step, behind the same generator.

On the simulator's ramps re-written by stdatamodels and the simulator's CRDS cache (completed
with what jwst needs, :mod:`jwst_data`), a jwst-engine workflow from an image3 association runs
through real Snakemake to ``_rate``, ``_cal``, ``_i2d`` and ``_cat``, and its data are jwst's
own ``Pipeline.call`` products on the same inputs, to the bit. The stage order the planner
states as data is the order jwst's pipelines call their steps in that run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "workflow"))

from jwst_data import PRODUCT, ROOTS, make_field  # noqa: E402
from wfhelpers import planned_jobs  # noqa: E402

jwst = pytest.importorskip("jwst")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRDS_", "STPIPE_"))}
    env["CRDS_SERVER_URL"] = "https://127.0.0.1:9"  # never a server: the cache is the truth
    return {**env, **extra}


def _jwpipe(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jwpipe", *args], capture_output=True,
                          text=True, timeout=900, cwd=cwd, env=_env(**env))


# ------------------------------------------------------------------------------- fast
def test_stage_order_names_exactly_jwst_step_defs():
    from jwpipe.engines.jwst_stages import STAGES, pipeline_class

    for info in STAGES:
        declared = set(pipeline_class(info["alias"]).step_defs)
        ordered = {n for names in info["order"].values() for n in names}
        ordered |= set(info.get("side", {}).get("order", ()))
        assert ordered <= declared, ordered - declared
        assert declared == ordered | set(info["not_planned"]), \
            declared ^ (ordered | set(info["not_planned"]))


def test_stages_are_learned_from_jwst_declarations():
    from jwst.jump import JumpStep
    from jwst.pipeline import Detector1Pipeline

    from jwpipe.engines.jwst_stages import jwst_stages

    detector1, image2, image3 = jwst_stages()
    assert detector1.jwst_class is Detector1Pipeline and detector1.class_alias == \
        "calwebb_detector1"
    assert detector1.step_defs["jump"].jwst_class is JumpStep
    assert detector1.step_defs["jump"].reference_file_types == tuple(
        JumpStep.reference_file_types)
    assert detector1.step_names("MIRI")[2] == "emicorr"
    assert "superbias" in detector1.step_names("NIRCAM")
    assert "superbias" not in detector1.step_names("MIRI")
    assert [s.workflow_stage_scope for s in (detector1, image2, image3)] == \
        ["exposure", "exposure", "product"]


def test_without_jwst_make_workflow_says_how_to_install(tmp_path, monkeypatch, capsys):
    import importlib.util

    from jwpipe.cli.main import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "jwst" else real(name, *a))
    rc = main(["make-workflow", str(tmp_path / "x_asn.json"), "--engine", "jwst",
               "-o", str(tmp_path / "wf")])
    err = capsys.readouterr().err
    assert rc == 1
    assert err.strip().splitlines() == [
        "jwpipe make-workflow: error: --engine jwst needs STScI's jwst package, which is not "
        "installed: pip install 'jwpipe[jwst]'"]
    assert not (tmp_path / "wf").exists()


# ------------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def field(tmp_path_factory):
    return make_field(tmp_path_factory.mktemp("jwstfield"))


@pytest.fixture(scope="module")
def in_process(field, tmp_path_factory):
    """jwst's own Detector1, Image2, Image3 ``Pipeline.call`` on the inputs, in one process."""
    out = tmp_path_factory.mktemp("inprocess")
    proc = subprocess.run([sys.executable, str(HERE / "_run_jwst_pipelines.py"),
                           str(field["inputs"]), str(field["asn"]), str(out)],
                          capture_output=True, text=True, timeout=900,
                          env=_env(CRDS_PATH=str(field["cache"]), CRDS_READONLY_CACHE="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def workflow(field, tmp_path_factory):
    """The jwst-engine workflow, generated and run to completion by real Snakemake."""
    wf = tmp_path_factory.mktemp("jwstwf") / "wf"
    proc = _jwpipe("make-workflow", str(field["asn"]), "--engine", "jwst", "--refs",
                   str(field["cache"]), "-o", str(wf), "--no-pictures")
    assert proc.returncode == 0, proc.stderr
    run = subprocess.run([sys.executable, "-m", "snakemake", "--profile", "profiles/local",
                          "--cores", "2"], cwd=wf, capture_output=True, text=True,
                         timeout=1800, env=_env())
    assert run.returncode == 0, run.stderr[-4000:]
    return wf


@pytest.mark.slow
def test_planned_order_is_the_order_pipeline_call_runs(in_process, workflow):
    from jwpipe.engines.jwst_stages import STAGES, planned_order

    plan = json.loads((workflow / "plan.json").read_text())
    runs = json.loads((in_process / "steps.json").read_text())
    by_name = {"Detector1Pipeline": "calwebb_detector1", "Image2Pipeline": "calwebb_image2",
               "Image3Pipeline": "calwebb_image3"}
    assert {r["pipeline"] for r in runs} == set(by_name)
    for run in runs:
        alias = by_name[run["pipeline"]]
        not_planned = next(s["not_planned"] for s in STAGES if s["alias"] == alias)
        # gain_scale is called twice in a row (rate, then rateints); its unit takes both
        steps = [step for i, step in enumerate(run["steps"])
                 if i == 0 or step[0] != run["steps"][i - 1][0]]
        called = [name for name, _ in steps if name not in not_planned]
        ran = [name for name, ran in steps if ran and name not in not_planned]
        assert called == planned_order(alias, "NIRCAM"), run["input"]
        # the workflow's rules: the planned order without the steps jwst skipped
        assert [s["name"] for s in plan["steps"] if s["stage"] == run["pipeline"]] == ran


def _arrays(path: Path) -> dict[str, np.ndarray]:
    from astropy.io import fits

    with fits.open(path) as hdul:
        return {h.name: np.asarray(h.data) for h in hdul
                if h.name != "ASDF" and isinstance(h, fits.ImageHDU | fits.PrimaryHDU)
                and h.data is not None}


@pytest.mark.slow
def test_workflow_products_are_pipeline_call_products(in_process, workflow):
    from astropy.table import Table

    products = workflow / "products"
    pairs = [(in_process / f"{PRODUCT}_i2d.fits", products / f"{PRODUCT}_i2d.fits")]
    for root in ROOTS:
        pairs += [(in_process / f"{root}_{s}.fits", products / f"{root}_{s}.fits")
                  for s in ("rate", "rateints", "cal")]
        pairs.append((in_process / f"{root}_o001_crf.fits",
                      products / f"{PRODUCT}.crf" / f"{root}_crf.fits"))
    for theirs, ours in pairs:
        a, b = _arrays(theirs), _arrays(ours)
        assert sorted(a) == sorted(b) and len(a) >= 2, (ours.name, sorted(a), sorted(b))
        for name in a:
            assert a[name].dtype == b[name].dtype, (ours.name, name)
            np.testing.assert_array_equal(a[name], b[name], err_msg=f"{ours.name} {name}")
    theirs = Table.read(in_process / f"{PRODUCT}_cat.ecsv")
    ours = Table.read(products / f"{PRODUCT}_cat.ecsv")
    assert len(theirs) > 5 and theirs.colnames == ours.colnames
    for column in theirs.colnames:
        assert [str(v) for v in theirs[column]] == [str(v) for v in ours[column]], column


@pytest.mark.slow
def test_jobs_write_parameter_files_records_logs_and_benchmarks(workflow, field):
    from stpipe import config_parser

    unit = json.loads((workflow / "units" / "jump" / f"{ROOTS[0]}.json").read_text())
    assert unit["engine"] == "jwst" and unit["class"] == "jwst.jump.jump_step.JumpStep"
    assert unit["jwst"]["crds_path"] == str(field["cache"])
    assert unit["references"]["context"] == field["context"]
    assert {Path(p).name.split("_")[2] for p in unit["references"]["files"].values()} == \
        {"gain", "readnoise"}
    # the parameter file the job ran with holds exactly the unit's parameters
    pars = config_parser.load_config_file(str(workflow / "params" / "jump" /
                                              f"{ROOTS[0]}.asdf"))
    assert pars["class"] == unit["class"]
    assert {k: pars[k] for k in unit["parameters"]} == unit["parameters"]
    record = json.loads((workflow / "state" / "jump" / f"{ROOTS[0]}.json").read_text())
    assert record["measured"]["peak_rss_mb"] > 100 and record["fingerprints"]
    assert (workflow / "logs" / "jump" / f"{ROOTS[0]}.log").stat().st_size > 0
    assert (workflow / "benchmarks" / "jump" / f"{ROOTS[0]}.tsv").is_file()
    from stdatamodels.jwst import datamodels as sdm

    with sdm.open(str(workflow / "products" / f"{ROOTS[0]}_rate.fits")) as model:
        provenance = model.instance["jwpipe_run_step"]
        assert model.meta.filename == f"{ROOTS[0]}_rate.fits"
    assert provenance["engine"] == "jwst" and provenance["step"] == "gain_scale"
    # every job stayed within the memory the engine declared for its step
    plan = json.loads((workflow / "plan.json").read_text())
    for step, units in plan["units"].items():
        for key, planned in units.items():
            made = json.loads((workflow / "state" / step / f"{key}.json").read_text())
            assert made["measured"]["peak_rss_mb"] < planned["mem_mb"], (step, key)
    status = _jwpipe("status", str(workflow), "--no-snakemake")
    assert status.returncode == 0 and "33 done" in status.stdout, status.stdout


DOWNSTREAM_OF_JUMP = {"jump": 2, "ramp_fit": 2, "gain_scale": 2, "assign_wcs": 2,
                      "flat_field": 2, "photom": 2, "tweakreg": 1, "skymatch": 1,
                      "outlier_detection": 1, "resample": 1, "source_catalog": 1}


def _copy(workflow: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "wf"
    shutil.copytree(workflow, copy, symlinks=True)
    (copy / "generation.json").write_text((workflow / "generation.json").read_text())
    return copy


@pytest.mark.slow
def test_parameter_change_reruns_exactly_the_affected_units(workflow, tmp_path):
    wf = _copy(workflow, tmp_path)
    assert planned_jobs(wf) == {}
    proc = _jwpipe("make-workflow", "--again", str(wf), "--steps.jump.rejection_threshold=5")
    assert proc.returncode == 0, proc.stderr
    assert "unit files: 2 written, 31 unchanged" in proc.stdout
    assert planned_jobs(wf) == DOWNSTREAM_OF_JUMP
    plan = _jwpipe("plan", str(wf), "--no-snakemake")
    assert "parameter rejection_threshold: 4.0 -> 5.0" in plan.stdout, plan.stdout


def _export_pars(step, path: Path, reftype: str) -> None:
    """``step``'s parameters exported by stpipe as a CRDS ``reftype`` reference for NRCA1."""
    import asdf

    step.export_config(str(path), include_metadata=True)
    with asdf.open(path, mode="rw") as af:
        af.tree["meta"].update({
            "reftype": reftype, "useafter": "2022-01-01T00:00:00",
            "instrument": {"name": "NIRCAM", "detector": "NRCA1"}, "telescope": "JWST",
            "pedigree": "GROUND", "author": "jwpipe test", "origin": "STSCI"})
        af.update()


def _pars_reference(folder: Path, threshold: float) -> Path:
    """A pars-jumpstep reference written by jwst itself."""
    from jwst.jump import JumpStep

    path = folder / "jwst_nircam_pars-jumpstep_0201.asdf"
    step = JumpStep()
    step.rejection_threshold = threshold
    _export_pars(step, path, "pars-jumpstep")
    return path


@pytest.mark.slow
def test_crds_pars_file_and_command_line_in_jwst_precedence(workflow, field, tmp_path):
    from jwpipe.references.cache_writer import derive_context, install_reference, rule_from_file

    cache = field["cache"]
    installed = install_reference(cache, "NIRCAM", _pars_reference(tmp_path, 6.5))
    rule = rule_from_file(installed, ("DETECTOR",))[1]
    context = derive_context(cache, field["context"], {"NIRCAM": {"pars-jumpstep": [rule]}})
    wf = _copy(workflow, tmp_path)

    def threshold() -> float:
        unit = json.loads((wf / "units" / "jump" / f"{ROOTS[0]}.json").read_text())
        return unit["parameters"]["rejection_threshold"]

    # CRDS pars-jumpstep of the new context: the jump units (and what follows) rerun
    proc = _jwpipe("make-workflow", "--again", str(wf), CRDS_CONTEXT=context)
    assert proc.returncode == 0, proc.stderr
    assert threshold() == 6.5 and "2 written, 31 unchanged" in proc.stdout
    assert planned_jobs(wf) == DOWNSTREAM_OF_JUMP
    # the user's step parameter file beats CRDS, the command line beats both
    user = tmp_path / "jump.asdf"
    import asdf

    asdf.AsdfFile({"class": "jwst.jump.JumpStep", "name": "jump",
                   "parameters": {"rejection_threshold": 5.5}}).write_to(user)
    out = tmp_path / "wf_user"
    args = ("make-workflow", str(field["asn"]), "--engine", "jwst", "--refs", str(cache),
            "-p", str(user), "-o", str(out), "--no-pictures")
    proc = _jwpipe(*args, CRDS_CONTEXT=context)
    assert proc.returncode == 0, proc.stderr
    unit = json.loads((out / "units" / "jump" / f"{ROOTS[0]}.json").read_text())
    assert unit["parameters"]["rejection_threshold"] == 5.5
    proc = _jwpipe("make-workflow", "--again", str(out), "--steps.jump.rejection_threshold=4.5",
                   CRDS_CONTEXT=context)
    assert proc.returncode == 0, proc.stderr
    unit = json.loads((out / "units" / "jump" / f"{ROOTS[0]}.json").read_text())
    assert unit["parameters"]["rejection_threshold"] == 4.5


@pytest.mark.slow
def test_context_swapping_one_reference_reruns_its_units(workflow, field, tmp_path):
    from jwpipe.references.cache_writer import derive_context, install_reference, rule_from_file

    cache = field["cache"]
    flat = next(cache.rglob("jwst_nircam_flat_*.fits"))
    renamed = tmp_path / "jwst_nircam_flat_0301.fits"
    shutil.copy(flat, renamed)
    rule = rule_from_file(install_reference(cache, "NIRCAM", renamed))[1]
    context = derive_context(cache, field["context"], {"NIRCAM": {"flat": [rule]}})
    wf = _copy(workflow, tmp_path)
    proc = _jwpipe("make-workflow", "--again", str(wf), CRDS_CONTEXT=context)
    assert proc.returncode == 0, proc.stderr
    assert "2 written, 31 unchanged" in proc.stdout
    assert planned_jobs(wf) == {"flat_field": 2, "photom": 2, "tweakreg": 1, "skymatch": 1,
                                "outlier_detection": 1, "resample": 1, "source_catalog": 1}
    unit = json.loads((wf / "units" / "flat_field" / f"{ROOTS[0]}.json").read_text())
    assert unit["references"]["context"] == context
    assert Path(unit["references"]["files"]["flat"]).name == renamed.name


# ------------------------------------------------------------------ MIRI and NIRISS imaging
@pytest.fixture(scope="module")
def other_imagers(tmp_path_factory):
    """A MIRI and a NIRISS exposure (stdatamodels), their cache, and jwst's in-process
    Detector1 and Image2 on each."""
    from jwst_data import other_imager_cache, write_other_imager

    root = tmp_path_factory.mktemp("imagers")
    made = {inst: write_other_imager(root / inst, inst) for inst in ("MIRI", "NIRISS")}
    cache = root / "cache"
    other_imager_cache(cache, {inst: refs for inst, (_, refs) in made.items()})
    runs = {}
    for inst, (uncal, _) in made.items():
        out = root / f"inprocess-{inst}"
        proc = subprocess.run([sys.executable, str(HERE / "_run_jwst_pipelines.py"),
                               str(uncal.parent), "image2", str(out)], capture_output=True,
                              text=True, timeout=900,
                              env=_env(CRDS_PATH=str(cache), CRDS_READONLY_CACHE="1"))
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs[inst] = out
    return {"cache": cache, "uncals": {k: v[0] for k, v in made.items()}, "runs": runs}


@pytest.mark.slow
@pytest.mark.parametrize("instrument", ["MIRI", "NIRISS"])
def test_miri_and_niriss_run_detector1_and_image2_as_pipeline_call(other_imagers, instrument,
                                                                   tmp_path):
    """An image2 association of a MIRI or NIRISS exposure through Detector1 (its branch) and
    Image2 (assign_wcs, flat_field, photom on real references) equals jwst's own runs."""
    from stdatamodels.jwst import datamodels as sdm

    from jwpipe.associations import asn_from_list, write_asn
    from jwpipe.engines.jwst_stages import STAGES, jwst_stages, planned_order
    from jwpipe.workflow.generate import generate_workflow

    uncal = other_imagers["uncals"][instrument]
    root = uncal.name.removesuffix("_uncal.fits")
    asn = write_asn(asn_from_list([f"{root}_rate.fits"], asn_type="image2", product_name=root),
                    uncal.parent / f"{root}_image2_asn.json")
    wf = tmp_path / "wf"
    generate_workflow([str(asn)], wf, refs=str(other_imagers["cache"]),
                      stages=jwst_stages()[:2], engine="jwst", pictures=False)
    run = subprocess.run([sys.executable, "-m", "snakemake", "--profile", "profiles/local",
                          "--cores", "2"], cwd=wf, capture_output=True, text=True,
                         timeout=1800, env=_env())
    assert run.returncode == 0, run.stderr[-4000:]
    inproc = other_imagers["runs"][instrument]
    runs = json.loads((inproc / "steps.json").read_text())
    assert [r["pipeline"] for r in runs] == ["Detector1Pipeline", "Image2Pipeline"]
    plan = json.loads((wf / "plan.json").read_text())
    for run_, alias in zip(runs, ("calwebb_detector1", "calwebb_image2"), strict=True):
        not_planned = next(s["not_planned"] for s in STAGES if s["alias"] == alias)
        steps = [step for i, step in enumerate(run_["steps"])
                 if (i == 0 or step[0] != run_["steps"][i - 1][0]) and step[0] not in not_planned]
        assert [n for n, _ in steps] == planned_order(alias, instrument)
        assert [s["name"] for s in plan["steps"] if s["stage"] == run_["pipeline"]] == \
            [n for n, ran in steps if ran]
    if instrument == "MIRI":  # its own branch: emicorr and firstframe skipped by default
        assert {"emicorr", "reset", "rscd", "lastframe", "superbias"} & \
            {s["name"] for s in plan["steps"]} == {"reset", "rscd", "lastframe"}
    # Image2 ran for real on the references: nothing skipped, a WCS, calibrated units
    with sdm.open(str(wf / "products" / f"{root}_cal.fits")) as cal:
        done = cal.meta.cal_step
        assert (done.assign_wcs, done.flat_field, done.photom) == ("COMPLETE",) * 3
        assert cal.meta.bunit_data == "MJy/sr" and cal.meta.wcs is not None
        assert cal.dq[5, 7] & 1  # the flat's DO_NOT_USE pixel
    for suffix in ("rate", "rateints", "cal"):
        a = _arrays(inproc / f"{root}_{suffix}.fits")
        b = _arrays(wf / "products" / f"{root}_{suffix}.fits")
        assert sorted(a) == sorted(b) and "SCI" in a, (suffix, sorted(a), sorted(b))
        for name in a:
            assert a[name].dtype == b[name].dtype, (suffix, name)
            np.testing.assert_array_equal(a[name], b[name], err_msg=f"{suffix} {name}")


# ------------------------------------------------------------------------------- spec2
def steps_called(method, step_defs=None) -> list[str]:
    """The steps a method of a jwst pipeline calls (``self.<step>.run(...)``, ``<step>`` one of
    ``step_defs``, default Spec2Pipeline's), in source order, each once."""
    import ast
    import inspect
    import textwrap

    if step_defs is None:
        from jwst.pipeline import Spec2Pipeline

        step_defs = Spec2Pipeline.step_defs
    tree = ast.parse(textwrap.dedent(inspect.getsource(method)))
    calls = sorted((node.lineno, node.col_offset, node.func.value.attr)
                   for node in ast.walk(tree)
                   if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                   and node.func.attr == "run" and isinstance(node.func.value, ast.Attribute)
                   and node.func.value.attr in step_defs)
    return list(dict.fromkeys(name for *_, name in calls))


def test_spec2_order_is_the_order_jwst_spec2_source_calls():
    """jwst's Spec2 cannot run in process on tiny data without a full set of spectroscopic
    WCS references, so its stated order is checked against jwst's own source: the calls in
    ``process_exposure_product`` before the EXP_TYPE branch, and in each branch method."""
    from jwst.pipeline import Spec2Pipeline, calwebb_spec2

    from jwpipe.engines.jwst_stages import _SPEC2_BRANCHES, _SPEC2_HEAD, planned_order

    main = steps_called(Spec2Pipeline.process_exposure_product)
    assert tuple(main[:main.index("bkg_subtract") + 1]) == _SPEC2_HEAD
    methods = {"_process_grism": tuple(calwebb_spec2.GRISM_TYPES),
               "_process_nirspec_msa_slits": ("NRS_MSASPEC",),
               "_process_miri_wfss": ("MIR_WFSS",),
               # NRS_SLIT_TYPES holds NRS_MSASPEC, whose own branch is tested first
               "_process_nirspec_slits": tuple(t for t in calwebb_spec2.NRS_SLIT_TYPES
                                               if t != "NRS_MSASPEC"),
               "_process_niriss_soss": ("NIS_SOSS",), "_process_common": (None,)}
    branches = dict(_SPEC2_BRANCHES)
    assert set(branches) == set(methods.values())
    for method, types in methods.items():
        assert tuple(steps_called(getattr(Spec2Pipeline, method))) == branches[types], method
        for exp_type in types:
            assert planned_order("calwebb_spec2", exp_type) == [*_SPEC2_HEAD, *branches[types]]
    assert planned_order("calwebb_spec2", "MIR_LRS-FIXEDSLIT") == \
        planned_order("calwebb_spec2", None)


def test_spec2_side_chain_is_what_jwst_calls_after_cal():
    """The steps stated as Spec2's side chain are, in order, those
    ``process_exposure_product`` calls after the EXP_TYPE branch (photom on NIS_SOSS's
    _x1d aside: not planned); the parameters Spec2Pipeline.process sets in code on its
    steps are named in its source."""
    import inspect

    from jwst.pipeline import Spec2Pipeline

    from jwpipe.engines.jwst_stages import _SPEC2_SIDE, SPEC2_SETS, side_order

    main = steps_called(Spec2Pipeline.process_exposure_product)
    after = [n for n in main[main.index("bkg_subtract") + 1:] if n != "photom"]
    assert tuple(after) == _SPEC2_SIDE
    source = inspect.getsource(Spec2Pipeline.process)
    for step, values in SPEC2_SETS.items():
        for par, value in values.items():
            assert f"self.{step}.{par} = {value}" in source
    assert side_order("calwebb_spec2", "MIR_LRS-FIXEDSLIT") == [
        ("adaptive_trace_model", "adaptive_trace_model"), ("pixel_replace", "pixel_replace"),
        ("resample_spec", "s2d"), ("extract_1d", "x1d")]
    assert [n for n, _ in side_order("calwebb_spec2", "MIR_MRS")][2:] == \
        ["cube_build", "extract_1d"]
    assert [n for n, _ in side_order("calwebb_spec2", "NIS_SOSS")] == \
        ["adaptive_trace_model", "pixel_replace"]
    assert side_order("calwebb_image2", "NRC_IMAGE") == []


SPEC2_EXP_TYPES = ("MIR_LRS-FIXEDSLIT", "MIR_LRS-SLITLESS", "MIR_MRS", "MIR_WFSS", "NRS_IFU",
                   "NRS_FIXEDSLIT", "NRS_MSASPEC", "NRS_BRIGHTOBJ", "NRS_LAMP", "NRS_AUTOWAVE",
                   "NRS_AUTOFLAT", "NIS_SOSS", "NIS_WFSS", "NRC_WFSS", "NRC_GRISM",
                   "NRC_TSGRISM")


@pytest.mark.parametrize("exp_type", SPEC2_EXP_TYPES)
def test_spec2_steps_applied_per_exp_type_are_jwst_step_verification(exp_type):
    """The steps stated as not applying to an EXP_TYPE are those jwst's own
    ``Spec2Pipeline._step_verification`` sets ``skip`` on for a science-only exposure."""
    from collections import defaultdict

    from jwst.pipeline import Spec2Pipeline
    from stdatamodels.jwst import datamodels as sdm

    from jwpipe.engines.jwst_stages import SPEC2_APPLIES_TO

    pipe = Spec2Pipeline()
    for name in SPEC2_APPLIES_TO:
        getattr(pipe, name).skip = False
    science = sdm.ImageModel((4, 4))
    science.meta.exposure.type = exp_type
    pipe._step_verification(exp_type, science, defaultdict(list), False)
    skipped = {name for name in SPEC2_APPLIES_TO if getattr(pipe, name).skip}
    assert skipped == {name for name, types in SPEC2_APPLIES_TO.items()
                       if exp_type not in types}


def test_spec2_association_plans_one_rule_per_applicable_step(tmp_path):
    """The real spec2 association (a MIRI LRS exposure), its ``_rate`` written by
    stdatamodels, a cache naming every type N/A: a jwst-engine workflow of Spec2's rules in the
    stated order, as real Snakemake schedules them; jwpipe's engine refuses it in one line."""
    from jwst.pipeline import Spec2Pipeline
    from jwst_data import SPEC2_ROOT, spec2_cache, write_spec2_inputs

    from jwpipe.engines.jwst_stages import applicable_order

    asn = write_spec2_inputs(tmp_path / "in")
    cache = tmp_path / "cache"
    spec2_cache(cache)
    wf = tmp_path / "wf"
    proc = _jwpipe("make-workflow", str(asn), "--engine", "jwst", "--refs", str(cache),
                   "-o", str(wf), "--no-pictures")
    assert proc.returncode == 0, proc.stderr
    defaults = Spec2Pipeline()
    expected = [n for n in applicable_order("calwebb_spec2", "MIR_LRS-FIXEDSLIT")
                if not getattr(defaults, n).skip]
    assert expected == ["assign_wcs", "srctype", "flat_field", "pathloss", "photom"]
    expected += ["resample_spec", "extract_1d"]  # the side products, off the chain to _cal
    rules = [line.split()[1].rstrip(":") for line in (wf / "Snakefile").read_text().splitlines()
             if line.startswith("rule ") and not line.startswith("rule all")]
    assert rules == expected
    plan = json.loads((wf / "plan.json").read_text())
    assert [s["name"] for s in plan["steps"]] == expected
    assert {s["stage"] for s in plan["steps"]} == {"Spec2Pipeline"}
    assert planned_jobs(wf) == dict.fromkeys(expected, 1)
    unit = json.loads((wf / "units" / "photom" / f"{SPEC2_ROOT}.json").read_text())
    assert unit["class"] == "jwst.photom.photom_step.PhotomStep" and unit["engine"] == "jwst"
    assert unit["outputs"] == [{"kind": "file", "path": f"products/{SPEC2_ROOT}_cal.fits"}]
    assert unit["inputs"][0]["path"] == f"products/{SPEC2_ROOT}_pathloss.fits"
    assert set(unit["references"]["files"]) == {"photom", "area"}
    x1d = json.loads((wf / "units" / "extract_1d" / f"{SPEC2_ROOT}.json").read_text())
    assert [i["path"] for i in x1d["inputs"]] == [f"products/{SPEC2_ROOT}_s2d.fits"]
    assert [o["path"] for o in x1d["outputs"]] == [f"products/{SPEC2_ROOT}_x1d.fits"]
    s2d = json.loads((wf / "units" / "resample_spec" / f"{SPEC2_ROOT}.json").read_text())
    assert [i["path"] for i in s2d["inputs"]] == [f"products/{SPEC2_ROOT}_cal.fits"]
    assert sorted(plan["targets"]) == [f"products/{SPEC2_ROOT}_{s}.fits"
                                       for s in ("cal", "s2d", "x1d")]
    proc = _jwpipe("make-workflow", str(asn), "--refs", str(cache), "-o", str(tmp_path / "x"))
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1
    assert "plan it with --engine jwst" in proc.stderr and "Traceback" not in proc.stderr


def test_one_jwst_workflow_holds_imaging_or_spectroscopy():
    from jwst_data import SPEC2_ASN

    from jwpipe.associations import load_asn
    from jwpipe.associations.types import UnsupportedAssociationError
    from jwpipe.engines.jwst_stages import chain_for, jwst_stages
    from jwpipe.workflow.plan import stage_for_association

    image2 = SPEC2_ASN.with_name("jw80600_20171108T041522_pool-o006_image2_001_asn.json")
    assert chain_for([SPEC2_ASN]) == "spectroscopy"
    assert chain_for([SPEC2_ASN, image2]) == chain_for([image2]) == "imaging"
    spectroscopy, imaging = jwst_stages("spectroscopy"), jwst_stages("imaging")
    assert [s.class_alias for s in spectroscopy] == ["calwebb_detector1", "calwebb_spec2",
                                                     "calwebb_spec3"]
    assert stage_for_association(load_asn(SPEC2_ASN), spectroscopy) == 1
    assert stage_for_association(load_asn(image2), imaging) == 1
    for asn, stages in ((SPEC2_ASN, imaging), (image2, spectroscopy)):
        with pytest.raises(UnsupportedAssociationError, match="make one for each"):
            stage_for_association(load_asn(asn), stages)


# ------------------------------------------------------------- catalog layout, kill + resume
@pytest.mark.slow
def test_catalog_layout_with_engine_jwst_plans_the_jwst_jobs(field, tmp_path):
    """``engine: jwst`` in config/config.yaml, through workflow/Snakefile (dry run), with a
    user's stpipe steps inserted by the config: ``insert_after`` (in Image3) and a jwst
    pipeline file in ``parameter_files`` whose entry inserts one after jump."""
    import asdf
    import yaml

    repo = HERE.parents[1]
    (tmp_path / "config").mkdir()
    asdf.AsdfFile({"class": "jwst.pipeline.Detector1Pipeline", "name": "Detector1Pipeline",
                   "parameters": {}, "steps": [
                       {"class": "column_median_clean", "name": "clean_cols",
                        "insert_after": "jump", "parameters": {"fraction": 0.75}}]}
                  ).write_to(tmp_path / "config" / "detector1.asdf")
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump({
        "associations": [str(field["asn"])], "refs": str(field["cache"]),
        "workdir": "catalog", "engine": "jwst",
        "parameter_files": ["config/detector1.asdf"],
        "insert_after": ["tweakreg=member_offset"]}))
    dry = subprocess.run([sys.executable, "-m", "snakemake", "-s",
                          str(repo / "workflow" / "Snakefile"), "-n", "--cores", "1"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=900,
                         env=_env(**_user_env()))
    assert dry.returncode == 0, dry.stderr[-3000:]
    detector1 = ("group_scale", "dq_init", "saturation", "ipc", "superbias", "refpix",
                 "linearity", "dark_current")
    catalog = tmp_path / "catalog"
    assert planned_jobs(catalog) == {
        **{step: 2 for step in detector1}, **DOWNSTREAM_OF_JUMP, "clean_cols": 2,
        "member_offset": 1}
    unit = json.loads((catalog / "units" / "jump" / f"{ROOTS[0]}.json").read_text())
    assert unit["engine"] == "jwst" and unit["class"] == "jwst.jump.jump_step.JumpStep"
    clean = json.loads((catalog / "units" / "clean_cols" / f"{ROOTS[0]}.json").read_text())
    assert clean["parameters"]["fraction"] == 0.75
    assert clean["inputs"][0]["path"] == unit["outputs"][0]["path"]
    offset = json.loads((catalog / "units" / "member_offset" / f"{PRODUCT}.json").read_text())
    assert offset["call"] == "members" and offset["class"] == "stcleanpkg.MemberOffsetStep"
    assert (catalog / "params" / "pipeline_files" / "detector1.asdf").is_file()


def _records(wf: Path) -> dict[str, int]:
    return {str(p.relative_to(wf)): p.stat().st_mtime_ns for p in (wf / "state").rglob("*.json")}


def _wait_for(predicate, timeout: float):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("timed out")


@pytest.mark.slow
def test_kills_while_jwst_jobs_run_then_resume(field, in_process, tmp_path):
    """Detector1 of one exposure: Snakemake's process group killed while a jwst job runs,
    then Snakemake alone (its jwst job orphaned); ``jwpipe resume`` ends the orphan, redoes
    only the unfinished jobs, and the products are ``Detector1Pipeline.call``'s."""
    import signal

    from jwpipe.associations import asn_from_list, write_asn
    from jwpipe.engines.jwst_stages import jwst_stages
    from jwpipe.workflow.generate import generate_workflow
    from jwpipe.workflow.resume import live_snakemake_pids

    root = ROOTS[0]
    asn = write_asn(asn_from_list([f"{root}_rate.fits"], asn_type="image2", product_name=root),
                    tmp_path / f"{root}_image2_asn.json")
    wf = tmp_path / "wf"
    generate_workflow([str(asn)], wf, input_dir=str(field["inputs"]), refs=str(field["cache"]),
                      stages=jwst_stages()[:1], engine="jwst", pictures=False)
    total = sum(planned_jobs(wf).values())
    finished: dict[str, int] = {}
    for how, after in (("group", 2), ("snakemake", 5)):
        proc = subprocess.Popen([sys.executable, "-m", "jwpipe", "resume", ".", "--cores", "1"],
                                cwd=wf, env=_env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        # a kill while a job runs: `after` records written and the next job started
        _wait_for(lambda n=after: len(_records(wf)) >= n, timeout=600)
        _wait_for(lambda: list((wf / ".jwpipe" / "jobs").glob("*.json")), timeout=120)
        if how == "group":
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            os.kill(proc.pid, signal.SIGKILL)
            for pid in live_snakemake_pids(wf):
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=60)
        _wait_for(lambda: not live_snakemake_pids(wf), timeout=60)
        from stdatamodels.jwst import datamodels as sdm

        for path in (wf / "products").glob("*.fits"):  # nothing partial under a final name
            if not path.name.startswith("."):
                sdm.open(str(path)).close()
        # a finished job is never redone
        now = _records(wf)
        assert {k: now[k] for k in finished} == finished
        finished = now
    assert 0 < len(finished) < total
    final = _jwpipe("resume", ".", "--cores", "1", cwd=wf)
    assert final.returncode == 0, final.stderr[-3000:]
    now = _records(wf)
    assert len(now) == total and {k: now[k] for k in finished} == finished
    assert not [p for p in (wf / "products").rglob(".*")], "temporaries left"
    for suffix in ("rate", "rateints"):
        a = _arrays(in_process / f"{root}_{suffix}.fits")
        b = _arrays(wf / "products" / f"{root}_{suffix}.fits")
        assert sorted(a) == sorted(b) and "SCI" in a
        for name in a:
            np.testing.assert_array_equal(a[name], b[name], err_msg=f"{suffix} {name}")
    assert planned_jobs(wf) == {}
    verify = _jwpipe("verify", ".", cwd=wf)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_jwpipe_step_inserted_into_a_jwst_workflow_is_refused(tmp_path, capsys):
    from jwpipe.cli.main import main

    step_file = tmp_path / "clean.yaml"
    step_file.write_text("class: jwpipe.steps.SaturationStep\ninsert_after: jump\n")
    for args, says in (
            (["--insert-after", "jump=jwpipe.steps.SaturationStep"], "is a jwpipe Step"),
            (["-p", str(step_file)], "is a jwpipe Step"),
            (["--insert-after", "jump=mylab.CleanStep"], "JWPIPE_ALLOW_IMPORT=yourpackage")):
        rc = main(["make-workflow", str(tmp_path / "x_asn.json"), "--engine", "jwst", *args,
                   "-o", str(tmp_path / "wf")])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 1 and len(err) == 1, err
        assert says in err[0], err
        assert not (tmp_path / "wf").exists()


#: A user's stpipe step (a JwstStep subclass) in an installed-looking package: its dist-info
#: registers it through stpipe's ``stpipe.steps`` entry point.
USER_SITE = HERE / "stcleanpkg-site"


def _user_env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join([str(USER_SITE), os.environ.get("PYTHONPATH", "")])
    return {"PYTHONPATH": path, **extra}


@pytest.mark.slow
def test_user_stpipe_step_inserted_after_jump_runs_as_its_own_rule(workflow, field,
                                                                   tmp_path):
    from stdatamodels.jwst import datamodels

    wf = _copy(workflow, tmp_path)
    proc = _jwpipe("make-workflow", "--again", str(wf), "--insert-after",
                   "jump=stcleanpkg.ColumnMedianCleanStep",
                   **_user_env(JWPIPE_ALLOW_IMPORT="stcleanpkg"))
    assert proc.returncode == 0, proc.stderr
    units = {p.stem: json.loads(p.read_text())
             for p in (wf / "units" / "column_median_clean").glob("*.json")}
    assert sorted(units) == sorted(ROOTS)
    unit = units[ROOTS[0]]
    assert unit["class"] == "stcleanpkg.ColumnMedianCleanStep"
    assert unit["parameters"]["fraction"] == 1.0  # the spec default, resolved by stpipe
    assert unit["jwst"]["inserted_class"] == "stcleanpkg.ColumnMedianCleanStep"
    cleaned = f"products/{ROOTS[0]}_column_median_clean.fits"
    assert [i["path"] for i in unit["inputs"]] == [f"products/{ROOTS[0]}_jump.fits"]
    assert [o["path"] for o in unit["outputs"]] == [cleaned]
    ramp_fit = json.loads((wf / "units" / "ramp_fit" / f"{ROOTS[0]}.json").read_text())
    assert [i["path"] for i in ramp_fit["inputs"]] == [cleaned]
    # its own rule between jump and ramp_fit: it and what follows, not jump, are to run
    assert planned_jobs(wf) == {**{k: v for k, v in DOWNSTREAM_OF_JUMP.items()
                                   if k != "jump"}, "column_median_clean": 2}

    target = ramp_fit["outputs"][0]["path"]
    run = subprocess.run([sys.executable, "-m", "snakemake", "--profile", "profiles/local",
                          "--cores", "2", target], cwd=wf, capture_output=True, text=True,
                         timeout=900, env=_env(**_user_env()))
    assert run.returncode == 0, run.stderr[-4000:]
    with datamodels.RampModel(str(wf / f"products/{ROOTS[0]}_jump.fits")) as jump, \
            datamodels.RampModel(str(wf / cleaned)) as out:
        expected = jump.data - np.median(jump.data, axis=-2, keepdims=True)
        np.testing.assert_allclose(out.data, expected, rtol=0, atol=1e-5)
        assert np.abs(np.median(out.data, axis=-2)).max() < 1e-3
        assert out.instance["jwpipe_run_step"]["class"] == "stcleanpkg.ColumnMedianCleanStep"
    assert (wf / target).exists()

    # its parameter changed: only its unit files change; it and what follows rerun
    again = _jwpipe("make-workflow", "--again", str(wf),
                    "--steps.column_median_clean.fraction=0.5",
                    **_user_env(JWPIPE_ALLOW_IMPORT="stcleanpkg"))
    assert again.returncode == 0, again.stderr
    assert "unit files: 2 written," in again.stdout, again.stdout
    assert json.loads((wf / "units" / "column_median_clean" / f"{ROOTS[0]}.json")
                      .read_text())["parameters"]["fraction"] == 0.5
    assert planned_jobs(wf) == {**{k: v for k, v in DOWNSTREAM_OF_JUMP.items()
                                   if k != "jump"}, "column_median_clean": 2}

    # the stpipe.steps entry point's alias plans the same step, with no allow-list
    alias = _jwpipe("make-workflow", str(field["asn"]), "--engine", "jwst", "--refs",
                    str(field["cache"]), "-o", str(tmp_path / "alias"), "--no-pictures",
                    "--insert-after", "jump=column_median_clean", **_user_env())
    assert alias.returncode == 0, alias.stderr
    by_alias = json.loads((tmp_path / "alias" / "units" / "column_median_clean" /
                           f"{ROOTS[0]}.json").read_text())
    assert by_alias["class"] == unit["class"] and by_alias["parameters"] == unit["parameters"]

    # a step-level parameter file (YAML, read by jwpipe's loader) with insert_after
    step_file = tmp_path / "clean.yaml"
    step_file.write_text("class: stcleanpkg.ColumnMedianCleanStep\ninsert_after: jump\n"
                         "parameters:\n  fraction: 0.25\n")
    by_file = _jwpipe("make-workflow", str(field["asn"]), "--engine", "jwst", "--refs",
                      str(field["cache"]), "-o", str(tmp_path / "byfile"), "--no-pictures",
                      "-p", str(step_file), **_user_env(JWPIPE_ALLOW_IMPORT="stcleanpkg"))
    assert by_file.returncode == 0, by_file.stderr
    from_file = json.loads((tmp_path / "byfile" / "units" / "column_median_clean" /
                            f"{ROOTS[0]}.json").read_text())
    assert from_file["class"] == unit["class"] and from_file["parameters"]["fraction"] == 0.25


def _snakemake(wf: Path, *targets: str) -> None:
    run = subprocess.run([sys.executable, "-m", "snakemake", "--profile", "profiles/local",
                          "--cores", "2", *targets], cwd=wf, capture_output=True, text=True,
                         timeout=900, env=_env(**_user_env()))
    assert run.returncode == 0, run.stderr[-4000:]


def _unit(wf: Path, step: str, key: str) -> dict:
    return json.loads((wf / "units" / step / f"{key}.json").read_text())


@pytest.mark.slow
def test_user_stpipe_steps_in_image3_between_stages_from_a_pipeline_file_and_crds(
        workflow, field, tmp_path):
    """On a copy of the finished workflow, one insertion at a time (each runs only its own
    jobs, its input being up to date): a members step inside Image3 after tweakreg (it gets
    the association's members as one ModelLibrary, as skymatch does); a step between Detector1
    and Image2 (on each ``_rate`` and ``_rateints``); its CRDS ``pars-*`` reference, whose new
    context rewrites exactly its units; an ``insert_after`` entry of a jwst pipeline file (a
    filtered copy goes to stpipe, the user's file untouched)."""
    import asdf
    from stdatamodels.jwst import datamodels

    from jwpipe.references.cache_writer import derive_context, install_reference, rule_from_file

    wf = _copy(workflow, tmp_path)
    allow = _user_env()
    # Image3, after tweakreg: the members, as a ModelLibrary; skymatch reads its directory
    proc = _jwpipe("make-workflow", "--again", str(wf), "--insert-after",
                   "tweakreg=member_offset", **allow)
    assert proc.returncode == 0, proc.stderr
    unit = _unit(wf, "member_offset", PRODUCT)
    assert unit["class"] == "stcleanpkg.MemberOffsetStep" and unit["call"] == "members"
    assert unit["parameters"]["offset"] == 0.5
    assert unit["outputs"][0]["path"] == f"products/{PRODUCT}.member_offset"
    assert _unit(wf, "skymatch", PRODUCT)["inputs"][0]["path"] == unit["outputs"][0]["path"]
    assert planned_jobs(wf) == {"member_offset": 1, "skymatch": 1, "outlier_detection": 1,
                                "resample": 1, "source_catalog": 1}
    _snakemake(wf, f"products/{PRODUCT}.skymatch")
    for root in ROOTS:
        with datamodels.open(str(wf / f"products/{PRODUCT}.tweakreg/{root}_tweakreg.fits")) as a, \
                datamodels.open(str(wf / f"products/{PRODUCT}.member_offset/"
                                     f"{root}_member_offset.fits")) as b:
            np.testing.assert_array_equal(b.data, a.data - np.float32(0.5))
    # between Detector1 and Image2: each of _rate and _rateints; Image2 reads the cleaned _rate
    proc = _jwpipe("make-workflow", "--again", str(wf), "--insert-after",
                   "detector1=column_median_clean", **allow)
    assert proc.returncode == 0, proc.stderr
    root = ROOTS[0]
    unit = _unit(wf, "column_median_clean", root)
    assert [i["path"] for i in unit["inputs"]] == [f"products/{root}_rate.fits",
                                                  f"products/{root}_rateints.fits"]
    cleaned = [o["path"] for o in unit["outputs"]]
    assert cleaned == [f"products/{root}_column_median_clean.fits",
                       f"products/{root}_column_median_clean_rateints.fits"]
    assert [i["path"] for i in _unit(wf, "assign_wcs", root)["inputs"]] == cleaned[:1]
    _snakemake(wf, *cleaned)
    for product, made in zip(("rate", "rateints"), cleaned, strict=True):
        with datamodels.open(str(wf / f"products/{root}_{product}.fits")) as a, \
                datamodels.open(str(wf / made)) as b:
            expected = a.data - np.median(a.data, axis=-2, keepdims=True)
            np.testing.assert_allclose(b.data, expected, rtol=0, atol=1e-5)
    # its CRDS pars-columnmediancleanstep (written by stpipe itself): a context selecting it
    # rewrites exactly its two units (spec 1.0 -> CRDS 0.6)
    ref = tmp_path / "jwst_nircam_pars-columnmediancleanstep_0001.asdf"
    _user_step_pars(ref, 0.6)
    installed = install_reference(field["cache"], "NIRCAM", ref)
    rule = rule_from_file(installed, ("DETECTOR",))[1]
    context = derive_context(field["cache"], field["context"],
                             {"NIRCAM": {"pars-columnmediancleanstep": [rule]}})
    before = {p: p.read_text() for p in (wf / "units").rglob("*.json")}
    proc = _jwpipe("make-workflow", "--again", str(wf), CRDS_CONTEXT=context, **allow)
    assert proc.returncode == 0, proc.stderr
    changed = sorted(str(p.relative_to(wf)) for p, text in before.items()
                     if p.read_text() != text)
    assert changed == [f"units/column_median_clean/{r}.json" for r in ROOTS]
    assert _unit(wf, "column_median_clean", root)["parameters"]["fraction"] == 0.6
    # a jwst pipeline file inserting a step after jump (an entry with insert_after) and
    # configuring one of Detector1's own steps; --steps beats CRDS and the file
    pipe = tmp_path / "pipe.asdf"
    asdf.AsdfFile({"class": "jwst.pipeline.Detector1Pipeline", "name": "Detector1Pipeline",
                   "parameters": {}, "steps": [
                       {"class": "column_median_clean", "name": "clean_cols",
                        "insert_after": "jump", "parameters": {"fraction": 0.75}},
                       {"class": "jwst.ramp_fitting.RampFitStep", "name": "ramp_fit",
                        "parameters": {"suppress_one_group": False}}]}).write_to(pipe)
    original = pipe.read_bytes()
    proc = _jwpipe("make-workflow", str(field["asn"]), "--engine", "jwst", "--refs",
                   str(field["cache"]), "-o", str(wf), "--no-pictures", "-p", str(pipe),
                   "--insert-after", "tweakreg=member_offset", "--insert-after",
                   "detector1=column_median_clean", "--steps.column_median_clean.fraction=0.3",
                   CRDS_CONTEXT=context, **allow)
    assert proc.returncode == 0, proc.stderr
    assert pipe.read_bytes() == original
    unit = _unit(wf, "clean_cols", root)
    assert unit["class"] == "stcleanpkg.ColumnMedianCleanStep"
    assert unit["parameters"]["fraction"] == 0.75  # the file's entry beats CRDS's 0.6
    assert [i["path"] for i in unit["inputs"]] == [f"products/{root}_jump.fits"]
    assert _unit(wf, "ramp_fit", root)["parameters"]["suppress_one_group"] is False
    assert _unit(wf, "column_median_clean", root)["parameters"]["fraction"] == 0.3
    with asdf.open(wf / "params" / "pipeline_files" / "pipe.asdf") as af:
        assert [s["name"] for s in af.tree["steps"]] == ["ramp_fit"]
    _snakemake(wf, *[f"products/{r}_clean_cols.fits" for r in ROOTS])
    with datamodels.RampModel(str(wf / f"products/{root}_jump.fits")) as a, \
            datamodels.RampModel(str(wf / f"products/{root}_clean_cols.fits")) as b:
        expected = a.data - np.float32(0.75) * np.median(a.data, axis=-2, keepdims=True)
        np.testing.assert_allclose(b.data, expected, rtol=0, atol=1e-5)


def _user_step_pars(path: Path, fraction: float) -> None:
    """A pars-columnmediancleanstep reference, exported by stpipe from the user's step."""
    sys.path.insert(0, str(USER_SITE))
    try:
        from stcleanpkg import ColumnMedianCleanStep
    finally:
        sys.path.remove(str(USER_SITE))
    step = ColumnMedianCleanStep()
    step.fraction = fraction
    _export_pars(step, path, "pars-columnmediancleanstep")
