"""Tests of jwpipe.algorithms.image_geometry (corners, footprints, grids, pixel maps)."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.wcs import WCS, Sip

from jwpipe.algorithms.image_geometry import (
    exact_pixel_map,
    footprint_region,
    isolated_footprints,
    make_output_wcs,
    pixel_corners,
    pixel_map,
    pixel_scale_deg,
    y_axis_angle,
)

ARCSEC = 1.0 / 3600.0


def sip_wcs(ra, dec, roll, n, distortion=1.0, quintic=1e-17):
    """A NIRCam-like detector WCS: 0.031"/px with ~12 px of SIP distortion at the corners
    of a 2048 x 2048 frame (scaled by ``distortion``), including 5th-order terms that a
    cubic spline cannot reproduce exactly."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [n / 2 + 0.5, n / 2 + 0.5]
    th = np.radians(roll)
    w.wcs.cd = 0.031 * ARCSEC * np.array([[-np.cos(th), np.sin(th)], [np.sin(th), np.cos(th)]])
    a, b = np.zeros((6, 6)), np.zeros((6, 6))
    a[5, 0], a[2, 3], b[0, 5], b[4, 1] = quintic, -2 * quintic, quintic, 3 * quintic
    a[2, 0], a[1, 1], a[0, 2], a[3, 0], a[1, 2] = 4e-6, -2e-6, 3e-6, -1e-9, 2e-9
    b[2, 0], b[1, 1], b[0, 2], b[0, 3], b[2, 1] = -2e-6, 5e-6, 1e-6, 1.5e-9, -1e-9
    w.sip = Sip(a * distortion, b * distortion, None, None, w.wcs.crpix)
    w.pixel_shape = (n, n)
    return w


def test_pixel_corners():
    x, y = pixel_corners((3, 5))
    assert x.tolist() == [-0.5, 4.5, 4.5, -0.5]
    assert y.tolist() == [-0.5, -0.5, 2.5, 2.5]
    x, y = pixel_corners((2, 2, 4), n_per_edge=2)  # leading axes ignored
    assert x.tolist() == [-0.5, 1.5, 3.5, 3.5, 3.5, 1.5, -0.5, -0.5]
    assert y.tolist() == [-0.5, -0.5, -0.5, 0.5, 1.5, 1.5, 1.5, 0.5]


def test_grid_geometry():
    w = sip_wcs(30.0, -60.0, 40.0, 256, distortion=0.0)
    assert pixel_scale_deg(w, (256, 256)) == pytest.approx(0.031 * ARCSEC, rel=1e-6)
    assert y_axis_angle(w, (256, 256)) == pytest.approx(40.0, abs=1e-4)
    out, shape = make_output_wcs([w], [(256, 256)], rotation=40.0)
    assert shape in ((256, 256), (257, 257))  # tangent point off the detector centre
    assert out.pixel_shape == (shape[1], shape[0])
    region = footprint_region(w, (256, 256))
    assert region.startswith("POLYGON ICRS ") and len(region.split()) == 10
    far = sip_wcs(30.0, -59.0, 40.0, 256, distortion=0.0)
    near = sip_wcs(30.0 + 2 * ARCSEC, -60.0, 40.0, 256, distortion=0.0)
    big, _ = make_output_wcs([w, far, near], [(256, 256)] * 3, rotation=40.0)
    assert isolated_footprints([w, far, near], [(256, 256)] * 3, big) == [1]


@pytest.mark.parametrize("n", [2048, 300, 37])
def test_interpolated_pixel_map_within_tolerance(n):
    w = sip_wcs(10.0, 20.0, 30.0, n)
    other = sip_wcs(10.0 + 2 * ARCSEC, 20.0 + 1 * ARCSEC, 30.2, n)
    out, _ = make_output_wcs([w, other], [(n, n)] * 2, rotation=30.0,
                             pixel_scale=0.04 * ARCSEC)
    exact = exact_pixel_map(w, out, (n, n))
    fast = pixel_map(w, out, (n, n))
    assert fast.shape == (n, n, 2)
    # every pixel, not just the check points the refinement used
    assert np.abs(fast - exact).max() < 0.01


def test_pixel_map_refines_until_tolerance_met():
    # strong distortion: the first coarse grid misses the tolerance and is refined
    w = sip_wcs(10.0, 20.0, 0.0, 512, quintic=1e-12)
    out, _ = make_output_wcs([w], [(512, 512)])
    exact = exact_pixel_map(w, out, (512, 512))
    err_coarse = np.abs(pixel_map(w, out, (512, 512), step=256, tol=10.0) - exact).max()
    err_fine = np.abs(pixel_map(w, out, (512, 512), step=256, tol=1e-3) - exact).max()
    assert err_coarse > 1e-3
    assert err_fine < 1e-3
