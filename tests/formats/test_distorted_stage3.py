"""Alignment and resampling on a distorted focal plane (the CRDS-format distortion reference).

Stars are drawn at known sky positions and rendered where the *true* gWCS (distortion
reference + a pointing perturbed by a few tenths of an arcsec and a small roll) puts them; the
headers carry the nominal pointing, as real exposures do. jwpipe's AssignWcs builds the nominal
gWCS, tweakreg (tied to the star catalogue) corrects it, and resample combines the exposures.
The distortion (~1" at the detector corners, tens of pixels) is thereby exercised through
every WCS call of stage 3.
"""

from __future__ import annotations

import numpy as np
import pytest
from formats_data import write_rate

from jwpipe import datamodels
from jwpipe.steps._image_common import model_wcs
from jwpipe.steps.assign_wcs import AssignWcsStep
from jwpipe.steps.resample import ResampleStep
from jwpipe.steps.tweakreg import TweakRegStep

pytest.importorskip("gwcs")

SHAPE = (512, 512)
ORIGIN = (1, 1)  # the detector corner: strongest distortion
SIGMA = 1.3  # PSF sigma, pixels
FLUX = 6000.0  # DN/s per star
NOISE = 0.05  # DN/s per pixel


def _render(wcs, ra, dec, rng):
    x, y = wcs.all_world2pix(ra, dec, 0)
    yy, xx = np.mgrid[0:SHAPE[0], 0:SHAPE[1]]
    image = rng.normal(0.0, NOISE, SHAPE)
    inside = (x > 8) & (x < SHAPE[1] - 8) & (y > 8) & (y < SHAPE[0] - 8)
    for xi, yi in zip(x[inside], y[inside]):
        x0, y0 = round(xi), round(yi)
        sl = np.s_[y0 - 7:y0 + 8, x0 - 7:x0 + 8]
        image[sl] += FLUX / (2 * np.pi * SIGMA**2) * np.exp(
            -((xx[sl] - xi) ** 2 + (yy[sl] - yi) ** 2) / (2 * SIGMA**2))
    return image.astype(np.float32)


