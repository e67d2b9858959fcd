"""Tests of jwpipe.algorithms.image_outliers."""

from __future__ import annotations

import numpy as np
import pytest
from test_image_synthetic import noisy, random_field, render_stars

from jwpipe.algorithms.image_outliers import (
    block_median,
    flag_outliers,
    neighbour_derivative,
    parse_pair,
    weight_threshold_mask,
)
from jwpipe.errors import StepInputError


@pytest.fixture(scope="module")
def stack():
    rng = np.random.default_rng(31)
    shape = (96, 96)
    x, y, f = random_field(rng, 15, shape, flux_range=(2000, 40000))
    model = 30 + render_stars(shape, x, y, f, 1.2)
    exps = [noisy(rng, model, 3.0) for _ in range(4)]
    return model, [e[0] for e in exps], [e[1] for e in exps]


def test_cosmic_ray_flagged_only_where_planted(stack):
    model, scis, errs = stack
    scis = [s.copy() for s in scis]
    scis[1][40, 50] += 500.0  # a cosmic ray
    scis[1][40, 51] += 60.0  # its weaker wing: caught by the neighbour growth
    med = block_median(scis)
    masks = [flag_outliers(s, e, med) for s, e in zip(scis, errs)]
    assert masks[1][40, 50] and masks[1][40, 51]
    for k in (0, 2, 3):
        assert not masks[k][39:42, 49:53].any()
    # false alarms elsewhere: consistent with a 4-5 sigma Gaussian tail (allow a few)
    others = sum(int(m.sum()) for m in masks) - int(masks[1][39:42, 49:53].sum())
    assert others <= 3
    # the bright stars themselves are not flagged
    assert masks[0][np.where(model > 500)].sum() == 0


def test_wing_needs_neighbour_growth(stack):
    _, scis, _ = stack
    sci = scis[0].copy()
    blot = np.full(sci.shape, 30.0)
    err = np.full(sci.shape, 3.0)
    sci[:] = 30.0
    sci[10, 10] = 30 + 6 * 3.0  # > snr1 alone
    sci[10, 11] = 30 + 4.5 * 3.0  # between snr2 and snr1, next to it: flagged
    sci[50, 50] = 30 + 4.5 * 3.0  # between snr2 and snr1, isolated: not flagged
    mask = flag_outliers(sci, err, blot)
    assert mask[10, 10] and mask[10, 11] and not mask[50, 50]
    assert mask.sum() == 2


def test_median_weight_mask_and_derivative():
    a = np.full((4, 4), 1.0)
    b = np.full((4, 4), 2.0)
    c = np.full((4, 4), 9.0)
    wc = np.ones((4, 4))
    wc[0, 0] = 0.1  # low weight: ignored in the median there
    c = np.where(weight_threshold_mask(wc, 0.7), np.nan, c)
    med = block_median([a, b, c])
    assert med[1, 1] == 2.0 and med[0, 0] == 1.5
    d = neighbour_derivative(np.array([[0.0, 1.0], [3.0, 0.0]]))
    assert np.array_equal(d, [[3.0, 1.0], [3.0, 3.0]])


def test_parse_pair():
    assert parse_pair("5.0 4.0", "snr") == (5.0, 4.0)
    assert parse_pair([1, 2], "scale") == (1.0, 2.0)
    with pytest.raises(StepInputError, match="snr"):
        parse_pair("5.0", "snr")


def test_block_median_matches_nanmedian(tmp_path):
    import warnings

    rng = np.random.default_rng(4)
    stack = rng.normal(size=(9, 37, 23)).astype(np.float32)
    stack[rng.random(stack.shape) < 0.4] = np.nan
    stack[:, 3, 4] = np.nan
    files = []
    for k, plane in enumerate(stack):
        files.append(str(tmp_path / f"{k}.npy"))
        np.save(files[-1], plane)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = np.nanmedian(stack, axis=0)
    # a tiny block budget forces many row blocks; files and arrays mixed
    got = block_median(files[:5] + list(stack[5:]), block_bytes=9 * 23 * 4 * 5)
    np.testing.assert_allclose(got, expected, equal_nan=True, rtol=1e-6)
    with pytest.raises(StepInputError, match="at least one"):
        block_median([])


def test_weight_threshold_of_a_full_frame_from_a_subsample():
    """A 1500^2 weight map (more than the 2^20 values clipped): the threshold from the
    subsample matches the one from every weight to well within the weights' spread."""
    from jwpipe.algorithms.image_stats import sigma_clipped_stats

    rng = np.random.default_rng(4)
    w = rng.normal(100.0, 5.0, (1500, 1500))
    w[:, :200] = 40.0  # an edge with fewer exposures
    w[700:720, :] = 0.0  # a gap
    w[rng.random(w.shape) < 1e-3] = 1e4  # hot weights
    full = sigma_clipped_stats(w, w <= 0).mean
    mask = weight_threshold_mask(w, 0.7)
    assert np.array_equal(mask, w < 0.7 * full) or \
        np.abs(w[mask != (w < 0.7 * full)] - 0.7 * full).max() < 0.01 * 5.0
    # the edge (40) and the gap (0) are below 0.7 x ~100, the full-depth weights are not
    assert mask[w < 60].all() and not mask[w > 80].any()
