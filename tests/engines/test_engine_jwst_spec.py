"""A spec2 association run end to end with the jwst engine: a MIRI LRS fixed-slit ``_rate``
and the references jwst's Spec2 reads for it, all written by stdatamodels
(:mod:`jwst_spec_data`), through real Snakemake to ``_cal``, ``_s2d`` and ``_x1d``; the
products are jwst's own in-process ``Spec2Pipeline.call`` products on the same input, to the
bit, and the order stated as data is the order that call ran its steps in."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "workflow"))

jwst = pytest.importorskip("jwst")

from jwst_data import SPEC2_ROOT  # noqa: E402
from test_engine_jwst import _env, _jwpipe  # noqa: E402
from wfhelpers import planned_jobs  # noqa: E402

SUFFIXES = ("cal", "s2d", "x1d")


@pytest.fixture(scope="module")
def lrs(tmp_path_factory):
    """The LRS exposure, its references in a CRDS cache, jwst's in-process Spec2 on it and
    the jwst-engine workflow run by Snakemake."""
    from jwst_spec_data import lrs_cache, write_lrs_rate, write_lrs_references

    root = tmp_path_factory.mktemp("lrs")
    asn = write_lrs_rate(root / "in")
    cache = root / "cache"
    lrs_cache(cache, write_lrs_references(root / "refs"))
    inproc = root / "inprocess"
    proc = subprocess.run([sys.executable, str(HERE / "_run_jwst_spec2.py"), str(asn),
                           str(inproc)], capture_output=True, text=True, timeout=600,
                          env=_env(CRDS_PATH=str(cache), CRDS_READONLY_CACHE="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    wf = root / "wf"
    made = _jwpipe("make-workflow", str(asn), "--engine", "jwst", "--refs", str(cache),
                   "-o", str(wf), "--no-pictures")
    assert made.returncode == 0, made.stderr
    run = subprocess.run([sys.executable, "-m", "snakemake", "--profile", "profiles/local",
                          "--cores", "2"], cwd=wf, capture_output=True, text=True,
                         timeout=900, env=_env())
    assert run.returncode == 0, run.stderr[-4000:]
    return {"inprocess": inproc, "wf": wf, "asn": asn, "cache": cache}


def _hdus(path: Path) -> dict[str, np.ndarray]:
    """Every data array and table column of a product (the ASDF extension aside)."""
    from astropy.io import fits

    out = {}
    with fits.open(path) as hdul:
        for h in hdul:
            if h.name == "ASDF" or h.data is None:
                continue
            if isinstance(h, fits.BinTableHDU):
                out.update({f"{h.name}.{c}": np.array(h.data[c]) for c in h.columns.names})
            else:
                out[h.name] = np.array(h.data)
    return out


@pytest.mark.slow
def test_lrs_spec2_workflow_products_are_spec2pipeline_call_products(lrs):
    from stdatamodels.jwst import datamodels as sdm

    products = lrs["wf"] / "products"
    for suffix in SUFFIXES:
        name = f"{SPEC2_ROOT}_{suffix}.fits"
        theirs, ours = _hdus(lrs["inprocess"] / name), _hdus(products / name)
        assert sorted(theirs) == sorted(ours) and len(theirs) >= 1, (name, sorted(ours))
        for hdu in theirs:
            assert theirs[hdu].dtype == ours[hdu].dtype, (name, hdu)
            np.testing.assert_array_equal(theirs[hdu], ours[hdu], err_msg=f"{name} {hdu}")
    with sdm.open(str(products / f"{SPEC2_ROOT}_cal.fits")) as cal:
        assert type(cal).__name__ == "SlitModel"  # as jwst converts the LRS image
        done = cal.meta.cal_step
        assert (done.assign_wcs, done.srctype, done.flat_field, done.pathloss, done.photom) \
            == ("COMPLETE",) * 5
        assert np.isfinite(cal.data).sum() > 100
    with sdm.open(str(products / f"{SPEC2_ROOT}_x1d.fits")) as x1d:
        flux = x1d.spec[0].spec_table["FLUX"]
        assert np.isfinite(flux).sum() > 20 and np.nanmax(flux) > 0
    assert planned_jobs(lrs["wf"]) == {}


@pytest.mark.slow
def test_lrs_spec2_rules_are_the_steps_spec2pipeline_call_ran(lrs):
    """Order as data (head, EXP_TYPE branch, side chain) = the steps the call ran; the
    workflow's rules = those jwst did not skip."""
    from jwpipe.engines.jwst_stages import planned_order, side_order

    mode = "MIR_LRS-FIXEDSLIT"
    (run,) = json.loads((lrs["inprocess"] / "steps.json").read_text())
    called = [name for name, _ in run["steps"]]
    assert called == planned_order("calwebb_spec2", mode) + \
        [n for n, _ in side_order("calwebb_spec2", mode)]
    plan = json.loads((lrs["wf"] / "plan.json").read_text())
    assert [s["name"] for s in plan["steps"]] == [n for n, ran in run["steps"] if ran]
    unit = json.loads((lrs["wf"] / "units" / "extract_1d" / f"{SPEC2_ROOT}.json").read_text())
    assert set(unit["references"]["files"]) >= {"extract1d", "apcorr"}
    assert unit["references"]["files"]["extract1d"] == "N/A"
    # every job stayed within the memory the engine declared for its step
    for step, units in plan["units"].items():
        for key, planned in units.items():
            made = json.loads((lrs["wf"] / "state" / step / f"{key}.json").read_text())
            assert made["measured"]["peak_rss_mb"] < planned["mem_mb"], (step, key)