@pytest.fixture(scope="module")
def distorted(formats_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("distorted")
    dist = str(formats_dir / "jwst_nircam_distortion_0001.asdf")
    rng = np.random.default_rng(3)
    # nominal pointings: three dithers of a few arcsec
    nominal = [(53.1625, -27.7914, 293.7), (53.16290, -27.79105, 293.7),
               (53.16215, -27.79170, 293.7)]
    # pointing errors: up to 0.4" and 0.02 deg of roll
    errors = [(0.25, -0.3, 0.015), (-0.35, 0.2, -0.02), (0.1, 0.38, 0.01)]
    cals, truths = [], []
    catalog = None
    for i, ((ra, dec, roll), (ex, ey, er)) in enumerate(zip(nominal, errors)):
        rate = write_rate(tmp / f"jw01234001001_01101_0000{i + 1}_nrca1_rate.fits", SHAPE,
                          xstart=ORIGIN[0], ystart=ORIGIN[1], seed=20 + i)
        model = datamodels.open(rate)
        cosd = np.cos(np.radians(dec))
        model.meta.wcsinfo.ra_ref = ra + ex / 3600.0 / cosd
        model.meta.wcsinfo.dec_ref = dec + ey / 3600.0
        model.meta.wcsinfo.roll_ref = roll + er
        true = AssignWcsStep.call(model, override_distortion=dist, override_filteroffset="N/A",
                                  sip_approx=False)
        true_wcs = model_wcs(true, "test")
        if catalog is None:
            corners = true_wcs.all_pix2world([-60, SHAPE[1] + 60], [-60, SHAPE[0] + 60], 0)
            n = 160
            catalog = (rng.uniform(min(corners[0]), max(corners[0]), n),
                       rng.uniform(min(corners[1]), max(corners[1]), n))
        model.data = _render(true_wcs, *catalog, rng)
        model.err = np.full(SHAPE, NOISE, np.float32)
        model.var_rnoise = np.full(SHAPE, NOISE**2, np.float32)
        model.meta.wcsinfo.ra_ref, model.meta.wcsinfo.dec_ref = ra, dec
        model.meta.wcsinfo.roll_ref = roll
        cal = AssignWcsStep.call(model, override_distortion=dist, override_filteroffset="N/A")
        cals.append(cal.save(tmp / f"jw01234001001_01101_0000{i + 1}_nrca1_cal.fits"))
        truths.append(true_wcs)
    from astropy.table import Table

    refcat = tmp / "stars.ecsv"
    Table({"RA": catalog[0], "DEC": catalog[1]}).write(refcat)
    return {"cals": cals, "truths": truths, "catalog": catalog, "refcat": str(refcat)}


def _error_px(wcs, true):
    yy, xx = np.mgrid[16:SHAPE[0]:48, 16:SHAPE[1]:48].astype(float)
    ra, dec = wcs.all_pix2world(xx.ravel(), yy.ravel(), 0)
    x, y = true.all_world2pix(ra, dec, 0)
    return np.hypot(x - xx.ravel(), y - yy.ravel())


def test_the_focal_plane_is_distorted(distorted):
    """The gWCS departs from its own best tangent-plane (linear) fit by several pixels."""
    wcs = model_wcs(datamodels.open(distorted["cals"][0]), "test")
    yy, xx = np.mgrid[0:SHAPE[0]:32, 0:SHAPE[1]:32].astype(float)
    ra, dec = wcs.all_pix2world(xx.ravel(), yy.ravel(), 0)
    from jwpipe.algorithms.image_align import tangent_plane

    xi, eta = tangent_plane(ra, dec, ra.mean(), dec.mean())
    design = np.column_stack([np.ones(xx.size), xx.ravel(), yy.ravel()])
    resid = [np.linalg.lstsq(design, v, rcond=None)[1] for v in (xi, eta)]
    rms_px = np.sqrt(sum(float(r[0]) for r in resid) / xx.size) / 0.031
    print(f"distortion: {rms_px:.2f} px rms from a linear WCS over the 512x512 corner")
    assert rms_px > 0.5


def test_tweakreg_and_resample_on_distorted_exposures(distorted):
    before = [_error_px(model_wcs(datamodels.open(c), "test"), t)
              for c, t in zip(distorted["cals"], distorted["truths"])]
    assert min(b.max() for b in before) > 5.0  # the pointing errors, in pixels
    out = TweakRegStep.call(distorted["cals"], abs_refcat=distorted["refcat"])
    after = []
    for i in range(len(out)):
        m = out[i]
        assert m.meta.cal_step.tweakreg == "COMPLETE"
        assert m.meta.wcs is not None  # the corrected gWCS, not a header approximation
        after.append(_error_px(model_wcs(m, "test"), distorted["truths"][i]))
    print(f"WCS error before tweakreg max {max(b.max() for b in before):.2f} px, after "
          f"{max(a.max() for a in after):.4f} px")
    # centroid noise of ~100 stars at S/N ~ 300: the fitted shift is good to < 0.01 px
    assert max(a.max() for a in after) < 0.05
    i2d = ResampleStep.call(out)
    grid = model_wcs(i2d, "test")
    x, y = grid.all_world2pix(*distorted["catalog"], 0)
    ny, nx = i2d.shape
    inside = (x > 10) & (x < nx - 10) & (y > 10) & (y < ny - 10)
    # isolated stars only (no neighbour within 10 px): blends bias a simple centroid
    sep = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :])
    np.fill_diagonal(sep, np.inf)
    inside &= sep.min(axis=1) > 10
    data = np.nan_to_num(i2d.data)
    offsets = []
    for xi, yi in zip(x[inside], y[inside]):
        x0, y0 = round(xi), round(yi)
        cut = data[y0 - 4:y0 + 5, x0 - 4:x0 + 5]
        if i2d.wht[y0 - 4:y0 + 5, x0 - 4:x0 + 5].min() <= 0 or cut.sum() <= 0:
            continue
        yy, xx = np.mgrid[y0 - 4:y0 + 5, x0 - 4:x0 + 5]
        offsets.append((np.sum(xx * cut) / cut.sum() - xi, np.sum(yy * cut) / cut.sum() - yi))
    offsets = np.array(offsets)
    assert len(offsets) > 40
    print(f"{len(offsets)} isolated stars on the mosaic: median offset "
          f"{np.median(offsets, axis=0)} px, 90th percentile "
          f"{np.percentile(np.hypot(*offsets.T), 90):.4f} px")
    # stars sit where the catalogue says, on the mosaic: no residual distortion pattern
    assert np.abs(np.median(offsets, axis=0)).max() < 0.05
    assert np.percentile(np.hypot(*offsets.T), 90) < 0.15


@pytest.mark.slow
def test_image3_pipeline_on_distorted_exposures(distorted, tmp_path):
    """Every Image3 step (tweakreg, skymatch, outlier_detection, resample, source_catalog)
    runs on gWCS members; the catalogue's positions are the stars' to a few mas."""
    from astropy.coordinates import SkyCoord

    from jwpipe.pipeline import Image3Pipeline

    pipe = Image3Pipeline()
    pipe.tweakreg.abs_refcat = distorted["refcat"]
    i2d = pipe.run(distorted["cals"])
    assert i2d.meta.cal_step.outlier_detection == "COMPLETE"
    cat = pipe.catalog
    found = SkyCoord(cat["sky_centroid"])  # jwst's column: ICRS positions
    true = SkyCoord(*distorted["catalog"], unit="deg")
    _, sep, _ = found.match_to_catalog_sky(true)
    sep = sep.to_value("mas")
    matched = sep < 100
    assert matched.sum() > 60
    print(f"Image3 catalogue: {matched.sum()} stars, median error {np.median(sep[matched]):.2f}"
          " mas")
    assert np.median(sep[matched]) < 5.0
