"""AssignWcs from CRDS-format references (stdatamodels-written), checked against jwst itself.

jwst's own AssignWcsStep runs in a subprocess on the same rate files and references (every
reference an override, an empty read-only CRDS cache, no server). Agreement is required to
1 mas over the whole detector: the two implement the same transform chain, so anything more
than rounding is a bug.
"""

from __future__ import annotations

import numpy as np
import pytest
from formats_data import NPIX, run_jwst, write_rate

from jwpipe import datamodels
from jwpipe.steps._image_common import model_wcs, rotate_shift_wcs
from jwpipe.steps.assign_wcs import AssignWcsStep

pytest.importorskip("gwcs")

SUB_SHAPE = (400, 400)
SUB_START = (1001, 1201)  # XSTART, YSTART (1-based)


def _grid(shape, step=32):
    yy, xx = np.mgrid[0:shape[0]:step, 0:shape[1]:step].astype(np.float64)
    ny, nx = shape
    # include the last row/column and the outer pixel edges
    xx = np.concatenate([xx.ravel(), [nx - 1, -0.5, nx - 0.5, nx - 0.5, -0.5]])
    yy = np.concatenate([yy.ravel(), [ny - 1, -0.5, -0.5, ny - 0.5, ny - 0.5]])
    return xx, yy


def _sep_mas(ra1, dec1, ra2, dec2):
    from astropy.coordinates import SkyCoord

    a = SkyCoord(ra1, dec1, unit="deg")
    b = SkyCoord(ra2, dec2, unit="deg")
    return a.separation(b).to_value("mas")


@pytest.fixture(scope="module")
def runs(formats_dir, tmp_path_factory):
    """jwpipe and jwst AssignWcs on a full-frame and a subarray rate file."""
    tmp = tmp_path_factory.mktemp("assign_wcs")
    dist = str(formats_dir / "jwst_nircam_distortion_0001.asdf")
    fo = str(formats_dir / "jwst_nircam_filteroffset_0001.asdf")
    full = str(formats_dir / "jw01234001001_01101_00001_nrca1_rate.fits")
    sub = write_rate(tmp / "jw01234001001_01101_00002_nrca1_rate.fits", SUB_SHAPE,
                     xstart=SUB_START[0], ystart=SUB_START[1], seed=1)
    tasks, out = [], {}
    for name, rate in (("full", full), ("sub", sub)):
        jw = str(tmp / f"{name}_jwst_assign_wcs.fits")
        tasks.append({"step": "assign_wcs", "input": rate, "output": jw,
                      "distortion": dist, "filteroffset": fo})
        ours = AssignWcsStep.call(rate, override_distortion=dist, override_filteroffset=fo)
        ours_path = ours.save(tmp / f"{name}_jwpipe_assign_wcs.fits")
        out[name] = (ours_path, jw)
    run_jwst(tasks, tmp)
    return out


@pytest.mark.parametrize("name", ["full", "sub"])
def test_gwcs_agrees_with_jwst_assign_wcs(runs, name):
    ours_path, jwst_path = runs[name]
    ours = datamodels.open(ours_path)
    jw = datamodels.open(jwst_path)  # jwst's product, read by jwpipe
    assert [s.frame.name for s in ours.meta.wcs.pipeline] == \
        [s.frame.name for s in jw.meta.wcs.pipeline]
    xx, yy = _grid(ours.shape)
    ra1, dec1 = ours.meta.wcs(xx, yy, with_bounding_box=False)
    ra2, dec2 = jw.meta.wcs(xx, yy, with_bounding_box=False)
    sep = _sep_mas(ra1, dec1, ra2, dec2)
    print(f"{name}: jwpipe vs jwst gWCS over {sep.size} points: max {sep.max():.2e} mas, "
          f"median {np.median(sep):.2e} mas")
    assert np.all(np.isfinite(sep))
    assert sep.max() < 1.0
    # and back: world -> pixel through each inverse
    x1, y1 = ours.meta.wcs.invert(ra2, dec2, with_bounding_box=False)
    assert np.hypot(x1 - xx, y1 - yy).max() < 1e-3


def test_filteroffset_and_subarray_move_the_sky(runs, formats_dir):
    """The filter offset (0.71, -0.43 px) and the subarray origin are applied, as in jwst."""
    full = datamodels.open(runs["full"][0])
    sub = datamodels.open(runs["sub"][0])
    x, y = 37.0, 222.0
    ra_s, dec_s = sub.meta.wcs(x, y)
    ra_f, dec_f = full.meta.wcs(x + SUB_START[0] - 1, y + SUB_START[1] - 1)
    assert _sep_mas(ra_s, dec_s, ra_f, dec_f) < 1e-3
    no_offset = AssignWcsStep.call(
        runs["full"][0], override_distortion=str(formats_dir / "jwst_nircam_distortion_0001.asdf"),
        override_filteroffset="N/A")
    ra0, dec0 = no_offset.meta.wcs(1000.0 + 0.71, 1000.0 - 0.43)
    ra1, dec1 = full.meta.wcs(1000.0, 1000.0)
    assert _sep_mas(ra0, dec0, ra1, dec1) < 1e-3
    assert _sep_mas(*no_offset.meta.wcs(1000.0, 1000.0), ra1, dec1) > 10.0


