"""The declared step order is what runs: every pipeline in process and the workflow, on the same
simulated exposures, give the same products.

The workflow is planned from the pipelines' declarations (one job per step, products written
between steps); ``Pipeline.call`` runs the same declarations in one process. Arrays must be
equal to the bit: both run the same code in the same order on the same float32 data.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from astropy.table import Table
from wfhelpers import planned_jobs, snakemake

from jwpipe import datamodels
from jwpipe.pipeline import Detector1Pipeline, Image2Pipeline, Image3Pipeline
from jwpipe.simulate import simulate_field
from jwpipe.stpipe import set_store
from jwpipe.workflow.generate import generate_workflow


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("order")
    sim = simulate_field(base / "data", n_exposures=2, size=96, ngroups=4, seed=5)
    work = base / "wf"
    plan, _ = generate_workflow([str(sim.asn_image3)], work, refs=str(sim.store_dir))
    snakemake(work)
    assert planned_jobs(work) == {}
    here = base / "inproc"
    here.mkdir()
    set_store(str(sim.store_dir))
    try:
        for uncal in sim.uncal_files:
            Detector1Pipeline.call(str(uncal), save_results=True, output_dir=str(here))
            rate = here / uncal.name.replace("_uncal", "_rate")
            Image2Pipeline.call(str(rate), save_results=True, output_dir=str(here))
        asn = here / sim.asn_image3.name
        shutil.copyfile(sim.asn_image3, asn)
        Image3Pipeline.call(str(asn), save_results=True, output_dir=str(here))
    finally:
        set_store(None)
    return {"sim": sim, "plan": plan, "wf": work / "products", "here": here}


def _same_arrays(a_path, b_path, arrays=("data", "dq", "err")):
    with datamodels.open(str(a_path)) as a, datamodels.open(str(b_path)) as b:
        assert type(a) is type(b)
        for name in arrays:
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def test_workflow_steps_are_the_declared_order(runs):
    stages = [Detector1Pipeline, Image2Pipeline, Image3Pipeline]
    declared = [n for s in stages for n in s.step_names("NIRCAM")
                if s.step_defs[n].workflow_member_role is None]  # no background members here
    assert [s["name"] for s in runs["plan"].steps] == declared


def test_detector1_and_image2_products_match(runs):
    for uncal in runs["sim"].uncal_files:
        root = uncal.name.replace("_uncal.fits", "")
        for suffix in ("rate", "rateints", "cal"):
            name = f"{root}_{suffix}.fits"
            _same_arrays(runs["wf"] / name, runs["here"] / name)


def test_image3_products_match(runs):
    wf, here = runs["wf"], runs["here"]
    i2d = next(wf.glob("*_i2d.fits"))
    _same_arrays(i2d, here / i2d.name, arrays=("data", "wht", "err"))
    product = i2d.name.removesuffix("_i2d.fits")
    members = sorted((wf / f"{product}.crf").glob("*_crf.fits"))
    assert len(members) == len(runs["sim"].uncal_files)
    for member in members:
        root = member.name.removesuffix("_crf.fits")
        _same_arrays(member, next(here.glob(f"{root}_*_crf.fits")))
    wf_cat = Table.read(wf / f"{product}_cat.ecsv", format="ascii.ecsv")
    here_cat = Table.read(here / f"{product}_cat.ecsv", format="ascii.ecsv")
    assert len(wf_cat) == len(here_cat) > 0
    assert wf_cat.colnames == here_cat.colnames
    for name in wf_cat.colnames:
        column = wf_cat[name]
        if hasattr(column, "ra"):  # sky coordinates (SkyCoord columns of the jwst catalogue)
            np.testing.assert_array_equal(column.ra.deg, here_cat[name].ra.deg, err_msg=name)
            np.testing.assert_array_equal(column.dec.deg, here_cat[name].dec.deg, err_msg=name)
        elif column.dtype.kind == "f":
            np.testing.assert_array_equal(column, here_cat[name], err_msg=name)
