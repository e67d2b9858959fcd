"""Tests of jwpipe.algorithms.image_sources and image_stats on synthetic star fields."""

from __future__ import annotations

import numpy as np
import pytest
from test_image_synthetic import noisy, random_field, render_stars

from jwpipe.algorithms.image_sources import (
    FLAG_TRUNCATED,
    background_mesh,
    detect_sources,
)
from jwpipe.algorithms.image_stats import sigma_clipped_stats
from jwpipe.errors import StepInputError

SHAPE = (160, 160)
SIGMA_PSF = 1.5
SKY, SKY_SIGMA = 100.0, 5.0


def _centroid_crb(x, y, flux, err):
    """Cramer-Rao bound of x and y centroids from the noise model (finite differences)."""
    h = 1e-3
    out = np.empty((x.size, 2))
    for k in range(x.size):
        dmx = (
            render_stars(SHAPE, x[k : k + 1] + h, y[k : k + 1], flux[k : k + 1], SIGMA_PSF)
            - render_stars(SHAPE, x[k : k + 1] - h, y[k : k + 1], flux[k : k + 1], SIGMA_PSF)
        ) / (2 * h)
        dmy = (
            render_stars(SHAPE, x[k : k + 1], y[k : k + 1] + h, flux[k : k + 1], SIGMA_PSF)
            - render_stars(SHAPE, x[k : k + 1], y[k : k + 1] - h, flux[k : k + 1], SIGMA_PSF)
        ) / (2 * h)
        out[k] = [1 / np.sqrt((dmx**2 / err**2).sum()), 1 / np.sqrt((dmy**2 / err**2).sum())]
    return out


@pytest.fixture(scope="module")
def field():
    rng = np.random.default_rng(42)
    x, y, f = random_field(rng, 40, SHAPE, flux_range=(1500.0, 15000.0))
    model = SKY + render_stars(SHAPE, x, y, f, SIGMA_PSF)
    data, err = noisy(rng, model, SKY_SIGMA)
    return x, y, f, data.astype(np.float32), err


def _match(cat, x, y, radius=1.0):
    d = np.hypot(cat["x"][:, None] - x[None], cat["y"][:, None] - y[None])
    nearest = d.argmin(axis=1)
    ok = d[np.arange(cat.size), nearest] < radius
    return nearest, ok


def test_sigma_clipped_stats_rejects_outliers():
    rng = np.random.default_rng(0)
    values = rng.normal(10.0, 2.0, 20000)
    values[:500] = 1e4
    stats = sigma_clipped_stats(values)
    assert abs(stats.median - 10.0) < 0.05
    assert abs(stats.std - 2.0) < 0.05
    assert stats.npix < 19600


def test_detection_complete_and_clean(field):
    x, y, f, data, _ = field
    cat = detect_sources(data, fwhm=2.355 * SIGMA_PSF, snr_threshold=5.0)
    assert cat.size == 40
    nearest, ok = _match(cat, x, y)
    assert ok.all()
    assert np.unique(nearest).size == 40
    assert np.all(np.diff(cat["flux"]) <= 0)
    assert list(cat["id"]) == list(range(1, 41))
    # isophotal flux captures most of each star, and no more than the star plus noise
    ratio = cat["flux"] / f[nearest]
    assert np.all(ratio > 0.6)
    noise = np.sqrt(cat["npix"] * (SKY_SIGMA**2 + SKY + f[nearest] / cat["npix"]))
    assert np.all(cat["flux"] - f[nearest] < 4 * noise)
    assert np.all(cat["peak"] > 0) and np.all(cat["npix"] >= 5)


def test_centroids_at_cramer_rao_level(field):
    x, y, f, data, err = field
    cat = detect_sources(data, fwhm=2.355 * SIGMA_PSF, error=err)
    nearest, ok = _match(cat, x, y)
    assert ok.all()
    crb = _centroid_crb(x[nearest], y[nearest], f[nearest], err)
    zx = (cat["x"] - x[nearest]) / crb[:, 0]
    zy = (cat["y"] - y[nearest]) / crb[:, 1]
    n = zx.size
    # unbiased: mean of the normalised residuals within 4 sigma of zero
    assert abs(zx.mean()) < 4 * 1.3 / np.sqrt(n)
    assert abs(zy.mean()) < 4 * 1.3 / np.sqrt(n)
    # efficient: the windowed centroid's scatter is within 30 % of the Cramer-Rao bound
    assert np.sqrt(np.mean(zx**2)) < 1.3
    assert np.sqrt(np.mean(zy**2)) < 1.3
    # no outliers (80 normal draws stay within 4.5 sigma) and all far below a pixel
    assert np.max(np.abs(np.concatenate([zx, zy]))) < 4.5
    assert np.max(np.hypot(cat["x"] - x[nearest], cat["y"] - y[nearest])) < 0.3


def test_pure_noise_gives_no_detections():
    rng = np.random.default_rng(3)
    data = rng.normal(50.0, 3.0, SHAPE)
    assert detect_sources(data, fwhm=3.0, snr_threshold=5.0).size == 0


def test_masked_pixels_ignored(field):
    x, y, _, data, _ = field
    hot = data.copy()
    hot[:, 7] = 1e6  # a hot column
    hot[80:83, 100:103] = np.nan
    mask = np.zeros(SHAPE, dtype=bool)
    mask[:, 7] = True
    cat = detect_sources(hot, mask=mask, fwhm=3.5)
    _, ok = _match(cat, x, y)
    assert ok.all() and cat.size == 40
    # without the mask the column is detected as a (spurious) source
    cat_unmasked = detect_sources(hot, fwhm=3.5)
    assert np.any(np.abs(cat_unmasked["x"] - 7) < 1.5)


def test_truncated_flag_near_mask():
    rng = np.random.default_rng(5)
    model = 10 + render_stars((64, 64), np.array([30.0]), np.array([30.0]), np.array([5e3]), 1.5)
    data, _ = noisy(rng, model, 2.0)
    mask = np.zeros(data.shape, bool)
    mask[30, 31] = True
    cat = detect_sources(data, mask=mask, fwhm=3.5)
    assert cat.size == 1 and cat["flags"][0] & FLAG_TRUNCATED
    # the missing pixel biases the centroid a little: that is why the source is flagged
    assert abs(cat["x"][0] - 30) < 0.5 and abs(cat["y"][0] - 30) < 0.5


def test_background_mesh_follows_gradient():
    rng = np.random.default_rng(7)
    yy, xx = np.indices((128, 128))
    sky = 20 + 0.02 * xx + 0.01 * yy
    data = sky + rng.normal(0, 1.0, sky.shape)
    bkg, rms = background_mesh(data, box_size=32)
    inner = (slice(16, -16), slice(16, -16))
    assert np.abs(bkg - sky)[inner].max() < 0.3
    assert abs(np.median(rms) - 1.0) < 0.15
    cat = detect_sources(data, background=bkg, noise=rms, fwhm=3.0)
    assert cat.size == 0


def test_bad_input():
    with pytest.raises(StepInputError, match="2-D"):
        detect_sources(np.zeros(10))
    with pytest.raises(StepInputError, match="masked"):
        detect_sources(np.full((8, 8), np.nan))
