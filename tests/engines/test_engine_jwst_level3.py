"""``--engine jwst`` for coronagraphy, time series and AMI level 3 (coron3, tso3, ami3).

jwst's Coron3, Tso3 and Ami3 pipelines pass models between their steps in code; the planner
reads that data flow as data (``LEVEL3_FLOW_STAGES``). On stdatamodels-written ``_calints``
members and a test CRDS cache holding stdatamodels-written references, coron3 and imaging
tso3 workflows run through real Snakemake and every product's data arrays (and the
photometry table's columns) are those of jwst's own ``Pipeline.call`` on the same inputs; the
planned order is the order that run calls its steps. ami3 (NIS_AMI SUB80 members with the
mask's fringes, stdatamodels-written NRM and THROUGHPUT references) runs the same way to its
OIFITS products, every table column and array that of ``Ami3Pipeline.call``.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "workflow"))

from test_engine_jwst import _arrays, _env, _jwpipe, steps_called  # noqa: E402
from wfhelpers import planned_jobs, within_requests  # noqa: E402

jwst = pytest.importorskip("jwst")


def _planned(made: dict, wf: Path, *options: str) -> dict:
    """``make-workflow --engine jwst`` of the association ``made`` into ``wf``; its plan."""
    proc = _jwpipe("make-workflow", str(made["asn"]), "--engine", "jwst", "--refs",
                   str(made["cache"]), "-o", str(wf), "--no-pictures", *options)
    assert proc.returncode == 0, proc.stderr
    return json.loads((wf / "plan.json").read_text())


def _stages(plan: dict) -> list[str]:
    """The stages a plan's rules belong to, in order."""
    return list(dict.fromkeys(s["stage"] for s in plan["steps"]))


def _calls(pipeline: type) -> list[str]:
    """The steps ``pipeline.process`` calls, in source order, each once."""
    return steps_called(pipeline.process, pipeline.step_defs)


# ------------------------------------------------------------------------------- fast
def test_level3_orders_and_flows_are_jwst_source():
    from jwst.pipeline import Ami3Pipeline, Coron3Pipeline, Tso3Pipeline

    from jwpipe.engines.jwst_stages import LEVEL3_FLOW_STAGES, planned_order

    for pipeline in (Coron3Pipeline, Tso3Pipeline, Ami3Pipeline):
        info = next(i for i in LEVEL3_FLOW_STAGES if i["alias"] == pipeline.class_alias)
        # every branch's steps (tso3: imaging, then spectroscopic), in source order
        planned = list(dict.fromkeys(n for names in info["order"].values() for n in names))
        called = _calls(pipeline)
        # tso3: NIS_SOSS's photom on its extractions is listed as not planned
        assert [n for n in called if n not in info["not_planned"]] == planned, \
            pipeline.__name__
        assert all(planned_order(info["alias"], m) == [n for n in planned if n in names]
                   for m, names in info["order"].items())
        assert list(info["flow"]) == planned
        assert set(pipeline.step_defs) == set(planned) | set(info["not_planned"])
        for name, flow in info["flow"].items():  # one argument per parameter of process()
            params = inspect.signature(pipeline.step_defs[name].process).parameters
            assert len(flow["args"]) == len(params) - 1, name
        for name, values in info["sets"].items():
            assert set(values) <= set(pipeline.step_defs[name]().get_pars())
    # every step's memory measured in its pipeline is one the planner reads (no silent default)
    from jwpipe.engines.jwst_stages import LEVEL3_FLOW_STAGES as stages
    from jwpipe.engines.jwst_stages import MEASURED_MEMORY, pipeline_class

    for key in (k for k in MEASURED_MEMORY if "." in k):  # a step of that pipeline
        alias, _, step = key.partition(".")
        assert step in pipeline_class(alias).step_defs, key
    per_stage = {k for k in MEASURED_MEMORY if k.split(".")[0] in {i["alias"] for i in stages}}
    # tso3's spectral branch is not measured on large cubes yet (docs/engines.md): the default
    not_measured = {f"calwebb_tso3.{n}" for n in
                    ("adaptive_trace_model", "pixel_replace", "extract_1d", "white_light")}
    assert per_stage == {f"{i['alias']}.{n}" for i in stages for n in i["flow"]} - not_measured


def test_jwpipe_engine_refuses_coron3_naming_engine_jwst(tmp_path):
    from jwst_level3_data import CORON_ASN

    proc = _jwpipe("make-workflow", str(CORON_ASN), "-o", str(tmp_path / "wf"))
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "plan it with --engine jwst" in proc.stderr and "calwebb_coron3" in proc.stderr
    assert not (tmp_path / "wf").exists()