def test_sip_header_approximates_the_gwcs(runs):
    """The TAN-SIP header written for FITS readers is within jwst's 0.01 px of the gWCS."""
    from astropy.wcs import WCS

    ours = datamodels.open(runs["full"][0])
    header = ours.header("SCI")
    assert header["CTYPE1"] == "RA---TAN-SIP"
    sip = WCS(header)
    xx, yy = _grid(ours.shape, 64)
    ra, dec = ours.meta.wcs(xx, yy, with_bounding_box=False)
    px, py = sip.all_world2pix(ra, dec, 0)
    assert np.hypot(px - xx, py - yy).max() < 0.01
    jw = datamodels.open(runs["full"][1])
    assert jw.header("SCI")["CTYPE1"] == "RA---TAN-SIP"
    assert ours.meta.wcsinfo.s_region.startswith("POLYGON ICRS")


def test_adapter_answers_astropy_wcs_calls(runs):
    ours = datamodels.open(runs["full"][0])
    wcs = model_wcs(ours, "test")
    assert wcs.pixel_shape == (NPIX, NPIX)
    xx, yy = _grid(ours.shape, 256)
    ra, dec = wcs.all_pix2world(xx + 1, yy + 1, 1)
    ra0, dec0 = ours.meta.wcs(xx, yy, with_bounding_box=False)
    assert np.array_equal(ra, ra0) and np.array_equal(dec, dec0)
    x, y = wcs.all_world2pix(ra, dec, 0)
    assert np.hypot(x - xx, y - yy).max() < 1e-3
    # the reference point: the sky position of the array centre
    c = wcs.wcs.crval
    assert _sep_mas(c[0], c[1], *ours.meta.wcs((NPIX - 1) / 2, (NPIX - 1) / 2)) < 1e-6


def test_tangent_plane_correction_of_a_gwcs(runs):
    """rotate_shift_wcs on a gWCS moves every position by R p + shift on the tangent plane."""
    from jwpipe.algorithms.image_align import apply_correction, tangent_plane

    ours = datamodels.open(runs["full"][0])
    wcs = model_wcs(ours, "test")
    tp = (53.16, -27.79)
    shift, rot = np.array([0.35, -0.21]), 0.01
    new = rotate_shift_wcs(wcs, shift, rot, tp)
    xx, yy = _grid(ours.shape, 256)
    before = np.column_stack(tangent_plane(*wcs.all_pix2world(xx, yy, 0), *tp))
    after = np.column_stack(tangent_plane(*new.all_pix2world(xx, yy, 0), *tp))
    expected = apply_correction(before, shift, rot)
    assert np.abs(after - expected).max() < 1e-6  # arcsec
    x, y = new.all_world2pix(*new.all_pix2world(xx, yy, 0), 0)
    assert np.hypot(x - xx, y - yy).max() < 1e-3
    # stored and read back: the corrected gWCS round-trips through the file
    from jwpipe.steps._image_common import set_model_wcs

    set_model_wcs(ours, new)
    back = datamodels.ImageModel(ours.save(runs["full"][0].replace(".fits", "_tp.fits")))
    ra, dec = back.meta.wcs(xx, yy, with_bounding_box=False)
    assert _sep_mas(ra, dec, *new.all_pix2world(xx, yy, 0)).max() < 1e-6


def test_missing_pointing_keyword_is_a_clear_error(formats_dir, tmp_path):
    from jwpipe.errors import StepInputError

    model = datamodels.open(formats_dir / "jw01234001001_01101_00001_nrca1_rate.fits")
    model.meta.wcsinfo.v2_ref = None
    with pytest.raises(StepInputError, match="V2_REF"):
        AssignWcsStep.call(model, override_distortion=str(
            formats_dir / "jwst_nircam_distortion_0001.asdf"), override_filteroffset="N/A")


def test_reference_models_as_overrides(formats_dir):
    """Models (not paths) given as override_distortion/override_filteroffset are used."""
    dist = datamodels.open(formats_dir / "jwst_nircam_distortion_0001.asdf")
    fo = datamodels.open(formats_dir / "jwst_nircam_filteroffset_0001.asdf")
    rate = str(formats_dir / "jw01234001001_01101_00001_nrca1_rate.fits")
    by_model = AssignWcsStep.call(rate, override_distortion=dist, override_filteroffset=fo)
    by_path = AssignWcsStep.call(
        rate, override_distortion=str(formats_dir / "jwst_nircam_distortion_0001.asdf"),
        override_filteroffset=str(formats_dir / "jwst_nircam_filteroffset_0001.asdf"))
    xx, yy = _grid(by_model.shape, 256)
    assert np.array_equal(by_model.meta.wcs(xx, yy), by_path.meta.wcs(xx, yy))
    assert by_path.meta.ref_file.distortion.name.endswith("jwst_nircam_distortion_0001.asdf")
    assert by_path.meta.ref_file.filteroffset.name.endswith(
        "jwst_nircam_filteroffset_0001.asdf")


def test_unreadable_distortion_reference_is_a_clear_error(formats_dir, tmp_path):
    from jwpipe.errors import ReferenceFileError

    junk = tmp_path / "jwst_nircam_distortion_0099.asdf"
    junk.write_bytes(b"#ASDF 1.0.0\ngarbage")
    rate = str(formats_dir / "jw01234001001_01101_00001_nrca1_rate.fits")
    with pytest.raises(ReferenceFileError, match=r"jwst_nircam_distortion_0099\.asdf"):
        AssignWcsStep.call(rate, override_distortion=str(junk), override_filteroffset="N/A")
