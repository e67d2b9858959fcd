"""Tests of jwpipe.algorithms.image_resample."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.wcs import WCS
from test_image_synthetic import render_stars

from jwpipe.algorithms.image_resample import (
    DrizzleAccumulator,
    blot,
    corner_map,
    drizzle_one,
    ivm_weights,
    make_output_wcs,
    quad_unit_square_overlap,
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


def test_quad_overlap_exact_cases():
    sq = np.array([0.0, 1.0, 1.0, 0.0]), np.array([0.0, 0.0, 1.0, 1.0])
    assert quad_unit_square_overlap(*sq) == pytest.approx(1.0)
    assert quad_unit_square_overlap(sq[0] + 0.25, sq[1] - 0.5) == pytest.approx(0.375)
    assert quad_unit_square_overlap(sq[0][::-1] + 0.5, sq[1][::-1] + 0.5) == pytest.approx(0.25)
    # a diamond of area 2 centred on the square covers all but 4 corner triangles (1/8 each)
    dx = np.array([0.5, 1.5, 0.5, -0.5])
    dy = np.array([-0.5, 0.5, 1.5, 0.5])
    assert quad_unit_square_overlap(dx, dy) == pytest.approx(1.0 - 0.0)
    small = np.array([0.5, 1.0, 0.5, 0.0]), np.array([0.0, 0.5, 1.0, 0.5])
    assert quad_unit_square_overlap(*small) == pytest.approx(0.5)
    assert quad_unit_square_overlap(sq[0] + 3, sq[1]) == 0.0


def test_overlaps_partition_a_rotated_pixel():
    rng = np.random.default_rng(2)
    for _ in range(20):
        th = rng.uniform(0, np.pi)
        s = rng.uniform(0.3, 2.5)
        c = rng.uniform(-1, 1, 2)
        base = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]]) * s
        rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
        q = base @ rot.T + c
        total = 0.0
        for i in range(-4, 5):
            for j in range(-4, 5):
                total += quad_unit_square_overlap(q[:, 0] - i, q[:, 1] - j)
        assert total == pytest.approx(s * s, rel=1e-12)


@pytest.mark.parametrize("pixfrac", [1.0, 0.8, 0.5])
def test_point_source_flux_conserved(pixfrac):
    shape = (96, 96)
    rng = np.random.default_rng(4)
    acc = None
    total_in = []
    wcss = [
        tan_wcs(10 + dx * ARCSEC, 20 + dy * ARCSEC, 0.031, 25.0, shape)
        for dx, dy in [(0, 0), (0.21, -0.13), (-0.17, 0.26), (0.05, 0.3)]
    ]
    out, oshape = make_output_wcs(wcss, [shape] * 4, pixel_scale=0.04 * ARCSEC)
    for w in wcss:
        # the star sits at the same sky position in every exposure
        sx, sy = w.world_to_pixel_values(10.0, 20.0)
        img = 10 + render_stars(shape, np.array([sx]), np.array([sy]), np.array([5000.0]), 1.4)
        img += rng.normal(0, 0.01, shape)
        total_in.append((img - 10).sum() * 0.031**2)
        if acc is None:
            acc = DrizzleAccumulator(oshape, rows_per_block=17)
        acc.add(img, corner_map(w, out, shape), pixfrac=pixfrac)
    res = acc.finalize()
    sx, sy = out.world_to_pixel_values(10.0, 20.0)
    yy, xx = np.indices(oshape)
    near = np.hypot(xx - sx, yy - sy) < 25
    flux_out = np.nansum((res.sci - 10)[near]) * 0.04**2
    assert abs(flux_out / np.mean(total_in) - 1) < 0.005
    assert np.isfinite(res.sci[near]).all()
    assert res.count[near].min() == 4
    assert set(np.unique(res.context[0][near])) == {0b1111}


def test_constant_image_weights_and_errors():
    shape = (40, 50)
    w1 = tan_wcs(150.0, 2.0, 0.1, 0.0, shape)
    w2 = tan_wcs(150.0 + 0.73 * ARCSEC, 2.0 + 0.41 * ARCSEC, 0.1, 10.0, shape)
    out, oshape = make_output_wcs([w1, w2], [shape, shape], rotation=0.0)
    acc = DrizzleAccumulator(oshape)
    var1 = np.full(shape, 4.0)
    var2 = np.full(shape, 1.0)
    acc.add(
        np.full(shape, 7.0), corner_map(w1, out, shape), ivm_weights(var1), {"var_rnoise": var1}
    )
    acc.add(
        np.full(shape, 7.0), corner_map(w2, out, shape), ivm_weights(var2), {"var_rnoise": var2}
    )
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
    yy, xx = np.mgrid[0 : shape[0] + 1, 0 : shape[1] + 1] - 0.5
    corners = np.stack([xx + 2, yy + 1], -1)  # input pixel (j, i) -> output (j+1, i+2)
    acc = DrizzleAccumulator((10, 10))
    v1, v2 = np.full(shape, 4.0), np.full(shape, 1.0)
    acc.add(np.full(shape, 3.0), corners, ivm_weights(v1), {"var_rnoise": v1})
    acc.add(np.full(shape, 6.0), corners, ivm_weights(v2), {"var_rnoise": v2})
    res = acc.finalize()
    inner = (slice(1, 7), slice(2, 9))
    # ivm weights 1/4 and 1: mean (3/4 + 6) / 1.25 = 5.4, variance 1 / (1/4 + 1) = 0.8
    assert np.allclose(res.sci[inner], 5.4)
    assert np.allclose(res.err[inner] ** 2, 0.8)
    assert np.allclose(res.wht[inner], 1.25)
    assert np.all(res.count[inner] == 2) and np.all(res.context[0][inner] == 3)
    assert np.isnan(res.sci[0, 0]) and res.count[0, 0] == 0


def test_nan_and_zero_weight_pixels_skipped_and_blot_roundtrip():
    shape = (30, 30)
    w = tan_wcs(0.5, -30.0, 0.1, 0.0, shape)
    out, oshape = make_output_wcs([w], [shape])
    img = np.add.outer(np.arange(30.0), np.arange(30.0) * 0.5)
    img[5, 5] = np.nan
    weight = np.ones(shape)
    weight[10, 10] = 0
    img[10, 10] = 1e9
    cm = corner_map(w, out, shape)
    res = drizzle_one(img, cm, oshape, weight=weight)
    assert np.nanmax(res.sci) < 100
    back = blot(res.sci, cm)
    yy, xx = np.indices(shape)
    away = (np.hypot(yy - 5, xx - 5) > 3) & (np.hypot(yy - 10, xx - 10) > 3)
    ok = np.isfinite(back) & away
    assert ok.sum() > 0.7 * back.size
    assert np.allclose(back[ok], img[ok], rtol=1e-5, atol=1e-4)


def test_input_errors():
    acc = DrizzleAccumulator((10, 10))
    with pytest.raises(StepInputError, match="corner map"):
        acc.add(np.ones((5, 5)), np.zeros((5, 5, 2)))
    with pytest.raises(StepInputError, match="pixfrac"):
        acc.add(np.ones((5, 5)), np.zeros((6, 6, 2)), pixfrac=0.0)
