"""Image2Pipeline and Image3Pipeline end to end on a simulated field (rate files from truth)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "steps"))
from test_image_simdata import simulate_rates

from jwpipe import datamodels
from jwpipe.errors import AssociationError
from jwpipe.pipeline import Image2Pipeline, Image3Pipeline

PRODUCT = "jw01234-o001_t001_nircam_clear-f200w"


@pytest.fixture(scope="module")
def field(tmp_path_factory):
    """Rate files and the simulator's associations, all in one directory."""
    return simulate_rates(tmp_path_factory.mktemp("pipelines") / "sim", n_exposures=3,
                          size=160, seed=21, n_stars=40, n_galaxies=6)


@pytest.fixture(scope="module")
def calibrated(field):
    """Image2 run on every image2 association, cal files written next to the asn files."""
    import os

    os.environ["JWPIPE_REFS"] = str(field.sim.store_dir)
    try:
        for asn in field.sim.asn_image2:
            Image2Pipeline.call(str(asn), save_results=True,
                                output_dir=str(field.sim.outdir))
    finally:
        del os.environ["JWPIPE_REFS"]
    return field


def test_image2_association_writes_cal(calibrated):
    sim = calibrated.sim
    for rate in calibrated.rates:
        cal = Path(str(rate).replace("_rate.fits", "_cal.fits"))
        assert cal.exists()
        with datamodels.open(cal) as m:
            assert isinstance(m, datamodels.ImageModel)
            assert m.meta.cal_step.assign_wcs == "COMPLETE"
            assert m.meta.cal_step.flat_field == "COMPLETE"
            assert m.meta.cal_step.photom == "COMPLETE"
            assert m.meta.cal_step.bkg_subtract is None  # no background members: not run
            assert m.meta.bunit_data == "MJy/sr"
            assert m.meta.asn.table_name.endswith("_asn.json")
            assert m.meta.ref_file.flat.name.startswith("crds://jwst_nircam_flat")
    assert len(list(Path(sim.outdir).glob("*_cal.fits"))) == len(calibrated.rates)


def test_image2_background_members(calibrated, tmp_path, monkeypatch):
    monkeypatch.setenv("JWPIPE_REFS", str(calibrated.sim.store_dir))
    sci, bkg = calibrated.rates[0], calibrated.rates[1]
    asn = {"asn_type": "image2", "asn_id": "o001", "products": [{
        "name": "withbkg", "members": [
            {"expname": str(sci.name), "exptype": "science"},
            {"expname": str(bkg.name), "exptype": "background"}]}]}
    path = sci.parent / "bkg_image2_asn.json"
    path.write_text(json.dumps(asn))
    out = Image2Pipeline.call(str(path), save_results=True, output_dir=str(tmp_path))
    assert out.meta.cal_step.bkg_subtract == "COMPLETE"
    assert (tmp_path / "withbkg_cal.fits").exists()
    # the same sky is in both exposures: what is left is sources and noise around zero
    assert abs(np.nanmedian(out.data)) < 0.01


def test_image2_product_with_two_science_members(calibrated, tmp_path):
    a, b = calibrated.rates[0], calibrated.rates[1]
    asn = {"asn_type": "image2", "products": [{"name": "two", "members": [
        {"expname": a.name, "exptype": "science"}, {"expname": b.name, "exptype": "science"}]}]}
    path = a.parent / "two_image2_asn.json"
    path.write_text(json.dumps(asn))
    with pytest.raises(AssociationError, match="exactly one"):
        Image2Pipeline.call(str(path))


def test_image3_association_products(calibrated, tmp_path):
    asn = calibrated.sim.asn_image3
    pipe = Image3Pipeline()
    pipe.save_results = True
    pipe.output_dir = str(tmp_path)
    pipe.tweakreg.minobj = 10
    i2d = pipe.run(str(asn))
    names = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("."))
    roots = [r.name.replace("_rate.fits", "") for r in calibrated.rates]
    assert names == sorted([f"{PRODUCT}_cat.ecsv", f"{PRODUCT}_segm.fits", f"{PRODUCT}_i2d.fits",
                            *[f"{r}_o001_crf.fits" for r in roots]])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".jwpipe")]  # cleaned up
    with datamodels.open(tmp_path / f"{PRODUCT}_i2d.fits") as m:
        for step in ("tweakreg", "skymatch", "outlier_detection", "resample"):
            assert getattr(m.meta.cal_step, step) == "COMPLETE", step
        assert m.con is not None and m.wht is not None
        assert np.nanmedian(m.data) == pytest.approx(0.2, abs=0.01)
    with datamodels.open(tmp_path / f"{roots[0]}_o001_crf.fits") as crf:
        assert crf.meta.background.method == "match"
        assert crf.meta.cal_step.outlier_detection == "COMPLETE"
    cat = Table.read(tmp_path / f"{PRODUCT}_cat.ecsv")
    assert len(cat) > 10 and {"sky_centroid", "aper_total_flux"} <= set(cat.colnames)
    assert i2d.meta.cal_step.resample == "COMPLETE"
    assert pipe.catalog is not None and len(pipe.catalog) == len(cat)


def test_image3_call_with_step_parameters_and_list_input(calibrated, tmp_path):
    cals = [str(r).replace("_rate.fits", "_cal.fits") for r in calibrated.rates]
    i2d = Image3Pipeline.call(cals, steps={"tweakreg": {"fitgeometry": "shift", "minobj": 10},
                                           "resample": {"pixel_scale_ratio": 2.0},
                                           "source_catalog": {"skip": True}})
    assert i2d.meta.cal_step.tweakreg == "COMPLETE"
    assert i2d.header("PRIMARY")["PXSCLRT"] == pytest.approx(2.0, rel=1e-3)
    assert i2d.meta.cal_step.source_catalog == "SKIPPED"
    assert list(tmp_path.iterdir()) == []  # nothing saved


def test_image3_mixed_filters_is_an_error(calibrated, tmp_path):
    cals = [str(r).replace("_rate.fits", "_cal.fits") for r in calibrated.rates]
    with datamodels.open(cals[1]) as m:
        m.meta.instrument.filter = "F090W"
        other = m.save(tmp_path / "other_cal.fits")
    from jwpipe.errors import StepInputError

    with pytest.raises(StepInputError, match="FILTER"):
        Image3Pipeline.call([cals[0], other])