def test_coron3_without_psf_star_or_skipping_a_needed_step_is_refused(tmp_path):
    from jwst_level3_data import write_coron3

    made = write_coron3(tmp_path / "in")
    asn = json.loads(made["asn"].read_text())
    asn["products"][0]["members"] = [m for m in asn["products"][0]["members"]
                                     if m["exptype"] == "science"]
    nopsf = made["inputs"] / "nopsf_coron3_asn.json"
    nopsf.write_text(json.dumps(asn))
    for path, extra, said in ((nopsf, [], "has no psf member"),
                              (made["asn"], ["--steps.stack_refs.skip=true"],
                               "needs the output of 'stack_refs'")):
        proc = _jwpipe("make-workflow", str(path), "--engine", "jwst", "--refs",
                       str(made["cache"]), "-o", str(tmp_path / "wf"), *extra)
        assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert said in proc.stderr and not (tmp_path / "wf").exists()


def test_ami3_plans_a_rule_per_step_pairing_targets_with_psf_stars(tmp_path):
    """The real ami3 association, its second member made a PSF reference star, its members
    written by stdatamodels: ami_analyze on every member (its three products), ami_normalize
    on the target with the star, as jwst pairs them; a real Snakemake dry run schedules it."""
    from jwst.pipeline import Ami3Pipeline
    from jwst_level3_data import write_ami3

    made = write_ami3(tmp_path / "in")
    wf = tmp_path / "wf"
    plan = _planned(made, wf)
    assert [s["name"] for s in plan["steps"]] == _calls(Ami3Pipeline)
    assert planned_jobs(wf) == {"ami_analyze": 2, "ami_normalize": 1}
    target, star = made["roots"]
    unit = json.loads((wf / "units" / "ami_analyze" / f"{star}.json").read_text())
    assert [o["path"] for o in unit["outputs"]] == [
        f"products/{star}_{s}.fits" for s in ("ami-oi", "amimulti-oi", "amilg")]
    assert set(unit["references"]["files"]) == {"throughput", "nrm"}
    unit = json.loads((wf / "units" / "ami_normalize" / f"{target}.json").read_text())
    assert [i["path"] for i in unit["inputs"]] == [f"products/{target}_ami-oi.fits",
                                                   f"products/{star}_ami-oi.fits"]
    assert unit["outputs"] == [{"kind": "file",
                                "path": f"products/{target}_aminorm-oi.fits"}]
    # ami_normalize reads two small tables: its measured request, whatever the member's size
    assert plan["units"]["ami_normalize"][target]["mem_mb"] == int(1.25 * 149)
    # steps per member and per product cannot be one job per exposure: one line, nothing made
    proc = _jwpipe("make-workflow", str(made["asn"]), "--engine", "jwst", "--refs",
                   str(made["cache"]), "-o", str(tmp_path / "staged"), "--no-pictures",
                   "--granularity", "stage")
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "use --granularity step" in proc.stderr and not (tmp_path / "staged").exists()