@pytest.mark.slow
def test_lrs_spec2_as_one_job_per_stage_gives_the_same_products(lrs, tmp_path):
    """``--granularity stage``: Spec2 and its side chain in one job, the same products."""
    wf = tmp_path / "wf"
    made = _jwpipe("make-workflow", str(lrs["asn"]), "--engine", "jwst", "--refs",
                   str(lrs["cache"]), "-o", str(wf), "--no-pictures", "--granularity", "stage")
    assert made.returncode == 0, made.stderr
    assert planned_jobs(wf) == {"spec2": 1}
    run = subprocess.run([sys.executable, "-m", "snakemake", "--profile", "profiles/local",
                          "--cores", "1"], cwd=wf, capture_output=True, text=True,
                         timeout=900, env=_env())
    assert run.returncode == 0, run.stderr[-4000:]
    for suffix in SUFFIXES:
        name = f"{SPEC2_ROOT}_{suffix}.fits"
        theirs, ours = _hdus(lrs["inprocess"] / name), _hdus(wf / "products" / name)
        assert sorted(theirs) == sorted(ours), name
        for hdu in theirs:
            np.testing.assert_array_equal(theirs[hdu], ours[hdu], err_msg=f"{name} {hdu}")


def test_until_spec2_stops_at_cal_without_side_products(tmp_path):
    """``--until calwebb_spec2`` or ``--until photom`` ends at ``_cal``: no side rules."""
    from jwst_data import spec2_cache, write_spec2_inputs

    asn = write_spec2_inputs(tmp_path / "in")
    cache = tmp_path / "cache"
    spec2_cache(cache)
    for until in ("calwebb_spec2", "photom"):
        wf = tmp_path / f"wf-{until}"
        proc = _jwpipe("make-workflow", str(asn), "--engine", "jwst", "--refs", str(cache),
                       "-o", str(wf), "--no-pictures", "--until", until)
        assert proc.returncode == 0, proc.stderr
        plan = json.loads((wf / "plan.json").read_text())
        assert [s["name"] for s in plan["steps"]][-1] == "photom", until
        assert plan["targets"] == [f"products/{SPEC2_ROOT}_cal.fits"], until


@pytest.mark.slow
def test_side_step_parameter_change_reruns_only_the_side_chain_after_it(lrs, tmp_path):
    """A ``resample_spec`` parameter reruns ``_s2d`` and ``_x1d``; an ``extract_1d`` one only
    ``_x1d``; the ``_cal`` chain stays done."""
    import shutil

    wf = tmp_path / "wf"
    shutil.copytree(lrs["wf"], wf, symlinks=True)
    assert planned_jobs(wf) == {}
    for override, rerun, written in (("--steps.extract_1d.smoothing_length=3",
                                      {"extract_1d": 1}, 1),
                                     ("--steps.resample_spec.pixfrac=0.8",
                                      {"resample_spec": 1, "extract_1d": 1}, 1)):
        proc = _jwpipe("make-workflow", "--again", str(wf), override)
        assert proc.returncode == 0, proc.stderr
        assert f"unit files: {written} written" in proc.stdout, proc.stdout
        assert planned_jobs(wf) == rerun, override
