"""Tests of jwpipe.algorithms.image_photometry."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from test_image_synthetic import noisy, random_field, render_stars

from jwpipe.algorithms.image_photometry import aperture_photometry, circle_pixel_overlap
from jwpipe.errors import StepInputError


def test_overlap_exact_total_and_pixels():
    # the whole disc: pi r^2, whatever the centre
    for r, cx, cy in [(3.0, 0.2, -0.4), (0.3, 0.5, 0.5), (7.5, 0.0, 0.0)]:
        offs = np.arange(-10, 11)
        dx = offs[None, :] - cx
        dy = offs[:, None] - cy
        area = circle_pixel_overlap(dx - 0.5, dx + 0.5, dy - 0.5, dy + 0.5, r)
        assert abs(area.sum() - np.pi * r * r) < 1e-10
    # a unit pixel fully inside, fully outside, and a quarter disc
    assert circle_pixel_overlap(np.array(-0.5), np.array(0.5), -0.5, 0.5, 2.0) == pytest.approx(1)
    assert circle_pixel_overlap(np.array(3.0), np.array(4.0), 3.0, 4.0, 2.0) == 0.0
    assert circle_pixel_overlap(np.array(0.0), np.array(5.0), 0.0, 5.0, 2.0) == pytest.approx(
        np.pi, rel=1e-12
    )


def test_overlap_matches_brute_force():
    rng = np.random.default_rng(0)
    x0 = rng.uniform(-3, 2, 20)
    y0 = rng.uniform(-3, 2, 20)
    r = 2.2
    exact = circle_pixel_overlap(x0, x0 + 1, y0, y0 + 1, r)
    n = 800
    t = (np.arange(n) + 0.5) / n
    for k in range(20):
        u = x0[k] + t[None, :]
        v = y0[k] + t[:, None]
        brute = np.mean(u * u + v * v <= r * r)
        assert abs(brute - exact[k]) < 5e-3


def test_unbiased_and_errors_consistent():
    """Aperture fluxes of many stars: bias zero within errors, scatter matches ERR (chi2)."""
    rng = np.random.default_rng(11)
    shape = (200, 200)
    sigma_psf = 1.3
    x, y, f = random_field(rng, 30, shape, border=15, min_sep=20, flux_range=(500, 5000))
    sky = 20.0
    model = sky + render_stars(shape, x, y, f, sigma_psf)
    radius = 6.0
    # fraction of a pixel-integrated Gaussian inside the aperture: computed from the model
    truth_img = render_stars(shape, x, y, f, sigma_psf)
    z_all = []
    for _ in range(8):
        data, err = noisy(rng, model, 4.0)
        phot = aperture_photometry(data, err, x, y, radius, annulus=(9.0, 13.0))
        expected = aperture_photometry(truth_img, np.ones(shape), x, y, radius)["flux"]
        assert np.all(expected > 0.99 * f)
        z_all.append((phot["flux"] - expected) / phot["flux_err"])
        assert np.all(np.abs(phot["bkg"] - sky) < 5 * phot["bkg_err"])
    z = np.concatenate(z_all)
    n = z.size
    assert abs(z.mean()) < 4 / np.sqrt(n)
    chi2 = float((z**2).sum())
    lo, hi = stats.chi2.ppf([0.0005, 0.9995], n)
    assert lo < chi2 < hi


def test_masked_pixels_and_edges():
    shape = (40, 40)
    img = np.ones(shape)
    err = np.full(shape, 0.1)
    mask = np.zeros(shape, bool)
    mask[20, 20] = True
    phot = aperture_photometry(img, err, [20.0, 0.0], [20.0, 20.0], 3.0, mask=mask)
    assert phot["nbad"][0] == 1
    assert phot["area"][0] == pytest.approx(np.pi * 9 - 1)
    assert phot["aperture_sum"][0] == pytest.approx(np.pi * 9 - 1)
    # at the left edge half the aperture is outside the image
    assert phot["area"][1] == pytest.approx(np.pi * 9 / 2 + 3.0 * 0.5 * 2, rel=0.05)
    assert phot["nbad"][1] > 0


def test_bad_arguments():
    with pytest.raises(StepInputError, match="annulus"):
        aperture_photometry(np.ones((9, 9)), np.ones((9, 9)), [4], [4], 3, annulus=(2, 5))
    with pytest.raises(StepInputError, match="same shape"):
        aperture_photometry(np.ones((9, 9)), np.ones((8, 9)), [4], [4], 3)
