"""Products in both directions: jwpipe's ``_rate``/``_cal`` read by stdatamodels and used by
jwst's Image3 resampling; jwst's own products (with a gWCS) run through jwpipe steps."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from formats_data import run_jwst, write_rate

from jwpipe import datamodels
from jwpipe.steps._image_common import model_wcs
from jwpipe.steps.assign_wcs import AssignWcsStep
from jwpipe.steps.flat_field import FlatFieldStep
from jwpipe.steps.photom import PhotomStep
from jwpipe.steps.resample import ResampleStep

sdm = pytest.importorskip("stdatamodels.jwst.datamodels")
pytest.importorskip("gwcs")

SHAPE = (300, 300)


def _refs(tmp):
    """flat, photom and area references for NRCA1 F200W/CLEAR, written by stdatamodels."""
    def meta(m, reftype):
        m.meta.reftype = reftype
        m.meta.instrument.name, m.meta.instrument.detector = "NIRCAM", "NRCA1"
        m.meta.instrument.channel, m.meta.instrument.module = "SHORT", "A"
        m.meta.author, m.meta.pedigree, m.meta.telescope = "tests", "GROUND", "JWST"
        m.meta.useafter, m.meta.description = "2022-01-01T00:00:00", reftype
        return m

    full = (2048, 2048)
    meta(sdm.FlatModel(data=np.full(full, 1.25, np.float32)), "FLAT").save(tmp / "flat.fits")
    table = np.array([("F200W", "CLEAR", 0.22, 0.004)],
                     dtype=[("filter", "S12"), ("pupil", "S12"), ("photmjsr", "f4"),
                            ("uncertainty", "f4")])
    m = meta(sdm.NrcImgPhotomModel(phot_table=table), "PHOTOM")
    m.meta.photometry.pixelarea_steradians = 2.29e-14
    m.meta.photometry.pixelarea_arcsecsq = 9.7e-4
    m.save(tmp / "photom.fits")
    m = meta(sdm.PixelAreaModel(data=np.ones(full, np.float32)), "AREA")
    m.meta.photometry.pixelarea_steradians = 2.29e-14
    m.meta.photometry.pixelarea_arcsecsq = 9.7e-4
    m.save(tmp / "area.fits")
    return {k: str(tmp / f"{k}.fits") for k in ("flat", "photom", "area")}


def _image2(path, refs, dist, fo):
    """jwpipe's Image2 steps on one rate file (or jwst product)."""
    model = AssignWcsStep.call(path, override_distortion=dist, override_filteroffset=fo)
    model = FlatFieldStep.call(model, override_flat=refs["flat"])
    return PhotomStep.call(model, override_photom=refs["photom"], override_area=refs["area"])


