"""A generated workflow with the real Detector1 steps on simulated data.

Checks: the workflow's products equal the in-process Detector1Pipeline.call on the same data;
a new CRDS context that swaps the gain reruns exactly the units that use it (and what depends on
them), one that swaps an unused type reruns nothing; jobs use the files chosen at generation and
do not import crds; a parameter change from the command line reruns the affected step and
downstream only.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits
from wfhelpers import planned_jobs, snakemake

from jwpipe import datamodels
from jwpipe.pipeline import Detector1Pipeline
from jwpipe.references import derive_context, install_reference, rule_from_file
from jwpipe.simulate import simulate_field
from jwpipe.workflow.generate import generate_workflow

DET1 = ["group_scale", "dq_init", "saturation", "superbias", "refpix", "linearity",
        "dark_current", "jump", "ramp_fit", "gain_scale"]


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    base = tmp_path_factory.mktemp("det1wf")
    result = simulate_field(base / "data", n_exposures=2, size=48, ngroups=5, seed=11)
    return result


def _generate(sim, work, **kw):
    return generate_workflow([str(p) for p in sim.asn_image2], work,
                             refs=str(kw.pop("refs", sim.store_dir)),
                             stages=[Detector1Pipeline], **kw)


def test_detector1_workflow_matches_in_process_pipeline(sim, tmp_path, monkeypatch):
    work = tmp_path / "wf"
    _generate(sim, work)
    assert planned_jobs(work) == dict.fromkeys(DET1, 2)
    snakemake(work)
    monkeypatch.chdir(tmp_path)
    for uncal in sim.uncal_files:
        root = uncal.name.replace("_uncal.fits", "")
        from jwpipe.stpipe import set_store

        set_store(str(sim.store_dir))
        try:
            rate = Detector1Pipeline.call(str(uncal))
        finally:
            set_store(None)
        with datamodels.open(str(work / "products" / f"{root}_rate.fits")) as wf_rate:
            np.testing.assert_array_equal(wf_rate.data, rate.data)
            np.testing.assert_array_equal(wf_rate.dq, rate.dq)
            np.testing.assert_array_equal(wf_rate.err, rate.err)
            assert wf_rate.meta.cal_step.jump == "COMPLETE"
            assert wf_rate.meta.ref_file.gain.name == "crds://jwst_nircam_gain_0006.fits"
            assert wf_rate.meta.ref_file.crds.context_used == "jwst_0001.pmap"
            assert wf_rate.meta.ref_file.crds.sw_version
            assert rate.meta.ref_file.gain.name == "crds://jwst_nircam_gain_0006.fits"
            run = wf_rate.extra["jwpipe"]["run_step"]
            assert run["step"] == "gain_scale" and run["parameters_hash"]
    assert planned_jobs(work) == {}


def _new_reference(cache, old_name, new_name, factor):
    """A changed copy of a cached reference under a new CRDS name; returns its rule."""
    src = cache / "references" / "jwst" / "nircam" / old_name
    tmp = cache.parent / new_name
    shutil.copyfile(src, tmp)
    with fits.open(tmp, mode="update") as hdul:
        hdul["SCI"].data = hdul["SCI"].data * np.float32(factor)
    path = install_reference(cache, "NIRCAM", tmp, move=True)
    return rule_from_file(path)[1]


def test_context_change_reruns_exactly_the_units_using_it(sim, tmp_path, monkeypatch):
    cache = tmp_path / "crds"
    shutil.copytree(sim.store_dir, cache)
    work = tmp_path / "wf"
    _generate(sim, work, refs=cache)
    snakemake(work)
    # jwst_0002.pmap swaps the gain: jump, ramp_fit and gain_scale use it
    gain = _new_reference(cache, "jwst_nircam_gain_0006.fits", "jwst_nircam_gain_0011.fits",
                          1.01)
    ctx2 = derive_context(cache, "jwst_0001.pmap", {"NIRCAM": {"gain": [gain]}})
    assert ctx2 == "jwst_0002.pmap"
    monkeypatch.setenv("CRDS_CONTEXT", ctx2)
    _, counts = _generate(sim, work, refs=cache)
    assert counts["written"] == 6
    assert planned_jobs(work) == {"jump": 2, "ramp_fit": 2, "gain_scale": 2}
    plan = subprocess.run([sys.executable, "-m", "jwpipe", "plan", str(work)],
                          capture_output=True, text=True, check=True).stdout
    assert ("gain: jwst_nircam_gain_0006.fits -> jwst_nircam_gain_0011.fits (context "
            "jwst_0001.pmap -> jwst_0002.pmap)") in plan
    snakemake(work)
    root = sim.uncal_files[0].name.replace("_uncal.fits", "")
    with fits.open(work / "products" / f"{root}_rate.fits") as hdul:
        assert hdul[0].header["R_GAIN"] == "crds://jwst_nircam_gain_0011.fits"
        assert hdul[0].header["CRDS_CTX"] == ctx2
    unit = json.loads((work / "units" / "dq_init" / f"{root}.json").read_text())
    assert unit["references"]["context"] == "jwst_0001.pmap"  # its files did not change
    # jwst_0003.pmap swaps the flat, which Detector1 does not use: nothing reruns
    flat = _new_reference(cache, "jwst_nircam_flat_0008.fits", "jwst_nircam_flat_0012.fits",
                          1.02)
    ctx3 = derive_context(cache, ctx2, {"NIRCAM": {"flat": [flat]}})
    monkeypatch.setenv("CRDS_CONTEXT", ctx3)
    _, counts = _generate(sim, work, refs=cache)
    assert counts["written"] == 0
    assert planned_jobs(work) == {}
    # a command-line parameter change: ramp_fit and downstream only
    _generate(sim, work, refs=cache, overrides={"ramp_fit": {"suppress_one_group": False}})
    assert planned_jobs(work) == {"ramp_fit": 2, "gain_scale": 2}


def test_jobs_use_the_planned_files_without_selecting(sim, tmp_path):
    # (asdf's entry points may still import crds through stpipe when it is installed)
    work = tmp_path / "wf"
    _generate(sim, work)
    root = sim.uncal_files[0].name.replace("_uncal.fits", "")
    first = str(work / "units" / "group_scale" / f"{root}.json")
    unit = str(work / "units" / "dq_init" / f"{root}.json")
    out = work / "products" / f"{root}_dq_init.fits"
    code = ("import sys; from jwpipe.workflow.runstep import main; "
            f"rc = main([{first!r}]) or main([{unit!r}]); "
            "from jwpipe.references import crds_cache as c; "
            "assert not c._CACHES and not c._ACTIVE_ROOT, 'a job selected references'; "
            "sys.exit(rc)")
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("CRDS")}
    env["CRDS_PATH"] = str(tmp_path / "no-such-cache")  # jobs must not even look at it
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=work)
    with fits.open(out) as hdul:
        assert hdul[0].header["R_MASK"] == "crds://jwst_nircam_mask_0001.fits"
        assert hdul[0].header["CRDS_CTX"] == "jwst_0001.pmap"
