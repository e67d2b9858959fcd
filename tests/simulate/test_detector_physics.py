"""Pure-numpy parts of the simulator: non-linearity inverse, readout timing, CR drawing."""

from __future__ import annotations

import numpy as np

from jwpipe.simulate.detector import (
    DQ,
    apply_nonlinearity,
    linearity_polynomial,
    make_detector,
    reference_pixel_mask,
)
from jwpipe.simulate.ramps import Readout, bias_offsets, draw_cosmic_rays


def test_nonlinearity_is_exact_inverse_of_linearity_correction():
    det = make_detector(np.random.default_rng(3), 64, 64)
    rng = np.random.default_rng(4)
    for hi in (200.0, 5000.0, 60000.0):
        linear = rng.uniform(0.0, hi, (64, 64))
        measured = apply_nonlinearity(det.lin_coeffs, linear)
        assert np.all(measured <= linear + 1e-9)  # the detector is sub-linear
        back = linearity_polynomial(det.lin_coeffs.astype(np.float64), measured)
        np.testing.assert_allclose(back, linear, rtol=0, atol=1e-3)
    # realistic size of the non-linearity near saturation: 5-20 %
    m = apply_nonlinearity(det.lin_coeffs, np.full((64, 64), 50000.0))
    assert 0.05 < np.median(1 - m / 50000.0) < 0.2


def test_detector_flags_and_reference_pixels():
    det = make_detector(np.random.default_rng(5), 128, 96, hot_fraction=0.01, dead_fraction=0.01)
    ref = reference_pixel_mask(128, 96)
    assert ref.sum() == 128 * 96 - 120 * 88
    assert np.array_equal((det.mask & DQ["REFERENCE_PIXEL"]) != 0, ref)
    assert not np.any(det.hot & ref) and not np.any(det.dead & ref)
    assert np.all(det.flat[det.dead] == 0) and np.all(det.dark_rate[det.dead] == 0)
    assert np.all(det.dark_rate[det.hot] >= 0.5)
    assert np.all((det.mask[det.hot | det.dead] & DQ["DO_NOT_USE"]) != 0)
    light = ~ref
    # binomial counts: within 5 sigma of the requested fraction
    for flag in (det.hot, det.dead):
        n, p = light.sum(), 0.01
        assert abs(flag.sum() - n * p) < 5 * np.sqrt(n * p * (1 - p))
    assert np.all(det.saturation == np.floor(det.saturation))
    assert np.all(det.saturation - det.superbias > 40000)


def test_readout_group_mapping_with_gaps():
    ro = Readout(nints=1, ngroups=3, nframes=2, groupgap=3, tframe=1.0, noutputs=1)
    assert ro.read_frames.tolist() == [[0, 1], [5, 6], [10, 11]]
    assert ro.integration_time == 12.0
    frames = np.arange(12)
    # frames 2-4 are dropped: charge arriving then first shows in group 1
    assert ro.group_of_frame(frames).tolist() == [0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2]


def test_cosmic_ray_count_matches_rate():
    light = ~reference_pixel_mask(200, 200)
    ro = Readout(nints=3, ngroups=10, nframes=1, groupgap=0, tframe=10.0, noutputs=1)
    rate = 1e-4
    crs = draw_cosmic_rays(np.random.default_rng(6), light, ro, rate, (10.0, 5000.0))
    expected = rate * light.sum() * ro.integration_time * ro.nints
    assert abs(len(crs) - expected) < 4 * np.sqrt(expected)
    assert np.all(light[crs["y"], crs["x"]])
    assert crs["amplitude"].min() >= 10 and crs["amplitude"].max() <= 5000
    # log-uniform: the median amplitude is the geometric mean of the range (sqrt(5e4) ~ 224)
    assert 150 < np.median(crs["amplitude"]) < 330
    assert np.array_equal(crs["group"], np.maximum(np.ceil(crs["time"] / 10.0) - 1, 0))


def test_bias_offsets_structure():
    ro = Readout(nints=2, ngroups=5, nframes=1, groupgap=0, tframe=1.0, noutputs=4)
    off = bias_offsets(np.random.default_rng(7), ro, 2048)
    assert off.shape == (2, 5, 2048) and off.dtype == np.float32
    # constant within each amplifier and column parity
    for amp in range(4):
        block = off[:, :, amp * 512 : (amp + 1) * 512]
        assert np.ptp(block[..., 0::2], axis=-1).max() == 0
        assert np.ptp(block[..., 1::2], axis=-1).max() == 0
    assert not np.allclose(off[0, :, 0], off[0, :, 512])
