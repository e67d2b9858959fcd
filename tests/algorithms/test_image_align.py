"""Tests of jwpipe.algorithms.image_align."""

from __future__ import annotations

import numpy as np
import pytest
from test_image_synthetic import noisy, random_field, render_stars

from jwpipe.algorithms.image_align import (
    AlignmentError,
    align_catalogs,
    apply_correction,
    match_catalogs,
    tangent_plane,
)
from jwpipe.algorithms.image_catalog import find_sources


def _inverse(xy, shift, rot_deg):
    th = np.radians(-rot_deg)
    p = np.asarray(xy) - shift
    return apply_correction(p, np.zeros(2), np.degrees(th))


def test_tangent_plane_small_offsets():
    xi, eta = tangent_plane([10.0 + 1 / 3600 / np.cos(np.radians(20))], [20.0], 10.0, 20.0)
    assert xi[0] == pytest.approx(1.0, abs=1e-6) and abs(eta[0]) < 1e-4
    xi, eta = tangent_plane([10.0], [20.0 + 2 / 3600], 10.0, 20.0)
    assert eta[0] == pytest.approx(2.0, abs=1e-6) and abs(xi[0]) < 1e-9


def test_match_finds_offset_with_outliers():
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 100, (50, 2))
    b = a + np.array([1.3, -0.8]) + rng.normal(0, 0.02, a.shape)
    b = np.vstack([b[:40], rng.uniform(0, 100, (15, 2))])  # 10 lost, 15 spurious
    ia, ib, off = match_catalogs(a, b, searchrad=3.0, tolerance=0.3)
    assert np.allclose(off, [1.3, -0.8], atol=0.01)
    assert len(ia) >= 40 and np.mean(ia == ib) > 0.95


def test_joint_alignment_recovers_injected_corrections():
    rng = np.random.default_rng(8)
    truth = rng.uniform(-60, 60, (45, 2))  # arcsec on the tangent plane
    sig = 0.01  # centroid noise per coordinate
    shifts = np.array([[0, 0], [0.8, -0.5], [-0.6, 1.1], [1.4, 0.3]])
    rots = np.array([0.0, 0.02, -0.03, 0.01])  # degrees
    cats = []
    for k in range(4):
        seen = rng.random(len(truth)) < 0.85
        meas = _inverse(truth[seen], shifts[k], rots[k]) + rng.normal(0, sig, (seen.sum(), 2))
        cats.append(np.vstack([meas, rng.uniform(-60, 60, (5, 2))]))
    res = align_catalogs(cats, searchrad=2.5, tolerance=0.2, minobj=10)
    assert res.fixed == 0
    n = res.nmatch.min()
    assert n >= 25
    # expected error of a shift from ~n pairs between exposures with noise sig each
    bound = 5 * sig * np.sqrt(2.0 / n)
    assert np.all(np.abs(res.shift - shifts) < bound + 60 * np.radians(5 * sig / 60 / np.sqrt(n)))
    # rotation lever arm ~ 35 arcsec rms
    assert np.all(np.abs(res.rotation - rots) < np.degrees(5 * sig * np.sqrt(2.0 / n) / 30))
    assert np.all(res.rms < 3 * sig * np.sqrt(2))


def test_alignment_to_reference_catalogue():
    rng = np.random.default_rng(9)
    truth = rng.uniform(-50, 50, (30, 2))
    cats = [
        truth + np.array([0.4, -0.2]) + rng.normal(0, 0.01, truth.shape),
        truth + np.array([-0.3, 0.5]) + rng.normal(0, 0.01, truth.shape),
    ]
    res = align_catalogs(cats, reference=truth, fit_rotation=False, tolerance=0.1, minobj=10)
    assert res.fixed is None
    assert np.allclose(res.shift, [[-0.4, 0.2], [0.3, -0.5]], atol=0.01)
    assert np.all(res.rotation == 0)


def test_too_few_sources():
    a = np.random.default_rng(1).uniform(0, 10, (5, 2))
    with pytest.raises(AlignmentError, match="exposure 1 has 5 sources"):
        align_catalogs([np.vstack([a] * 4), a], minobj=10)
    rng = np.random.default_rng(2)
    b = rng.uniform(0, 100, (30, 2))
    c = rng.uniform(0, 100, (30, 2))  # unrelated field: nothing matches
    with pytest.raises(AlignmentError, match="too few matched sources"):
        align_catalogs([b, c], searchrad=1.0, tolerance=0.1, minobj=10)


def test_end_to_end_images_subpixel_shift():
    """Detect stars in two dithered images and recover the dither to << 0.05 pixel."""
    rng = np.random.default_rng(21)
    shape = (128, 128)
    x, y, f = random_field(rng, 30, shape, border=10, min_sep=9, flux_range=(4000, 30000))
    dx, dy = 3.37, -2.61
    cats = []
    for ox, oy in [(0.0, 0.0), (dx, dy)]:
        inside = (x - ox > 8) & (x - ox < 119) & (y - oy > 8) & (y - oy < 119)
        img = 50 + render_stars(shape, x[inside] - ox, y[inside] - oy, f[inside], 1.3)
        data, err = noisy(rng, img, 4.0)
        cat = find_sources(data, error=err, kernel_fwhm=3.0, box_size=64)
        cats.append(np.column_stack([cat["x"], cat["y"]]))
    res = align_catalogs(cats, fit_rotation=True, searchrad=6.0, tolerance=0.5, minobj=10)
    # exposure 1 positions + (dx, dy) = exposure 0 positions
    assert np.all(np.abs(res.shift[1] - [dx, dy]) < 0.05)
    assert abs(res.rotation[1]) < 0.05
    assert res.rms[1] < 0.1


def test_affine_alignment_recovers_injected_scale_and_skew():
    """fitgeometry='general': each exposure's measured positions are ``A_k^-1 (p - t_k)`` of the
    truth with a scale and skew a rotation cannot absorb; the full affine fit recovers A_k,
    t_k, while a shift-and-rotation fit leaves residuals of the lever arm times the skew."""
    rng = np.random.default_rng(12)
    truth = rng.uniform(-60, 60, (60, 2))
    sig = 0.005
    mats = [np.eye(2), np.array([[1.0004, 0.0003], [-0.0001, 0.9997]]),
            np.array([[0.9996, -0.0002], [0.0004, 1.0003]])]
    shifts = np.array([[0.0, 0.0], [0.5, -0.3], [-0.4, 0.6]])
    cats = []
    for a, t in zip(mats, shifts, strict=True):
        meas = (truth - t) @ np.linalg.inv(a).T + rng.normal(0, sig, truth.shape)
        cats.append(meas)
    res = align_catalogs(cats, searchrad=2.0, tolerance=0.2, minobj=10, affine=True)
    assert res.matrix is not None and res.matrix.shape == (3, 2, 2)
    n = res.nmatch.min()
    # a matrix element is a slope over a ~35 arcsec lever arm: its error ~ sig*sqrt(2/n)/35
    tol = 5 * sig * np.sqrt(2.0 / n) / 35
    for k in range(3):
        assert np.all(np.abs(res.matrix[k] - mats[k]) < tol)
        assert np.all(np.abs(res.shift[k] - shifts[k]) < 5 * sig * np.sqrt(2.0 / n))
    assert np.all(res.rms < 3 * sig * np.sqrt(2))
    rigid = align_catalogs(cats, searchrad=2.0, tolerance=0.2, minobj=10)
    assert rigid.rms.max() > 2 * res.rms.max()  # skew of 3e-4 over ~35 arcsec: ~0.01 arcsec