# ------------------------------------------------------------------------------- end to end
def _run_both(made: dict, pipeline: str, root: Path, steps: dict | None = None,
              start: str = "") -> tuple[Path, Path]:
    """jwst's own ``Pipeline.call`` and the jwst-engine workflow run by real Snakemake, both
    with the step parameters ``steps`` (``{step: {parameter: value}}``); ``start="rateints"``:
    Image2 first, on the members' ``_rateints``."""
    steps = steps or {}
    inproc = root / "inproc"
    proc = subprocess.run([sys.executable, str(HERE / "_run_jwst_level3.py"), pipeline,
                           str(made["asn"]), str(inproc), json.dumps(steps), start],
                          capture_output=True, text=True,
                          timeout=600, cwd=HERE,
                          env=_env(CRDS_PATH=str(made["cache"]), CRDS_READONLY_CACHE="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    wf = root / "wf"
    _planned(made, wf, *(f"--steps.{step}.{par}={value}" for step, pars in steps.items()
                         for par, value in pars.items() if par != "save_results"))
    run = subprocess.run([sys.executable, "-m", "snakemake", "--profile", "profiles/local",
                          "--cores", "2"], cwd=wf, capture_output=True, text=True,
                         timeout=900, env=_env())
    assert run.returncode == 0, run.stderr[-4000:]
    return inproc, wf


def _same_arrays(theirs: Path, ours: Path) -> None:
    a, b = _arrays(theirs), _arrays(ours)
    assert sorted(a) == sorted(b) and len(a) >= 3, (ours.name, sorted(a), sorted(b))
    for name in a:
        assert a[name].dtype == b[name].dtype, (ours.name, name)
        np.testing.assert_array_equal(a[name], b[name], err_msg=f"{ours.name} {name}")


def _order_checks(inproc: Path, wf: Path, alias: str, mode: str | None = None) -> None:
    from jwpipe.engines.jwst_stages import planned_order

    steps = json.loads((inproc / "steps.json").read_text())
    assert all(ran for _, ran in steps)
    called = list(dict.fromkeys(name for name, _ in steps))
    plan = json.loads((wf / "plan.json").read_text())
    assert called == planned_order(alias, mode) == [s["name"] for s in plan["steps"]]
    within_requests(wf)


@pytest.mark.slow
def test_tso3_imaging_workflow_is_pipeline_call(tmp_path):
    from astropy.table import Table
    from jwst_level3_data import TSO_PRODUCT, TSO_ROOTS, write_tso3

    made = write_tso3(tmp_path / "data")
    inproc, wf = _run_both(made, "Tso3Pipeline", tmp_path)
    _order_checks(inproc, wf, "calwebb_tso3", "NRC_TSIMAGE")
    assert planned_jobs(wf) == {}
    for root in TSO_ROOTS:  # jwst adds the association id to member products' names
        _same_arrays(inproc / f"{root}_o002_crfints.fits",
                     wf / "products" / f"{root}_crfints.fits")
    theirs = Table.read(inproc / f"{TSO_PRODUCT}_phot.ecsv")
    ours = Table.read(wf / "products" / f"{TSO_PRODUCT}_phot.ecsv")
    assert len(theirs) == 12 and theirs.colnames == ours.colnames
    for column in theirs.colnames:
        assert [str(v) for v in theirs[column]] == [str(v) for v in ours[column]], column
    assert ours.meta["number_of_integrations"] == 12
    unit = json.loads((wf / "units" / "tso_photometry" / f"{TSO_PRODUCT}.json").read_text())
    assert set(unit["references"]["files"]) == {"gain"}
    assert unit["references"]["files"]["gain"].endswith("jwst_nircam_gain_0001.fits")


@pytest.mark.slow
def test_coron3_workflow_is_pipeline_call(tmp_path):
    from astropy.io import fits
    from jwst_level3_data import write_coron3

    made = write_coron3(tmp_path / "data")
    inproc, wf = _run_both(made, "Coron3Pipeline", tmp_path)
    _order_checks(inproc, wf, "calwebb_coron3")
    science = [r for r in made["roots"] if r != made["roots"][1]]  # the second is the PSF star
    assert planned_jobs(wf) == {}
    plan = json.loads((wf / "plan.json").read_text())
    counts = {s["name"]: len(plan["units"][s["name"]]) for s in plan["steps"]}
    assert counts == {"outlier_detection": 3, "stack_refs": 1, "align_refs": 2, "klip": 2,
                      "resample": 1}
    product = made["product"]
    pairs = [(f"{product}_{s}.fits", f"{product}_{s}.fits") for s in ("psfstack", "i2d")]
    pairs += [(f"{r}_c1000_crfints.fits", f"{r}_crfints.fits") for r in made["roots"]]
    pairs += [(f"{r}_c1000_{s}.fits", f"{r}_{s}.fits") for r in science
              for s in ("psfalign", "psfsub")]
    for theirs, ours in pairs:
        _same_arrays(inproc / theirs, wf / "products" / ours)
        assert fits.getval(wf / "products" / ours, "FILENAME") == ours
    # the science members' headers blended into the mosaic's, as jwst blends them
    theirs = fits.getdata(inproc / f"{product}_i2d.fits", "HDRTAB")
    ours = fits.getdata(wf / "products" / f"{product}_i2d.fits", "HDRTAB")
    assert theirs.columns.names == ours.columns.names and len(ours) == 2
    for column in theirs.columns.names:
        assert [str(v) for v in theirs[column]] == [str(v) for v in ours[column]], column
    unit = json.loads((wf / "units" / "align_refs" / f"{science[0]}.json").read_text())
    assert [i["path"] for i in unit["inputs"]] == [f"products/{science[0]}_crfints.fits",
                                                   f"products/{product}_psfstack.fits"]
    assert unit["references"]["files"]["psfmask"].endswith("jwst_nircam_psfmask_0001.fits")
    assert json.loads((wf / "units" / "resample" / f"{product}.json").read_text()
                      )["parameters"]["blendheaders"] is False


def _hdus(path: Path) -> dict:
    """Every HDU but the ASDF tree (its times and file names differ): image arrays, and
    tables as their columns."""
    from astropy.io import fits

    with fits.open(path) as hdul:
        return {h.name: ({c: np.asarray(h.data[c]) for c in h.columns.names}
                         if isinstance(h, fits.BinTableHDU) else np.asarray(h.data))
                for h in hdul if h.name != "ASDF" and h.data is not None}


@pytest.mark.slow
def test_ami3_workflow_is_pipeline_call(tmp_path):
    """ami_analyze on the target and the PSF star, ami_normalize on the pair: the OIFITS
    products (every table column, the fit images) are those of ``Ami3Pipeline.call``. jwst
    names the star's oi product ``_psf-ami-oi`` and, when ami_analyze's results are saved,
    writes each member's ``_amimulti-oi``/``_amilg`` under the product name (the star's, the
    last one analysed, is what stays), and ``_aminorm-oi`` under the product name too; the
    workflow names every product by its member."""
    from jwst_level3_data import write_ami3

    made = write_ami3(tmp_path / "data")
    inproc, wf = _run_both(made, "Ami3Pipeline", tmp_path,
                           {"ami_analyze": {"oversample": 1, "save_results": True}})
    _order_checks(inproc, wf, "calwebb_ami3")
    assert planned_jobs(wf) == {}
    target, star = made["roots"]
    product = made["product"]
    pairs = [(f"{target}_o027_ami-oi.fits", f"{target}_ami-oi.fits"),
             (f"{star}_o027_psf-ami-oi.fits", f"{star}_ami-oi.fits"),
             (f"{product}_amimulti-oi.fits", f"{star}_amimulti-oi.fits"),
             (f"{product}_amilg.fits", f"{star}_amilg.fits"),
             (f"{product}_aminorm-oi.fits", f"{target}_aminorm-oi.fits")]
    names = {"OI_ARRAY", "OI_TARGET", "OI_T3", "OI_VIS", "OI_VIS2", "OI_WAVELENGTH"}
    for theirs, ours in pairs:
        a, b = _hdus(inproc / theirs), _hdus(wf / "products" / ours)
        assert list(a) == list(b), ours
        assert names <= set(a) or {"CTRD", "FIT", "RESID", "SOLNS"} <= set(a), (ours, list(a))
        for hdu, value in a.items():
            columns = value if isinstance(value, dict) else {"": value}
            other = b[hdu] if isinstance(value, dict) else {"": b[hdu]}
            assert list(columns) == list(other), (ours, hdu)
            for column, array in columns.items():
                assert array.dtype == other[column].dtype, (ours, hdu, column)
                np.testing.assert_array_equal(array, other[column],
                                              err_msg=f"{ours} {hdu} {column}")
    # the fit found fringes: normalised squared visibilities, finite and positive
    vis2 = _hdus(wf / "products" / f"{target}_aminorm-oi.fits")["OI_VIS2"]["VIS2DATA"]
    assert vis2.shape == (21,) and np.all(np.isfinite(vis2)) and np.all(vis2 > 0)
    unit = json.loads((wf / "units" / "ami_analyze" / f"{target}.json").read_text())
    assert unit["parameters"]["oversample"] == 1
    assert unit["references"]["files"]["nrm"].endswith("jwst_niriss_nrm_0001.fits")
    assert unit["references"]["files"]["throughput"].endswith(
        "jwst_niriss_throughput_0001.fits")


@pytest.mark.slow
def test_ami3_from_rateints_walks_back_through_image2(tmp_path):
    """Members present only as ``_rateints``: the workflow runs jwst's Image2 on them
    (assign_wcs, flat_field, photom: rules of their own, no resample) and ami3 on what that
    made; the ``_calints`` and the ami3 products are those of ``Image2Pipeline.call`` on each
    member and then ``Ami3Pipeline.call``."""
    from jwst_level3_data import write_ami3

    made = write_ami3(tmp_path / "data", suffix="rateints")
    inproc, wf = _run_both(made, "Ami3Pipeline", tmp_path, {"ami_analyze": {"oversample": 1}},
                           start="rateints")
    plan = json.loads((wf / "plan.json").read_text())
    assert [s["name"] for s in plan["steps"]][:3] == ["assign_wcs", "flat_field", "photom"]
    assert [s["stage"] for s in plan["steps"]][:3] == ["Image2Pipeline"] * 3
    within_requests(wf)
    for root in made["roots"]:
        _same_arrays(inproc / f"{root}_calints.fits", wf / "products" / f"{root}_calints.fits")
    target = made["roots"][0]
    a = _hdus(inproc / f"{target}_o027_ami-oi.fits")
    b = _hdus(wf / "products" / f"{target}_ami-oi.fits")
    assert list(a) == list(b) and {"OI_VIS2", "OI_T3"} <= set(a)
    for name, theirs in a.items():
        for column, values in (theirs.items() if isinstance(theirs, dict) else [("", theirs)]):
            ours = b[name][column] if column else b[name]
            np.testing.assert_array_equal(values, ours, err_msg=f"{name} {column}")
    norm = _hdus(wf / "products" / f"{target}_aminorm-oi.fits")["OI_VIS2"]["VIS2DATA"]
    assert np.isfinite(norm).all()
    # an Image2 parameter reruns that step's _calints and the ami3 products, nothing before
    _planned(made, wf, "--steps.ami_analyze.oversample=1",
             "--steps.photom.apply_time_correction=false")
    assert planned_jobs(wf) == {"photom": 2, "ami_analyze": 2, "ami_normalize": 1}


def test_ami3_from_uncal_plans_detector1_then_image2_on_its_rateints(tmp_path):
    """Members present as ``_uncal`` only: Detector1, then Image2 on the ``_rateints`` channel
    of ramp_fit (not the ``_rate``), then ami3 on the ``_calints``; ``--until photom`` ends at
    the ``_calints``."""
    from jwst_data import uncal_instead
    from jwst_level3_data import write_ami3

    made = write_ami3(tmp_path / "data", suffix="rateints")
    for root in made["roots"]:
        uncal_instead(made["inputs"] / f"{root}_rateints.fits")
    wf = tmp_path / "wf"
    assert _stages(_planned(made, wf)) == ["Detector1Pipeline", "Image2Pipeline",
                                           "Ami3Pipeline"]
    target = made["roots"][0]
    unit = json.loads((wf / "units" / "assign_wcs" / f"{target}.json").read_text())
    assert [f["path"] for f in unit["inputs"]] == [f"products/{target}_rateints.fits"]
    ami = json.loads((wf / "units" / "ami_analyze" / f"{target}.json").read_text())
    assert [f["path"] for f in ami["inputs"]] == [f"products/{target}_calints.fits"]
    jobs = planned_jobs(wf)
    assert jobs["ramp_fit"] == jobs["assign_wcs"] == jobs["photom"] == 2
    assert jobs["ami_analyze"] == 2 and jobs["ami_normalize"] == 1
    until = tmp_path / "until"
    _planned(made, until, "--until", "photom")
    assert "ami_analyze" not in planned_jobs(until) and planned_jobs(until)["photom"] == 2


@pytest.mark.parametrize("kind", ["coron3", "tso3"])
def test_coron3_and_tso3_walk_back_to_rateints_and_uncal(kind, tmp_path):
    """coron3 and imaging tso3 members given as ``_rateints`` (the first) or ``_uncal`` (the
    others) plan as ami3's do: Detector1 on each ``_uncal``, Image2 on every member's
    ``_rateints`` (the ramp_fit channel of that name for the others), then the level-3 steps on
    the ``_calints``; ``--until photom`` ends at every member's ``_calints``."""
    from jwst.pipeline import Detector1Pipeline, Image2Pipeline
    from jwst_data import uncal_instead
    from jwst_level3_data import write_coron3, write_tso3

    write = {"coron3": write_coron3, "tso3": write_tso3}[kind]
    made = write(tmp_path / "data", also=(Detector1Pipeline, Image2Pipeline))
    roots = sorted(p.name.removesuffix("_calints.fits")
                   for p in made["inputs"].glob("*_calints.fits"))
    for i, root in enumerate(roots):  # the headers are what planning reads
        calints = made["inputs"] / f"{root}_calints.fits"
        rateints = calints.rename(calints.with_name(f"{root}_rateints.fits"))
        if i:
            uncal_instead(rateints)
    wf = tmp_path / "wf"
    assert _stages(_planned(made, wf)) == ["Detector1Pipeline", "Image2Pipeline",
                                           f"{kind.capitalize()}Pipeline"]
    jobs = planned_jobs(wf)
    assert jobs["ramp_fit"] == len(roots) - 1
    assert jobs["assign_wcs"] == jobs["photom"] == len(roots)
    for i, root in enumerate(roots):
        unit = json.loads((wf / "units" / "assign_wcs" / f"{root}.json").read_text())
        where = "products" if i else str(made["inputs"])
        assert [f["path"] for f in unit["inputs"]] == [f"{where}/{root}_rateints.fits"]
    first = json.loads((wf / "units" / "outlier_detection" / f"{roots[0]}.json").read_text())
    assert [f["path"] for f in first["inputs"]] == [f"products/{roots[0]}_calints.fits"]
    plan = _planned(made, tmp_path / "until", "--until", "photom")
    assert plan["targets"] == [f"products/{r}_calints.fits" for r in roots]
