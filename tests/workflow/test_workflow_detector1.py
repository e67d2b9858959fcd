"""A generated workflow with the real Detector1 steps on simulated data.

Checks: the workflow's products equal the in-process Detector1Pipeline.call on the same data;
a change of the selected reference file reruns exactly the units that use it (and what depends on
them); a parameter change from the command line reruns the affected step and downstream only.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from astropy.io import fits
from wfhelpers import planned_jobs, snakemake

from jwpipe import datamodels
from jwpipe.pipeline import Detector1Pipeline
from jwpipe.references import build_index
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
            assert wf_rate.meta.ref_file.gain.name == "jwst_nircam_gain_0006.fits"
            run = wf_rate.extra["jwpipe"]["run_step"]
            assert run["step"] == "gain_scale" and run["parameters_hash"]
    assert planned_jobs(work) == {}


def test_reference_change_reruns_exactly_the_units_using_it(sim, tmp_path):
    refs = tmp_path / "refs"
    shutil.copytree(sim.store_dir, refs)
    work = tmp_path / "wf"
    _generate(sim, work, refs=refs)
    snakemake(work)
    # a newer gain reference becomes the best match: jump, ramp_fit and gain_scale use gain
    newer = refs / "jwst_nircam_gain_0099.fits"
    shutil.copyfile(refs / "jwst_nircam_gain_0006.fits", newer)
    with fits.open(newer, mode="update") as hdul:
        hdul[0].header["USEAFTER"] = "2022-06-01T00:00:00"
        hdul["SCI"].data = hdul["SCI"].data * np.float32(1.01)
    build_index(refs)
    _generate(sim, work, refs=refs)
    assert planned_jobs(work) == {"jump": 2, "ramp_fit": 2, "gain_scale": 2}
    snakemake(work)
    # a command-line parameter change: ramp_fit and downstream only
    _generate(sim, work, refs=refs, overrides={"ramp_fit": {"suppress_one_group": False}})
    assert planned_jobs(work) == {"ramp_fit": 2, "gain_scale": 2}
