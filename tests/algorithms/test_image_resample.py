"""Tests of jwpipe.algorithms.image_resample (drizzle's C kernels behind jwpipe's API)."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.wcs import WCS
from test_image_synthetic import render_stars

from jwpipe.algorithms.image_geometry import make_output_wcs, pixel_map
from jwpipe.algorithms.image_resample import (
    KERNELS,
    DrizzleAccumulator,
    blot,
    drizzle_one,
    ivm_weights,
)
from jwpipe.errors import StepInputError

ARCSEC = 1.0 / 3600.0


def tan_wcs(ra, dec, scale_arcsec, rot_deg, shape):
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [(shape[1] + 1) / 2, (shape[0] + 1) / 2]
    th = np.radians(rot_deg)
    w.wcs.cd = (
        scale_arcsec * ARCSEC * np.array([[-np.cos(th), np.sin(th)], [np.sin(th), np.cos(th)]])
    )
    return w


def _star_mosaic(kernel, pixfrac):
    shape = (96, 96)
    rng = np.random.default_rng(4)
    total_in = []
    wcss = [
        tan_wcs(10 + dx * ARCSEC, 20 + dy * ARCSEC, 0.031, 25.0, shape)
        for dx, dy in [(0, 0), (0.21, -0.13), (-0.17, 0.26), (0.05, 0.3)]
    ]
    out, oshape = make_output_wcs(wcss, [shape] * 4, pixel_scale=0.04 * ARCSEC)
    acc = DrizzleAccumulator(oshape, kernel=kernel, pixfrac=pixfrac, n_exposures=4)
    for w in wcss:
        # the star sits at the same sky position in every exposure
        sx, sy = w.world_to_pixel_values(10.0, 20.0)
        img = 10 + render_stars(shape, np.array([sx]), np.array([sy]), np.array([5000.0]), 1.4)
        img += rng.normal(0, 0.01, shape)
        total_in.append((img - 10).sum() * 0.031**2)
        acc.add(img, pixel_map(w, out, shape), pixel_scale_ratio=0.04 / 0.031)
    res = acc.finalize()
    sx, sy = out.world_to_pixel_values(10.0, 20.0)
    yy, xx = np.indices(oshape)
    near = np.hypot(xx - sx, yy - sy) < 25
    return res, near, np.nansum((res.sci - 10)[near]) * 0.04**2 / np.mean(total_in)


@pytest.mark.parametrize(("kernel", "pixfrac"), [("square", 1.0), ("square", 0.8),
                                                 ("square", 0.5), ("turbo", 1.0)])
def test_point_source_flux_conserved(kernel, pixfrac):
    res, near, ratio = _star_mosaic(kernel, pixfrac)
    assert abs(ratio - 1) < 0.005
    assert np.isfinite(res.sci[near]).all()
    assert res.count[near].min() == 4
    assert set(np.unique(res.context[0][near])) == {0b1111}


def test_point_kernel_on_shifted_grid_is_a_copy():
    shape = (8, 9)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    img = np.random.default_rng(1).normal(5, 1, shape)
    res = drizzle_one(img, np.stack([xx + 3, yy + 2], -1), (12, 14), kernel="point")
    assert np.allclose(res.sci[2:10, 3:12], img, rtol=1e-6)
    assert np.isnan(res.sci[0, 0])


@pytest.mark.filterwarnings("ignore:Kernel .* is not a flux-conserving kernel")
@pytest.mark.parametrize("kernel", ["gaussian", "lanczos3"])
def test_smooth_kernels_run(kernel):
    res, near, ratio = _star_mosaic(kernel, 1.0)
    # drizzle documents that these kernels do not conserve flux; they must stay close
    assert abs(ratio - 1) < 0.1
    assert np.isfinite(res.sci[near]).all()


def test_constant_image_weights_and_errors():
    shape = (40, 50)
    w1 = tan_wcs(150.0, 2.0, 0.1, 0.0, shape)
    w2 = tan_wcs(150.0 + 0.73 * ARCSEC, 2.0 + 0.41 * ARCSEC, 0.1, 10.0, shape)
    out, oshape = make_output_wcs([w1, w2], [shape, shape], rotation=0.0)
    acc = DrizzleAccumulator(oshape, ("var_rnoise",), n_exposures=2)
    var1 = np.full(shape, 4.0)
    var2 = np.full(shape, 1.0)
    acc.add(np.full(shape, 7.0), pixel_map(w1, out, shape), ivm_weights(var1),
            {"var_rnoise": var1})
    acc.add(np.full(shape, 7.0), pixel_map(w2, out, shape), ivm_weights(var2),
            {"var_rnoise": var2})
    res = acc.finalize()
    good = np.isfinite(res.sci)
    assert np.allclose(res.sci[good], 7.0, rtol=1e-6)
    both = res.count == 2
    assert both.sum() > 0.5 * both.size
    # a weighted mean's variance never exceeds the largest input variance
    assert np.all(res.err[good] ** 2 <= 4.0 + 1e-5)
    assert np.median(res.err[both] ** 2) < 1.0
    assert np.all(res.wht[~good] == 0)


def test_variance_propagation_exact_on_aligned_grids():
    shape = (6, 7)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    pixmap = np.stack([xx + 2, yy + 1], -1)  # input pixel (j, i) -> output (j+1, i+2)
    acc = DrizzleAccumulator((10, 10), ("var_rnoise",), n_exposures=2)
    v1, v2 = np.full(shape, 4.0), np.full(shape, 1.0)
    acc.add(np.full(shape, 3.0), pixmap, ivm_weights(v1), {"var_rnoise": v1})
    acc.add(np.full(shape, 6.0), pixmap, ivm_weights(v2), {"var_rnoise": v2})
    res = acc.finalize()
    inner = (slice(1, 7), slice(2, 9))
    # ivm weights 1/4 and 1: mean (3/4 + 6) / 1.25 = 5.4, variance 1 / (1/4 + 1) = 0.8
    assert np.allclose(res.sci[inner], 5.4)
    assert np.allclose(res.err[inner] ** 2, 0.8)
    assert np.allclose(res.wht[inner], 1.25)
    assert np.all(res.count[inner] == 2) and np.all(res.context[0][inner] == 3)
    assert np.isnan(res.sci[0, 0]) and res.count[0, 0] == 0


def test_context_beyond_32_exposures():
    shape = (4, 4)
    yy, xx = np.mgrid[0:4, 0:4].astype(float)
    acc = DrizzleAccumulator((4, 8), n_exposures=40)
    for k in range(40):
        acc.add(np.ones(shape), np.stack([xx + (4 if k == 35 else 0), yy], -1))
    res = acc.finalize()
    assert res.context.shape == (2, 4, 8)
    assert np.all(res.count[:, :4] == 39) and np.all(res.count[:, 4:] == 1)
    assert np.all(res.context[1][:, 4:] == 1 << 3)


def test_nan_and_zero_weight_pixels_skipped_and_blot_roundtrip():
    shape = (30, 30)
    w = tan_wcs(0.5, -30.0, 0.1, 0.0, shape)
    out, oshape = make_output_wcs([w], [shape])
    img = np.add.outer(np.arange(30.0), np.arange(30.0) * 0.5)
    img[5, 5] = np.nan
    weight = np.ones(shape)
    weight[10, 10] = 0
    img[10, 10] = 1e9
    pm = pixel_map(w, out, shape)
    res = drizzle_one(img, pm, oshape, weight=weight)
    assert np.nanmax(res.sci) < 100
    back = blot(res.sci, pm)
    yy, xx = np.indices(shape)
    away = (np.hypot(yy - 5, xx - 5) > 4) & (np.hypot(yy - 10, xx - 10) > 4)
    ok = np.isfinite(back) & away
    assert ok.sum() > 0.6 * back.size
    assert np.allclose(back[ok], img[ok], rtol=1e-5, atol=1e-3)
    # pixels whose blot footprint touches a hole in the image are NaN, not filled values
    holed = res.sci.copy()
    hx, hy = np.rint(pm[15, 15]).astype(int)
    holed[hy, hx] = np.nan
    back = blot(holed, pm)
    assert np.isnan(back[15, 15]) and np.isnan(back[15, 17]) and np.isfinite(back[15, 20])


def test_blot_keeps_undersampled_peaks():
    shape = (64, 64)
    w = tan_wcs(0.5, -30.0, 0.1, 0.0, shape)
    out, oshape = make_output_wcs([w], [shape], rotation=30.0)
    img = render_stars(shape, np.array([31.3]), np.array([30.8]), np.array([1000.0]), 0.9)
    pm = pixel_map(w, out, shape)
    res = drizzle_one(img, pm, oshape)
    peak = img.max()
    assert np.nanmax(blot(res.sci, pm, "poly5")) > np.nanmax(blot(res.sci, pm, "linear"))
    # drizzling convolves with the pixel once more, so some peak is lost either way
    assert np.nanmax(blot(res.sci, pm, "poly5")) / peak > 0.8


def test_input_errors():
    acc = DrizzleAccumulator((10, 10))
    with pytest.raises(StepInputError, match="pixel map"):
        acc.add(np.ones((5, 5)), np.zeros((6, 6, 2)))
    with pytest.raises(StepInputError, match="variance"):
        acc.add(np.ones((5, 5)), np.zeros((5, 5, 2)), variances={"var_rnoise": np.ones((5, 5))})
    with pytest.raises(StepInputError, match="pixfrac"):
        DrizzleAccumulator((10, 10), pixfrac=0.0)
    with pytest.raises(StepInputError, match="kernel"):
        DrizzleAccumulator((10, 10), kernel="tophat")
    with pytest.raises(StepInputError, match="interpolation"):
        blot(np.ones((5, 5)), np.zeros((5, 5, 2)), "cubic")
    assert "lanczos3" in KERNELS


def test_zero_weight_border_keeps_the_interior():
    # reference pixels (zero weight on the frame's edge) must not hide the rest
    shape = (40, 40)
    yy, xx = np.mgrid[0:40, 0:40].astype(float)
    weight = np.zeros(shape, dtype=np.float32)
    weight[4:-4, 4:-4] = 1.0
    res = drizzle_one(np.full(shape, 2.0), np.stack([xx / 4, yy / 4], -1), (10, 10),
                      weight=weight)
    assert np.allclose(res.sci[1:9, 1:9], 2.0)
    assert np.allclose(res.wht[2:8, 2:8], 16.0)
