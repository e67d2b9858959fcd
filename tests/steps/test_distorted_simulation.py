"""AssignWcs on the simulator's distorted focal plane, against the simulator's truth.

The simulator writes a NIRCam-like CRDS ``distortion`` reference (and ``filteroffset``) per
detector and renders the scene through them; AssignWcs selects them from the simulated CRDS
cache and builds the gWCS. Its positions must agree with the truth to the accuracy of the
reference's fitted polynomial inverse (~1e-5 pixel), far below 0.01".
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from test_image_simdata import simulate_rates

from jwpipe import datamodels
from jwpipe.steps import AssignWcsStep
from jwpipe.steps._image_common import model_wcs

pytest.importorskip("gwcs")

SIZE = 256
PIXEL = 0.031  # arcsec


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    return simulate_rates(tmp_path_factory.mktemp("distorted") / "sim", n_exposures=2,
                          size=SIZE, seed=21, detectors=("nrca1", "nrcb3"), n_stars=300,
                          n_galaxies=20)


@pytest.fixture
def refs(sim, monkeypatch):
    monkeypatch.setenv("JWPIPE_REFS", str(sim.sim.store_dir))


def _sources(truth):
    src = Table.read(truth, hdu="SOURCES")
    cat = Table.read(truth.parent / "sources.ecsv", format="ascii.ecsv")
    assert list(src["id"]) == list(cat["id"])
    # on the array or within 20 px of it (the reference's inverse is fitted over +-10 %)
    near = ((src["x"] > -20) & (src["x"] < SIZE + 19) & (src["y"] > -20)
            & (src["y"] < SIZE + 19))
    return src[near], cat[near]


def _sep_mas(ra1, dec1, ra2, dec2):
    dra = (np.asarray(ra1) - ra2) * np.cos(np.radians(dec2))
    return np.hypot(dra, np.asarray(dec1) - dec2) * 3.6e6


def test_assign_wcs_selects_the_simulated_distortion(sim, refs):
    for rate in sim.rates:
        out = AssignWcsStep.call(str(rate))
        assert out.meta.cal_step.assign_wcs == "COMPLETE"
        det = out.meta.instrument.detector.lower()
        dist = out.meta.ref_file.distortion.name
        assert dist.startswith("crds://jwst_nircam_distortion_") and dist.endswith(".asdf")
        assert out.meta.ref_file.filteroffset.name.startswith("crds://jwst_nircam_filteroffset")
        assert out.meta.wcs is not None  # a gWCS, not the header TAN
        assert [s.frame.name for s in out.meta.wcs.pipeline] == [
            "detector", "v2v3", "v2v3vacorr", "world"]
        assert det in {"nrca1", "nrcb3"}
    # each detector has its own reference
    names = {AssignWcsStep.call(str(r)).meta.ref_file.distortion.name for r in sim.rates}
    assert len(names) == 2


def test_assign_wcs_recovers_truth_positions(sim, refs):
    """Header pointing -> the nominal positions, true pointing -> the true positions.

    Pixel -> sky is the reference's forward polynomial and exact rotations: agreement to
    float64 rounding (~1e-7 mas). Sky -> pixel goes through the reference's fitted inverse,
    accurate to 1e-5 px over the array and 10 % around it (docs/simulate.md): 1e-4 px = 3 uas
    leaves a margin of 10. Both are far below 0.01".
    """
    worst_sky, worst_pix = 0.0, 0.0
    for rate, truth in zip(sim.rates, sim.truths, strict=True):
        src, cat = _sources(truth)
        assert len(src) > 20
        nominal = model_wcs(AssignWcsStep.call(str(rate)))
        with datamodels.open(rate) as m:  # the true pointing, from the truth's keywords
            tp = fits.getheader(truth)
            m.meta.wcsinfo.ra_ref, m.meta.wcsinfo.dec_ref = tp["RA_REF"], tp["DEC_REF"]
            m.meta.wcsinfo.roll_ref = tp["ROLL_REF"]
            true = model_wcs(AssignWcsStep.call(m))
        for wcs, (x, y) in ((nominal, (src["x_nominal"], src["y_nominal"])),
                            (true, (src["x"], src["y"]))):
            ra, dec = wcs.all_pix2world(x, y, 0)
            sep = _sep_mas(ra, dec, cat["ra"], cat["dec"])
            px, py = wcs.all_world2pix(cat["ra"], cat["dec"], 0)
            dpix = np.hypot(px - x, py - y)
            worst_sky, worst_pix = max(worst_sky, sep.max()), max(worst_pix, dpix.max())
            assert sep.max() < 1e-3  # mas
            assert dpix.max() < 1e-4  # px
    print(f"AssignWcs vs truth: pixel -> sky max {worst_sky:.2e} mas, sky -> pixel max "
          f"{worst_pix:.2e} px ({worst_pix * PIXEL * 1e3:.2e} mas)")


def test_ignoring_the_distortion_misplaces_sources_by_pixels(sim, refs):
    """Without the distortion reference (a TAN WCS from the pointing) the sources near the
    corners are off by the distortion, several pixels; the gWCS puts them where they are,
    and the TAN-SIP header approximation within its fitting tolerance (0.01 px)."""
    rate, truth = sim.rates[0], sim.truths[0]
    src, cat = _sources(truth)
    x, y = np.asarray(src["x_nominal"]), np.asarray(src["y_nominal"])
    on = (x > 0) & (x < SIZE - 1) & (y > 0) & (y < SIZE - 1)
    corner = on & (np.hypot(x - (SIZE - 1) / 2, y - (SIZE - 1) / 2) > 0.55 * SIZE)
    assert corner.sum() >= 3
    plain = model_wcs(AssignWcsStep.call(str(rate), override_distortion="N/A"))
    px, py = plain.all_world2pix(cat["ra"], cat["dec"], 0)
    off = np.hypot(px - x, py - y)
    print(f"distortion ignored: sources off by up to {off[on].max():.2f} px on the array, "
          f"median {np.median(off[corner]):.2f} px in the corners")
    assert off[corner].max() > 1.5
    out = AssignWcsStep.call(str(rate))
    # at the array's corners the distortion reaches CORNER_DISPLACEMENT (3 px at 256 px)
    gx = np.array([-0.5, SIZE - 0.5, SIZE - 0.5, -0.5])
    gy = np.array([-0.5, -0.5, SIZE - 0.5, SIZE - 0.5])
    cx, cy = plain.all_world2pix(*model_wcs(out).all_pix2world(gx, gy, 0), 0)
    corners = np.hypot(cx - gx, cy - gy)
    print(f"array corners: off by {np.round(corners, 2)} px without the distortion")
    assert corners.max() > 2.5
    path = out.save(sim.rates[0].parent / "sip_check_assign_wcs.fits")
    from astropy.wcs import WCS

    header = fits.getheader(path, "SCI")
    assert header["CTYPE1"] == "RA---TAN-SIP"
    sx, sy = WCS(header).all_world2pix(cat["ra"][on], cat["dec"][on], 0)
    assert np.hypot(sx - x[on], sy - y[on]).max() < 0.02


def test_calibrated_sky_is_flat_and_point_sources_keep_their_flux(sim, refs):
    """The flat reference includes the pixel area, as JWST's flats do: the calibrated sky is
    uniform in MJy/sr although pixel areas differ by several per cent, and a star's flux is
    the sum of MJy/sr x PIXAR_SR x AREA (checked noise-free, on the truth rate)."""
    from jwpipe.steps import FlatFieldStep, PhotomStep

    cal = PhotomStep.call(FlatFieldStep.call(str(sim.rates[0])))
    with fits.open(sim.truths[0]) as hdul:
        truth_rate = hdul["RATE"].data.astype(float)
        area = hdul["AREA"].data.astype(float)
        background = hdul[0].header["BKGRATE"] * hdul[0].header["PHOTMJSR"]  # MJy/sr
    np.testing.assert_allclose(cal.area, area, rtol=1e-6)
    with datamodels.open(sim.rates[0]) as rate_model:
        data = np.asarray(rate_model.data, float)
    # the calibration factor of each pixel (flat and PHOTMJSR), applied to the truth
    good = (data != 0) & (truth_rate > 0) & ((cal.dq & 1) == 0) & np.isfinite(cal.data)
    factor = np.divide(cal.data, data, out=np.zeros_like(data), where=good)
    calibrated = truth_rate * factor
    src, cat = _sources(sim.truths[0])
    reach = np.where(cat["kind"] == "star", 8.0, 5.0 * cat["r_eff_pix"] + 2.0)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    sky = good.copy()
    for x0, y0, r in zip(src["x"], src["y"], reach):
        sky &= np.hypot(xx - x0, yy - y0) > r
    assert sky.sum() > 1000
    assert np.abs(calibrated[sky] / background - 1).max() < 1e-4
    assert area[sky].max() - area[sky].min() > 0.02  # though pixel areas differ
    pixar = cal.meta.photometry.pixelarea_steradians
    d = np.hypot(src["x"][:, None] - src["x"][None, :], src["y"][:, None] - src["y"][None, :])
    np.fill_diagonal(d, np.inf)
    isolated = np.all(d > 11.0 + reach[None, :], axis=1)
    inside = (src["x"] > 14) & (src["x"] < SIZE - 15) & (src["y"] > 14) & (src["y"] < SIZE - 15)
    checked = 0
    for k in np.flatnonzero((cat["kind"] == "star") & isolated & inside):
        x0, y0 = round(float(src["x"][k])), round(float(src["y"][k]))
        box = np.s_[y0 - 9:y0 + 10, x0 - 9:x0 + 10]
        if not good[box].all():
            continue
        flux_ujy = ((calibrated[box] - background) * area[box]).sum() * pixar * 1e12
        assert flux_ujy == pytest.approx(cat["flux_ujy"][k], rel=1e-3)
        # without the area the flux would be off by the area's departure from 1
        checked += 1
    assert checked >= 2
