"""Image2 steps: WCS from the pointing, flat field, photometric calibration, background."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from test_image_simdata import simulate_rates

from jwpipe import datamodels
from jwpipe.errors import ReferenceFileError, StepInputError
from jwpipe.steps import AssignWcsStep, BackgroundStep, FlatFieldStep, PhotomStep
from jwpipe.steps._image_common import model_wcs


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    return simulate_rates(tmp_path_factory.mktemp("image2") / "sim", n_exposures=2, size=96,
                          seed=5)


@pytest.fixture
def refs(sim, monkeypatch):
    monkeypatch.setenv("JWPIPE_REFS", str(sim.sim.store_dir))
    return Path(sim.sim.store_dir)


def _ref(refs: Path, reftype: str) -> Path:
    return next(refs.rglob(f"*_{reftype}_*.fits"))


def test_assign_wcs_from_pointing_round_trips(sim, refs, tmp_path):
    rate = sim.rates[0]
    with datamodels.open(rate) as m:
        nominal = model_wcs(m)  # the simulator's nominal (commanded) WCS
    with datamodels.open(rate) as m:  # remove the header WCS: only the pointing is left
        for key in ("CRVAL1", "CRVAL2", "PC1_1", "PC1_2", "PC2_1", "PC2_2", "CTYPE1", "CTYPE2"):
            del m.header("SCI")[key]
        bare = m.save(tmp_path / "bare_rate.fits")
    out = AssignWcsStep.call(bare, override_distortion="N/A")  # the distortion-free WCS
    assert out.meta.cal_step.assign_wcs == "COMPLETE"
    path = out.save(tmp_path / "wcs.fits")
    with datamodels.open(path) as back:
        wcs = model_wcs(back)
    yy, xx = np.mgrid[0:96:10, 0:96:10]
    ra, dec = wcs.all_pix2world(xx.ravel(), yy.ravel(), 0)
    x, y = nominal.all_world2pix(ra, dec, 0)
    # the WCS built from RA_REF/DEC_REF/ROLL_REF equals the simulator's nominal WCS
    assert np.abs(x - xx.ravel()).max() < 1e-6 and np.abs(y - yy.ravel()).max() < 1e-6
    assert back.meta.wcsinfo.s_region.startswith("POLYGON ICRS")


def test_assign_wcs_with_sip_distortion_reference(sim, refs, tmp_path):
    ref = tmp_path / "distortion.fits"
    hdr = fits.Header({"REFTYPE": "DISTORTION", "A_ORDER": 2, "B_ORDER": 2, "A_2_0": 1e-5,
                       "B_0_2": -2e-5})
    fits.PrimaryHDU(header=hdr).writeto(ref)
    out = AssignWcsStep.call(str(sim.rates[0]), override_distortion=str(ref))
    wcs = model_wcs(out)
    assert out.header("SCI")["CTYPE1"] == "RA---TAN-SIP"
    plain = model_wcs(AssignWcsStep.call(str(sim.rates[0]), override_distortion="N/A"))
    # at u = x - (CRPIX1 - 1) = -47.5 px the SIP term adds 1e-5 * 47.5^2 px in x
    ra, dec = wcs.all_pix2world([0.0], [47.5], 0)
    x, y = plain.all_world2pix(ra, dec, 0)
    assert x[0] == pytest.approx(1e-5 * 47.5**2, rel=1e-3)
    assert y[0] == pytest.approx(47.5, abs=1e-6)


def test_assign_wcs_rejects_non_sip_distortion_and_missing_pointing(sim, refs, tmp_path):
    ref = tmp_path / "distortion.fits"
    fits.PrimaryHDU(header=fits.Header({"REFTYPE": "DISTORTION"})).writeto(ref)
    with pytest.raises(ReferenceFileError, match="SIP"):
        AssignWcsStep.call(str(sim.rates[0]), override_distortion=str(ref))
    with datamodels.open(sim.rates[0]) as m:
        del m.header("SCI")["RA_REF"]
        bad = m.save(tmp_path / "noptg_rate.fits")
    with pytest.raises(StepInputError, match="RA_REF"):
        AssignWcsStep.call(bad)


def test_flat_and_photom_against_truth(sim, refs):
    flat_model = FlatFieldStep.call(str(sim.rates[0]))
    cal = PhotomStep.call(flat_model)
    assert cal.meta.cal_step.flat_field == "COMPLETE"
    assert cal.meta.cal_step.photom == "COMPLETE"
    assert cal.meta.bunit_data == "MJy/sr" and cal.meta.bunit_err == "MJy/sr"
    conv = cal.meta.photometry.conversion_megajanskys
    assert conv == pytest.approx(0.22, rel=1e-6)
    assert cal.meta.photometry.conversion_microjanskys == pytest.approx(
        conv * 1e12 * (np.pi / 180 / 3600) ** 2, rel=1e-9)
    assert cal.meta.photometry.pixelarea_steradians == pytest.approx(2.2587757748e-14, rel=1e-6)
    # the relative pixel area of the distorted simulated detector, as the truth has it
    np.testing.assert_array_equal(cal.area, fits.getdata(sim.truths[0], "AREA"))
    with datamodels.FlatModel(_ref(refs, "flat")) as flat:
        f, ferr = flat.data.astype(float), flat.err.astype(float)
    with fits.open(sim.truths[0]) as hdul:
        truth_rate = hdul["RATE"].data.astype(float)
    good = np.isfinite(cal.data)
    # the truth (sky + sources) x flat, divided by the flat and converted: sky + sources
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = truth_rate / f * conv
        flat_term = ferr / f
    pull = ((cal.data - expected) / np.sqrt(cal.var_poisson + cal.var_rnoise))[good]
    assert abs(pull.mean()) < 5 / np.sqrt(pull.size) and abs(pull.std() - 1) < 0.05
    # VAR_FLAT = SCI^2 (flat_err/flat)^2 in MJy/sr^2; ERR is the quadrature sum
    np.testing.assert_allclose(cal.var_flat[good], (cal.data**2 * flat_term**2)[good],
                               rtol=1e-4, atol=1e-12)
    np.testing.assert_allclose(cal.err[good] ** 2, (cal.var_poisson + cal.var_rnoise
                                                    + cal.var_flat)[good], rtol=1e-4)
    # pixels without a flat (dead) are DO_NOT_USE | NO_FLAT_FIELD and NaN everywhere
    nflat = datamodels.dqflags.pixel["NO_FLAT_FIELD"] | 1
    dead = (f == 0)
    assert np.all(cal.dq[dead] & nflat == nflat) and np.all(np.isnan(cal.data[dead]))


def test_flat_and_photom_round_trip(sim, refs):
    with datamodels.open(sim.rates[0]) as rate:
        original = rate.data.copy()
        good = (rate.dq & 1) == 0
    cal = PhotomStep.call(FlatFieldStep.call(str(sim.rates[0])))
    back = FlatFieldStep.call(PhotomStep.call(cal, inverse=True), inverse=True)
    assert back.meta.bunit_data == "DN/s"
    ok = good & np.isfinite(back.data)
    assert ok.sum() > 0.99 * good.sum()
    np.testing.assert_allclose(back.data[ok], original[ok], rtol=2e-6, atol=1e-6)


def test_photom_refuses_calibrated_data_and_unknown_filter(sim, refs, tmp_path):
    cal = PhotomStep.call(str(sim.rates[0]))
    with pytest.raises(StepInputError, match="already in MJy/sr"):
        PhotomStep.call(cal)
    with datamodels.open(sim.rates[0]) as m:
        m.meta.instrument.filter = "F999W"
        odd = m.save(tmp_path / "odd_rate.fits")
    with pytest.raises(ReferenceFileError, match="F999W"):
        PhotomStep.call(odd, override_photom=str(_ref(refs, "photom")),
                        override_area="N/A")


def test_flat_of_another_detector_is_an_error(sim, refs, tmp_path):
    with fits.open(_ref(refs, "flat")) as hdul:
        hdul[0].header["DETECTOR"] = "NRCB4"
        hdul.writeto(tmp_path / "other_flat.fits")
    with pytest.raises(ReferenceFileError, match="DETECTOR"):
        FlatFieldStep.call(str(sim.rates[0]), override_flat=str(tmp_path / "other_flat.fits"))


def test_background_subtraction(sim, refs, tmp_path):
    rng = np.random.default_rng(3)
    bkgs = []
    with datamodels.open(sim.rates[0]) as m:
        shape = m.data.shape
        for k, level in enumerate((0.50, 0.52, 0.48, 5.0)):  # the last one is clipped
            b = datamodels.ImageModel(m)
            b.data = (level + 0.01 * rng.normal(size=shape)).astype(np.float32)
            b.err = np.full(shape, 0.01, np.float32)
            b.dq = np.zeros(shape, np.uint32)
            if k == 3:
                b.data[:10] = 0.5  # a good value only in the first rows
            bkgs.append(b.save(tmp_path / f"bkg{k}_rate.fits"))
        original = m.data.copy()
    out = BackgroundStep.call(str(sim.rates[0]), bkg_list=bkgs[:3])
    assert out.meta.cal_step.bkg_subtract == "COMPLETE"
    diff = original - out.data
    assert np.nanmean(diff) == pytest.approx(0.50, abs=0.002)
    # a pixel-wise outlier member is clipped (the clipped mean of 4 members)
    # (with 4 values a single outlier is at most 1.5 std from the mean: clip at 1.4)
    four = BackgroundStep.call(str(sim.rates[0]), bkg_list=bkgs, sigma=1.4)
    assert np.nanmedian(original - four.data) == pytest.approx(0.50, abs=0.01)
    with pytest.raises(StepInputError, match="does not exist"):
        BackgroundStep.call(str(sim.rates[0]), bkg_list=[str(tmp_path / "nope_rate.fits")])
    skipped = BackgroundStep.call(str(sim.rates[0]))
    assert skipped.meta.cal_step.bkg_subtract == "SKIPPED"
    assert os.path.exists(sim.rates[0])