@pytest.fixture(scope="module")
def products(formats_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("products")
    refs = _refs(tmp)
    dist = str(formats_dir / "jwst_nircam_distortion_0001.asdf")
    fo = str(formats_dir / "jwst_nircam_filteroffset_0001.asdf")
    rates, cals = [], []
    # two dithered subarray exposures: the second 2.5" away
    for i, (ra, dec) in enumerate(((53.1625, -27.7914), (53.16325, -27.79085))):
        rate = write_rate(tmp / f"jw01234001001_01101_0000{i + 1}_nrca1_rate.fits", SHAPE,
                          xstart=801, ystart=901, seed=10 + i)
        with datamodels.open(rate) as m:
            m.meta.wcsinfo.ra_ref, m.meta.wcsinfo.dec_ref = ra, dec
            # written by jwpipe: this is a jwpipe _rate
            rates.append(m.save(tmp / f"jw01234001001_01101_0000{i + 1}_nrca1_jwpipe_rate.fits"))
        cal = _image2(rates[-1], refs, dist, fo)
        cals.append(cal.save(tmp / f"jw01234001001_01101_0000{i + 1}_nrca1_cal.fits"))
    return {"tmp": tmp, "refs": refs, "dist": dist, "fo": fo, "rates": rates, "cals": cals}


def _strict_open(path):
    from stdatamodels.exceptions import ValidationWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error", ValidationWarning)
        return sdm.open(path)


def test_jwpipe_rate_and_cal_open_in_stdatamodels(products):
    rate = _strict_open(products["rates"][0])
    assert type(rate) is sdm.ImageModel
    ours = datamodels.open(products["rates"][0])
    np.testing.assert_array_equal(rate.data, ours.data)
    cal = _strict_open(products["cals"][0])
    assert type(cal) is sdm.ImageModel
    ours = datamodels.open(products["cals"][0])
    np.testing.assert_array_equal(cal.data, ours.data)
    np.testing.assert_array_equal(cal.dq, ours.dq)
    assert cal.meta.cal_step.assign_wcs == "COMPLETE"
    assert cal.meta.cal_step.photom == "COMPLETE"
    assert cal.meta.bunit_data == "MJy/sr"
    # the gWCS: same frames, same sky
    assert [s.frame.name for s in cal.meta.wcs.pipeline] == \
        ["detector", "v2v3", "v2v3vacorr", "world"]
    yy, xx = np.mgrid[0:SHAPE[0]:25, 0:SHAPE[1]:25].astype(float)
    np.testing.assert_array_equal(cal.meta.wcs(xx, yy), ours.meta.wcs(xx, yy))
    assert cal.meta.wcsinfo.ctype1 == "RA---TAN-SIP"


def test_jwst_resample_uses_jwpipe_gwcs(products):
    """jwst's Image3 resampling of jwpipe _cal files puts each pixel where our gWCS says."""
    tmp = products["tmp"]
    out = str(tmp / "jwst_resampled_i2d.fits")
    run_jwst([{"step": "resample", "inputs": products["cals"], "output": out}], tmp)
    i2d = sdm.open(out)
    ours = [datamodels.open(c) for c in products["cals"]]
    # every corner of both inputs lands inside jwst's output grid, within one pixel of its edge
    ny, nx = i2d.data.shape
    xs, ys = [], []
    for m in ours:
        ra, dec = m.meta.wcs([-0.5, SHAPE[1] - 0.5, SHAPE[1] - 0.5, -0.5],
                             [-0.5, -0.5, SHAPE[0] - 0.5, SHAPE[0] - 0.5])
        x, y = i2d.meta.wcs.invert(ra, dec, with_bounding_box=False)
        xs.extend(x)
        ys.extend(y)
    assert min(xs) > -1.5 and min(ys) > -1.5
    assert max(xs) < nx + 0.5 and max(ys) < ny + 0.5
    # ... and jwst's grid is the tight box around them (built from our gWCS footprints)
    assert max(xs) - min(xs) > nx - 3 or max(ys) - min(ys) > ny - 3
    # surface brightness is conserved: the flux-calibrated mean is kept
    good = i2d.wht > 0
    expected = np.mean([np.mean(m.data) for m in ours])
    assert np.median(i2d.data[good]) == pytest.approx(expected, rel=0.02)


def test_jwst_products_run_through_jwpipe(products, formats_dir):
    """jwst's assign_wcs products (gWCS in the ASDF extension) -> jwpipe flat, photom, resample."""
    tmp = products["tmp"]
    jw = [str(tmp / f"jwst_{i}_assign_wcs.fits") for i in range(2)]
    run_jwst([{"step": "assign_wcs", "input": r, "output": o, "distortion": products["dist"],
               "filteroffset": products["fo"]} for r, o in zip(products["rates"], jw)], tmp)
    cals = []
    for i, path in enumerate(jw):
        model = datamodels.open(path)
        assert type(model) is datamodels.ImageModel and model.meta.wcs is not None
        model = FlatFieldStep.call(model, override_flat=products["refs"]["flat"])
        model = PhotomStep.call(model, override_photom=products["refs"]["photom"],
                                override_area=products["refs"]["area"])
        cals.append(model.save(tmp / f"jw01234001001_01101_0000{i + 1}_nrca1_jwstwcs_cal.fits"))
        # the WCS jwpipe's stage-3 steps see is jwst's gWCS itself
        wcs = model_wcs(datamodels.open(cals[-1]), "test")
        ra, dec = wcs.all_pix2world([10.0, 250.0], [20.0, 280.0], 0)
        np.testing.assert_array_equal((ra, dec), model.meta.wcs([10.0, 250.0], [20.0, 280.0],
                                                                with_bounding_box=False))
    i2d = ResampleStep.call(cals)
    grid = model_wcs(i2d, "test")
    for path in cals:
        m = datamodels.open(path)
        ra, dec = m.meta.wcs([-0.5, SHAPE[1] - 0.5], [-0.5, SHAPE[0] - 0.5])
        x, y = grid.all_world2pix(ra, dec, 0)
        ny, nx = i2d.shape
        assert np.all((x > -1.5) & (x < nx + 0.5) & (y > -1.5) & (y < ny + 0.5))
    good = i2d.wht > 0
    expected = np.mean([np.mean(datamodels.open(c).data) for c in cals])
    assert np.median(i2d.data[good]) == pytest.approx(expected, rel=0.02)
