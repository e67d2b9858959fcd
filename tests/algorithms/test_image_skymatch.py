"""Tests of jwpipe.algorithms.image_skymatch."""

from __future__ import annotations

import numpy as np
import pytest
from test_image_synthetic import random_field, render_stars

from jwpipe.algorithms.image_skymatch import match_sky
from jwpipe.errors import StepInputError

SHAPE = (120, 160)
NOISE = 2.0


@pytest.fixture(scope="module")
def exposures():
    rng = np.random.default_rng(17)
    x, y, f = random_field(rng, 25, SHAPE, flux_range=(1000, 20000))
    scene = 10.0 + render_stars(SHAPE, x, y, f, 1.5)
    offsets = np.array([3.0, 0.0, 7.5, 1.2])
    regions = [
        (slice(0, 80), slice(0, 100)),
        (slice(30, 120), slice(20, 130)),
        (slice(10, 90), slice(60, 160)),
        (slice(50, 120), slice(0, 90)),
    ]
    imgs = []
    for off, reg in zip(offsets, regions):
        img = np.full(SHAPE, np.nan)
        img[reg] = scene[reg] + off + rng.normal(0, NOISE, scene[reg].shape)
        imgs.append(img)
    return imgs, offsets


def test_match_recovers_relative_offsets(exposures):
    imgs, offsets = exposures
    levels = match_sky(imgs, skymethod="match", skystat="median")
    expected = offsets - offsets.min()
    # each pairwise median from >= 1000 pixels has error ~1.25*sqrt(2)*NOISE/sqrt(n) < 0.15;
    # 5 sigma of that
    assert np.allclose(levels, expected, atol=0.15)
    assert levels.min() == 0


def test_global_match_and_local(exposures):
    imgs, offsets = exposures
    gm = match_sky(imgs, skymethod="global+match", skystat="median")
    assert np.allclose(gm, offsets + 10.0, atol=0.3)
    local = match_sky(imgs, skymethod="local", skystat="median")
    assert np.allclose(local, offsets + 10.0, atol=0.4)
    assert np.allclose(match_sky(imgs, skymethod="global", skystat="median"), local.min())


def test_no_overlap_is_an_error():
    a = np.full((20, 20), np.nan)
    b = a.copy()
    a[:, :10] = 1.0
    b[:, 10:] = 2.0
    with pytest.raises(StepInputError, match="overlap no other"):
        match_sky([a, b])
    with pytest.raises(StepInputError, match="skymethod"):
        match_sky([a], skymethod="best")
