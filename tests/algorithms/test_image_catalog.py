"""Tests of jwpipe.algorithms.image_catalog (photutils detection and photometry) and
image_stats, on synthetic star fields with known truth."""

from __future__ import annotations

import numpy as np
import pytest
from photutils.segmentation import SourceCatalog
from test_image_synthetic import noisy, random_field, render_stars

from jwpipe.algorithms.image_catalog import (
    circular_photometry,
    concentration_indices,
    detect,
    estimate_background,
    find_sources,
    flux_to_abmag,
    source_positions,
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
        one = (x[k : k + 1], y[k : k + 1], flux[k : k + 1])
        dmx = (render_stars(SHAPE, one[0] + h, one[1], one[2], SIGMA_PSF)
               - render_stars(SHAPE, one[0] - h, one[1], one[2], SIGMA_PSF)) / (2 * h)
        dmy = (render_stars(SHAPE, one[0], one[1] + h, one[2], SIGMA_PSF)
               - render_stars(SHAPE, one[0], one[1] - h, one[2], SIGMA_PSF)) / (2 * h)
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
    x, y, f, data, err = field
    cat = find_sources(data, error=err, kernel_fwhm=2.355 * SIGMA_PSF, snr_threshold=5.0,
                       box_size=40)
    assert cat.size == 40
    nearest, ok = _match(cat, x, y)
    assert ok.all()
    assert np.unique(nearest).size == 40
    assert np.all(np.diff(cat["flux"]) <= 0)
    # isophotal flux captures most of each star, and no more than the star plus noise
    ratio = cat["flux"] / f[nearest]
    assert np.all(ratio > 0.6)
    assert np.all(cat["flux"] - f[nearest] < 4 * cat["flux"] / cat["snr"] + 1.0)
    assert np.all(cat["peak"] > 0) and not cat["truncated"].any()


def test_centroids_at_cramer_rao_level(field):
    x, y, f, data, err = field
    cat = find_sources(data, error=err, kernel_fwhm=2.355 * SIGMA_PSF, box_size=40)
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
    assert np.max(np.abs(np.concatenate([zx, zy]))) < 4.5
    assert np.max(np.hypot(cat["x"] - x[nearest], cat["y"] - y[nearest])) < 0.3


def test_pure_noise_gives_no_detections():
    rng = np.random.default_rng(3)
    data = rng.normal(50.0, 3.0, SHAPE)
    assert find_sources(data, kernel_fwhm=3.0, snr_threshold=5.0, box_size=40).size == 0


def test_masked_pixels_ignored(field):
    x, y, _, data, _ = field
    hot = data.copy()
    hot[:, 7] = 1e6  # a hot column
    hot[80:83, 100:103] = np.nan
    mask = np.zeros(SHAPE, dtype=bool)
    mask[:, 7] = True
    cat = find_sources(hot, mask, kernel_fwhm=3.5, box_size=40)
    _, ok = _match(cat, x, y)
    assert ok.all() and cat.size == 40
    # without the mask the column is detected as a (spurious) source
    unmasked = find_sources(hot, kernel_fwhm=3.5, box_size=40)
    assert np.any(np.abs(unmasked["x"] - 7) < 1.5)


def test_truncated_near_mask():
    rng = np.random.default_rng(5)
    model = 10 + render_stars((64, 64), np.array([30.0]), np.array([30.0]), np.array([5e3]), 1.5)
    data, _ = noisy(rng, model, 2.0)
    mask = np.zeros(data.shape, bool)
    mask[30, 31] = True
    cat = find_sources(data, mask, kernel_fwhm=3.5, box_size=16)
    assert cat.size == 1 and cat["truncated"][0]
    assert abs(cat["x"][0] - 30) < 0.5 and abs(cat["y"][0] - 30) < 0.5


def test_background_follows_gradient():
    rng = np.random.default_rng(7)
    yy, xx = np.indices((128, 128))
    sky = 20 + 0.02 * xx + 0.01 * yy
    data = sky + rng.normal(0, 1.0, sky.shape)
    bkg, rms = estimate_background(data, box_size=16)
    inner = (slice(16, -16), slice(16, -16))
    assert np.abs(bkg - sky)[inner].max() < 0.3
    assert abs(np.median(rms) - 1.0) < 0.15
    assert detect(data - bkg, box_size=32, kernel_fwhm=3.0, snr_threshold=5.0,
                  npixels=5).segm is None


def test_bad_input():
    with pytest.raises(StepInputError, match="2-D"):
        find_sources(np.zeros(10))
    assert find_sources(np.full((8, 8), np.nan)).size == 0
    with pytest.raises(StepInputError, match="no valid pixels"):
        estimate_background(np.full((8, 8), np.nan))
    with pytest.raises(StepInputError, match="connectivity"):
        detect(np.zeros((8, 8)), connectivity=6)


# ----------------------------------------------------------------------------- crowding


def _pairs_field(seed, shape=(256, 256), sigma=1.2):
    """40 isolated stars (30 px apart, 150-20000 counts) plus a companion 3-6 px from each
    of the first 20 (the brighter of the pair >= 3000, the fainter >= 1500)."""
    rng = np.random.default_rng(seed)
    x, y, f = random_field(rng, 40, shape, border=15, min_sep=30, flux_range=(150, 20000))
    n = 20
    sep = rng.uniform(3.0, 6.0, n)
    ang = rng.uniform(0, 2 * np.pi, n)
    cx, cy = x[:n] + sep * np.cos(ang), y[:n] + sep * np.sin(ang)
    cf = np.maximum(f[:n] * rng.uniform(0.3, 1.0, n), 1500.0)
    f[:n] = np.maximum(f[:n], 3000.0)
    xs, ys, fs = np.r_[x, cx], np.r_[y, cy], np.r_[f, cf]
    data, err = noisy(rng, 10 + render_stars(shape, xs, ys, fs, sigma), 3.0)
    return data, err, xs, ys, n, sep


def test_completeness_and_close_pair_deblending():
    """Measured before the move to photutils, on these same fields (seeds 0-5) with the
    former hand-written detector (matched filter, no deblending) at the same matched-filter
    S/N of 3: isolated stars 120/120 found; pairs with both members found 0/42 at 3-4 px,
    0/41 at 4-5 px, 17/37 at 5-6 px (pair separation / PSF sigma 1.2 px)."""
    found_iso, n_iso, spurious = 0, 0, 0
    both_by_sep = {(3, 4): [0, 0], (4, 5): [0, 0], (5, 6): [0, 0]}
    for seed in range(6):
        data, err, xs, ys, n, sep = _pairs_field(seed)
        cat = find_sources(data, error=err, kernel_fwhm=2.355 * 1.2, snr_threshold=3.0,
                           box_size=64)
        d = np.hypot(xs[:, None] - cat["x"][None], ys[:, None] - cat["y"][None])
        hit = d.min(axis=1) < 1.5
        found_iso += int(hit[n:40].sum())
        n_iso += 40 - n
        spurious += int((d.min(axis=0) > 2.5).sum())
        both = hit[:n] & hit[40:]
        for (lo, hi), tally in both_by_sep.items():
            sel = (sep >= lo) & (sep < hi)
            tally[0] += int(both[sel].sum())
            tally[1] += int(sel.sum())
    print(f"isolated {found_iso}/{n_iso}, spurious {spurious}, pairs {both_by_sep}")
    # the same completeness as before
    assert found_iso == n_iso
    # better deblending: pairs the old detector always merged are now split, and all pairs
    # beyond 5 px (4 sigma) are (the old detector split fewer than half of them)
    assert both_by_sep[(4, 5)][0] >= 0.4 * both_by_sep[(4, 5)][1]
    assert both_by_sep[(5, 6)][0] >= 0.95 * both_by_sep[(5, 6)][1]
    # a 3-sigma matched-filter threshold on 6 fields of 65k pixels: a few noise peaks each
    assert spurious <= 6 * 8


# ----------------------------------------------------------------------------- photometry


def test_aperture_kron_and_isophotal_fluxes_unbiased():
    rng = np.random.default_rng(11)
    shape = (320, 320)
    sigma = 1.3
    x, y, f = random_field(rng, 60, shape, border=20, min_sep=24, flux_range=(3000, 30000))
    model = SKY + render_stars(shape, x, y, f, sigma)
    data, err = noisy(rng, model, SKY_SIGMA)
    bkg, _ = estimate_background(data, box_size=64)
    sub = data - bkg
    found = detect(sub, box_size=64, kernel_fwhm=2.355 * sigma, snr_threshold=5.0,
                   npixels=5)
    cat = SourceCatalog(sub, found.segm, convolved_data=found.convolved, error=err)
    cx, cy = source_positions(cat)
    d = np.hypot(cx[:, None] - x[None], cy[:, None] - y[None])
    k = d.argmin(axis=1)
    assert np.all(d.min(axis=1) < 0.5) and np.unique(k).size == 60
    truth = f[k]
    # a radius of 4 sigma encloses 1 - exp(-8) of a Gaussian; the local annulus background
    r = 4.0 * sigma
    phot = circular_photometry(data, err, None, cx, cy, [r], (8 * sigma, 12 * sigma))
    ee = 1 - np.exp(-r**2 / (2 * sigma**2))
    checks = {"aperture": (phot["flux"][0] / ee, phot["flux_err"][0] / ee),
              "kron": (np.asarray(cat.kron_flux), np.asarray(cat.kron_flux_err))}
    for name, (flux, flux_err) in checks.items():
        pull = (flux - truth) / flux_err
        n = pull.size
        print(f"{name}: pull mean {pull.mean():.3f} std {pull.std():.3f}")
        # unbiased within errors (mean of n unit pulls: sigma 1/sqrt(n)) and errors right
        assert abs(pull.mean()) < 4.0 / np.sqrt(n), name
        assert abs(pull.std() - 1.0) < 0.25, name
    # the isophotal flux misses the wings below the threshold: low, never high
    iso = np.asarray(cat.segment_flux)
    assert np.all(iso < truth + 4 * np.asarray(cat.segment_flux_err))
    assert np.median(iso / truth) > 0.8


def test_magnitudes_and_concentration():
    mag, err = flux_to_abmag([3631.0, 3631e-6, -1.0], [3.631, 0.0, 1.0])
    assert mag[0] == pytest.approx(0.0) and mag[1] == pytest.approx(15.0)
    assert err[0] == pytest.approx(2.5 / np.log(10) * 1e-3) and np.isnan(mag[2])
    ci = concentration_indices({30: np.array([1.0]), 50: np.array([2.0]),
                                70: np.array([3.0])})
    assert list(ci) == ["CI_50_30", "CI_70_50", "CI_70_30"]
    assert ci["CI_70_30"][0] == 3.0 and ci["CI_70_50"][0] == 1.5


def _drizzled_pairs_mosaic(seed):
    """The close-pairs field seen through a 4-point sub-pixel dither and drizzled back
    (pixfrac 1, exposure-time weights): returns the mosaic, its ERR and the truth."""
    from jwpipe.algorithms.image_resample import DrizzleAccumulator

    rng = np.random.default_rng(100 + seed)
    shape = (256, 256)
    x, y, f = random_field(rng, 40, shape, border=15, min_sep=30, flux_range=(150, 20000))
    n = 20
    sep = rng.uniform(3.0, 6.0, n)
    ang = rng.uniform(0, 2 * np.pi, n)
    xs = np.r_[x, x[:n] + sep * np.cos(ang)]
    ys = np.r_[y, y[:n] + sep * np.sin(ang)]
    fs = np.r_[np.maximum(f[:n], 3000.0), f[n:], np.maximum(f[:n] * rng.uniform(0.3, 1, n),
                                                             1500.0)]
    acc = DrizzleAccumulator(shape, ("var",))
    yy, xx = np.indices(shape, dtype=np.float64)
    for dx, dy in ((0.0, 0.0), (0.5, 0.5), (0.25, 0.75), (0.75, 0.25)):
        # the exposure's pixel (i, j) sees the sky at output position (j + dx, i + dy)
        data, err = noisy(rng, 10 + render_stars(shape, xs - dx, ys - dy, fs, 1.2), 3.0)
        acc.add(data, np.stack([xx + dx, yy + dy], axis=-1), 1.0, {"var": err**2})
    res = acc.finalize()
    return res.sci, res.err, xs, ys, n, sep


def test_close_pairs_deblended_on_a_drizzled_mosaic():
    """The catalogue's detection (defaults of source_catalog: matched-filter S/N 3, 25
    pixels, deblending down to 5-pixel components) on drizzled 4-exposure mosaics of the
    close-pairs fields (seeds 0-3): pairs with both members found 0/26 at 3-4 px, 10/32 at
    4-5 px, 21/22 at 5-6 px; isolated stars 80/80. Measured on these same mosaics with the
    former hand-written detector (matched filter with ERR at S/N 3, 25 pixels, no
    deblending; its 2 px kernel is narrower than the drizzled PSF and keeps saddles):
    2/26, 10/32, 22/22, isolated 80/80. With ``deblend_npixels=3`` (measured before the
    blank-sky threshold): 4/26, 26/32, 22/22 (but more galaxy fragments: docs/image.md).
    The former detector's threshold here was its nominal S/N 3 (a real ~2 sigma); at the
    same real threshold: benchmarks/bench_catalog_completeness.py and
    tests/steps/test_catalog_completeness.py."""
    found_iso, n_iso = 0, 0
    both_by_sep = {(3, 4): [0, 0], (4, 5): [0, 0], (5, 6): [0, 0]}
    for seed in range(4):
        sci, err, xs, ys, n, sep = _drizzled_pairs_mosaic(seed)
        bad = ~np.isfinite(sci)
        bkg, _ = estimate_background(sci, bad, box_size=64)
        sub = np.where(bad, 0.0, sci - bkg)
        found = detect(sub, bad, box_size=64)
        cat = SourceCatalog(sub, found.segm, convolved_data=found.convolved,
                            error=np.where(bad, 0.0, err), mask=bad)
        cx, cy = source_positions(cat)
        d = np.hypot(xs[:, None] - cx[None], ys[:, None] - cy[None])
        hit = d.min(axis=1) < 1.5
        found_iso += int(hit[n:40].sum())
        n_iso += 40 - n
        both = hit[:n] & hit[40:]
        for (lo, hi), tally in both_by_sep.items():
            sel = (sep >= lo) & (sep < hi)
            tally[0] += int(both[sel].sum())
            tally[1] += int(sel.sum())
    print(f"isolated {found_iso}/{n_iso}, pairs {both_by_sep}")
    assert found_iso == n_iso
    assert both_by_sep[(4, 5)][0] >= 0.3 * both_by_sep[(4, 5)][1]
    assert both_by_sep[(5, 6)][0] >= 0.8 * both_by_sep[(5, 6)][1]
