"""Unit tests of the Detector1 algorithms on small hand-built arrays with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from jwpipe.algorithms import _dq
from jwpipe.algorithms._util import median_of_first, nanmedian_axis0, sorted_with_counts
from jwpipe.algorithms.dark_current import subtract_dark
from jwpipe.algorithms.dq_init import dq_init
from jwpipe.algorithms.gain_scale import gain_scale
from jwpipe.algorithms.group_scale import group_scale, group_scale_needed
from jwpipe.algorithms.jump import detect_jumps
from jwpipe.algorithms.linearity import correct_linearity
from jwpipe.algorithms.ramp_fit import _slope_coefficients, fit_ramps, snr_power
from jwpipe.algorithms.refpix import correct_refpix, detector_view, sigma_clipped_mean
from jwpipe.algorithms.saturation import dilate, flag_saturation
from jwpipe.algorithms.superbias import subtract_superbias
from jwpipe.errors import ReferenceFileError, StepInputError

TG = 10.0


def ramp(nints=1, ngroups=5, ny=3, nx=4, fill=0.0):
    data = np.full((nints, ngroups, ny, nx), fill, np.float32)
    return data, np.zeros(data.shape, np.uint8), np.zeros((ny, nx), np.uint32)


# ---- helpers -------------------------------------------------------------------------------

def test_nanmedian_matches_numpy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(9, 500)).astype(np.float32)
    x[rng.random(x.shape) < 0.3] = np.nan
    x[:, 0] = np.nan
    np.testing.assert_allclose(nanmedian_axis0(x)[1:], np.nanmedian(x[:, 1:], axis=0), rtol=1e-6)
    assert np.isnan(nanmedian_axis0(x)[0])


def test_network_sort_gives_numpy_sort_order():
    rng = np.random.default_rng(1)
    for n in (2, 3, 4, 7, 9, 10, 16, 33, 64, 65, 90):
        x = rng.normal(size=(n, 300)).astype(np.float32)
        x[rng.random(x.shape) < 0.2] = np.nan
        x[:, 0] = np.nan
        x[0, 1], x[-1, 2], x[:2, 3] = np.inf, -np.inf, 0.0
        x[rng.integers(0, n), 4] = -0.0
        x[:, 5] = 1.5  # ties
        s, counts = sorted_with_counts(x)
        reference = np.sort(x, axis=0)
        np.testing.assert_array_equal(counts, np.count_nonzero(~np.isnan(x), axis=0))
        rows = np.arange(n)[:, None]
        finite_part = rows < counts[None, :]
        np.testing.assert_array_equal(s[finite_part], reference[finite_part])
        for m in (counts, np.maximum(counts - 1, 0)):
            np.testing.assert_array_equal(median_of_first(s, m),
                                          median_of_first(reference, m))


# ---- group_scale ---------------------------------------------------------------------------

def test_group_scale_rules():
    assert not group_scale_needed(None, 4)
    assert not group_scale_needed(4, None)
    assert group_scale_needed(5, None)
    assert not group_scale_needed(5, 5)
    data, _, _ = ramp(fill=10.0)
    assert group_scale(data, 5, 8) == pytest.approx(1.6)
    np.testing.assert_allclose(data, 16.0)
    data, _, _ = ramp(fill=10.0)
    assert group_scale(data, 4, 4) == 1.0
    np.testing.assert_array_equal(data, 10.0)
    with pytest.raises(StepInputError):
        group_scale(data, 0, 4)


# ---- dq_init -------------------------------------------------------------------------------

def test_dq_init_merges_mask_and_dnu():
    _, gdq, pdq = ramp(nints=2)
    mask = np.zeros(pdq.shape, np.uint32)
    mask[0, 0] = _dq.DEAD | _dq.DO_NOT_USE
    mask[1, 1] = _dq.HOT
    user = np.zeros(pdq.shape, np.uint32)
    user[2, 3] = _dq.WARM
    dq_init(pdq, gdq, mask, user)
    assert pdq[0, 0] == _dq.DEAD | _dq.DO_NOT_USE
    assert pdq[1, 1] == _dq.HOT and pdq[2, 3] == _dq.WARM
    assert np.all(gdq[:, :, 0, 0] == _dq.DO_NOT_USE)
    assert gdq.sum() == 2 * 5
    with pytest.raises(StepInputError, match="mask shape"):
        dq_init(pdq, gdq, np.zeros((2, 2), np.uint32))


# ---- saturation ----------------------------------------------------------------------------

def test_dilate_box():
    m = np.zeros((5, 5), bool)
    m[2, 2] = True
    assert dilate(m, 1).sum() == 9
    assert dilate(m, 2).sum() == 25
    assert dilate(m, 0).sum() == 1


def test_saturation_forward_growth_floor_and_nosat():
    data, gdq, pdq = ramp(ngroups=4, ny=5, nx=5, fill=100.0)
    data[0, 2:, 2, 2] = 1000.0  # saturates from group 2
    data[0, 1, 0, 4] = 0.0  # A/D floor in group 1 only
    data[0, :, 4, 0] = 5000.0  # would saturate but NaN threshold
    thresh = np.full((5, 5), 900.0, np.float32)
    thresh[4, 0] = np.nan
    n = flag_saturation(data, gdq, pdq, thresh, n_pix_grow_sat=1)
    sat = (gdq[0] & _dq.SATURATED) != 0
    assert not sat[:2].any()
    assert sat[2:, 1:4, 1:4].all() and sat[2:].sum() == 2 * 9
    assert gdq[0, 1, 0, 4] == _dq.AD_FLOOR | _dq.DO_NOT_USE
    assert gdq[0, 0, 0, 4] == 0 and gdq[0, 2, 0, 4] == 0
    assert pdq[4, 0] & _dq.NO_SAT_CHECK
    assert n == 1


def test_saturation_readpattern_dilution():
    # NFRAMES=4: group 1 averages frames 5..8; dilution = 6.5/8. A pixel whose group 1 average is
    # between 0.8125*thresh and thresh, with group 2 saturated, saturated within group 1.
    data, gdq, pdq = ramp(ngroups=3, ny=1, nx=2, fill=10.0)
    thresh = np.full((1, 2), 1000.0, np.float32)
    data[0, :, 0, 0] = [500.0, 900.0, 1000.0]  # 900 >= 812.5 -> DNU
    data[0, :, 0, 1] = [500.0, 700.0, 1000.0]  # 700 < 812.5 -> untouched
    flag_saturation(data, gdq, pdq, thresh, n_pix_grow_sat=0, nframes=4)
    assert gdq[0, 1, 0, 0] & _dq.DO_NOT_USE
    assert gdq[0, 1, 0, 1] == 0
    gdq[:] = 0
    flag_saturation(data, gdq, pdq, thresh, n_pix_grow_sat=0, nframes=4, use_readpatt=False)
    assert gdq[0, 1, 0, 0] == 0


# ---- superbias / dark / gain_scale ---------------------------------------------------------

def test_superbias_subtracts_and_propagates():
    data, _, pdq = ramp(nints=2, fill=100.0)
    bias = np.full(pdq.shape, 30.0, np.float32)
    bias[0, 0] = np.nan
    bdq = np.zeros(pdq.shape, np.uint32)
    bdq[1, 2] = _dq.UNRELIABLE_BIAS
    subtract_superbias(data, pdq, bias, bdq)
    assert np.all(data[:, :, 0, 0] == 100.0)
    assert np.all(data[:, :, 1, 1] == 70.0)
    assert pdq[1, 2] == _dq.UNRELIABLE_BIAS


def test_dark_direct_and_frame_averaged():
    data, _, pdq = ramp(ngroups=3, fill=0.0)
    dark = np.arange(1, 4, dtype=np.float32)[:, None, None] * np.ones((3, 3, 4), np.float32)
    assert subtract_dark(data, pdq, dark)
    np.testing.assert_allclose(data[0, :, 0, 0], [-1, -2, -3])
    # NFRAMES=2, GROUPGAP=1 from a per-frame dark of 4 frames (extrapolated to 8 frames):
    # group g uses frames 3g, 3g+1 -> values (3g+1 + 3g+2)/2
    data, _, pdq = ramp(ngroups=3, fill=0.0)
    dark = np.arange(1, 5, dtype=np.float32)[:, None, None] * np.ones((4, 3, 4), np.float32)
    assert subtract_dark(data, pdq, dark, nframes=2, groupgap=1)
    np.testing.assert_allclose(data[0, :, 1, 1], [-1.5, -4.5, -7.5])
    assert not subtract_dark(data, pdq, dark, nframes=1, dark_nframes=2)
    with pytest.raises(ReferenceFileError):
        subtract_dark(data, pdq, dark, nframes=4, dark_nframes=2)


def test_gain_scale():
    a = np.full((2, 2), 2.0, np.float32)
    e, vp, vr = a.copy(), a.copy(), a.copy()
    gain_scale(a, e, vp, vr, 1.5)
    assert a[0, 0] == 3.0 and e[0, 0] == 3.0 and vp[0, 0] == pytest.approx(4.5)


# ---- linearity -----------------------------------------------------------------------------

def test_linearity_polynomial_saturated_and_bad_coeffs():
    data, gdq, pdq = ramp(ngroups=2, ny=2, nx=2, fill=100.0)
    coeffs = np.zeros((3, 2, 2), np.float32)
    coeffs[0] = 1.0
    coeffs[1] = 2.0
    coeffs[2] = 0.01
    coeffs[2, 1, 1] = np.nan
    gdq[0, 1, 0, 1] = _dq.SATURATED
    correct_linearity(data, gdq, pdq, coeffs)
    assert data[0, 0, 0, 0] == pytest.approx(1 + 200 + 100)
    assert data[0, 1, 0, 1] == 100.0  # saturated group untouched
    assert data[0, 0, 0, 1] == pytest.approx(301.0)
    assert np.all(data[0, :, 1, 1] == 100.0)
    assert pdq[1, 1] == _dq.NO_LIN_CORR and pdq[0, 0] == 0


# ---- refpix --------------------------------------------------------------------------------

def test_refpix_amplifier_even_odd_offsets_removed():
    rng = np.random.default_rng(3)
    data = rng.normal(0, 1.0, (1, 2, 2048, 2048)).astype(np.float32)
    offsets = rng.uniform(-50, 50, (2, 4, 2))  # group, amp, parity
    truth = data.copy()
    for g in range(2):
        for a in range(4):
            for p in range(2):
                data[0, g, :, a * 512 + p:(a + 1) * 512:2] += offsets[g, a, p]
    pdq = np.zeros((2048, 2048), np.uint32)
    assert correct_refpix(data, pdq, use_side_ref_pixels=False)
    # residual offset is the clipped mean of 2 x 4 x 256 unit-noise samples: sigma ~ 0.022
    resid = (data - truth)[0, :, 4:-4, 4:-4]
    assert np.abs(resid.mean(axis=(1, 2))).max() < 0.1
    assert np.abs(resid).max() < 0.2


def test_refpix_side_rows_drift_removed_and_subarray_skip():
    rng = np.random.default_rng(4)
    n = 2048
    drift = (20 * np.sin(np.arange(n) / 200.0)).astype(np.float32)
    data = rng.normal(0, 1.0, (1, 1, n, n)).astype(np.float32) + drift[None, None, :, None]
    pdq = np.zeros((n, n), np.uint32)
    correct_refpix(data, pdq, odd_even_columns=False)
    rows = data[0, 0, 100:-100, 4:-4].mean(axis=1)
    # median of 8 columns x 11 rows of unit noise: sigma ~ 1.2533/sqrt(88) ~ 0.13 per row
    assert np.abs(rows).max() < 0.8
    sub = np.ones((1, 1, 64, 64), np.float32)
    assert not correct_refpix(sub, np.zeros((64, 64), np.uint32))
    np.testing.assert_array_equal(sub, 1.0)


def test_detector_view_and_clipped_mean():
    a = np.arange(6).reshape(2, 3)
    assert detector_view(a, -1, 2)[0, 0] == 2
    assert detector_view(a, 2, 1).shape == (3, 2)
    vals = np.array([[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 100.0]])
    assert sigma_clipped_mean(vals, 2.0)[0] == pytest.approx(1.0)


# ---- jump ----------------------------------------------------------------------------------

def test_jump_flags_group_after_step_and_neighbours():
    ng = 8
    data, gdq, pdq = ramp(ngroups=ng, ny=5, nx=5)
    data[0] = (np.arange(ng, dtype=np.float32) * 50.0)[:, None, None]
    data[0, 5:, 2, 2] += 500.0  # 500 DN jump; sigma ~ sqrt(100 e + 400 e^2)/2 e/DN
    gain = np.full((5, 5), 2.0, np.float32)
    rn = np.full((5, 5), 10.0, np.float32)
    res = detect_jumps(data, gdq, pdq, gain, rn)
    jumps = np.argwhere(gdq[0] & _dq.JUMP_DET)
    assert res.n_primary == 1
    centre = [list(j) for j in jumps if j[1] == 2 and j[2] == 2]
    assert centre == [[5, 2, 2]]
    neighbours = {(int(y), int(x)) for g, y, x in jumps if g == 5} - {(2, 2)}
    assert neighbours == {(1, 2), (3, 2), (2, 1), (2, 3)}


def test_jump_skips_short_ramps_and_ignores_saturated():
    data, gdq, pdq = ramp(ngroups=2)
    g = np.ones(pdq.shape, np.float32)
    assert detect_jumps(data, gdq, pdq, g, g).skipped
    data, gdq, pdq = ramp(ngroups=6, ny=1, nx=1)
    data[0, :, 0, 0] = [0, 10, 20, 30, 5000, 5000]
    gdq[0, 4:, 0, 0] = _dq.SATURATED
    g = np.ones((1, 1), np.float32)
    res = detect_jumps(data, gdq, pdq, 2 * g, 10 * g)
    assert res.n_primary == 0 and not (gdq & _dq.JUMP_DET).any()


def test_jump_bad_gain_flagged():
    data, gdq, pdq = ramp(ngroups=5, ny=1, nx=2)
    gain = np.array([[2.0, np.nan]], np.float32)
    detect_jumps(data, gdq, pdq, gain, np.full((1, 2), 10.0, np.float32))
    assert pdq[0, 1] == _dq.NO_GAIN_VALUE | _dq.DO_NOT_USE and pdq[0, 0] == 0


# ---- ramp_fit ------------------------------------------------------------------------------

def test_snr_power_table_and_coefficients():
    np.testing.assert_array_equal(
        snr_power(np.array([0, 4.9, 5, 9.9, 10, 20, 50, 100, 1e4])),
        [0, 0, 0.4, 0.4, 1, 3, 6, 10, 10],
    )
    c = _slope_coefficients(6)
    # every weighting gives the exact slope of a straight line
    k = np.arange(6.0)
    np.testing.assert_allclose(c @ (3.0 * k + 7.0), 3.0)
    np.testing.assert_allclose(c.sum(axis=1), 0.0, atol=1e-12)


def _fit(data, gdq, pdq, rn=10.0, gain=2.0, **kw):
    shape = pdq.shape
    return fit_ramps(data, gdq, pdq, np.full(shape, rn, np.float32),
                     np.full(shape, gain, np.float32), group_time=TG, frame_time=TG, **kw)


def test_ramp_fit_noiseless_line_and_variances():
    ng = 6
    data, gdq, pdq = ramp(ngroups=ng, ny=1, nx=2)
    data[0, :, 0, 0] = 100 + 5.0 * TG * np.arange(ng)  # 5 DN/s
    data[0, :, 0, 1] = 100 + 0.0 * np.arange(ng)
    rate, ints = _fit(data, gdq, pdq)
    np.testing.assert_allclose(rate.data[0], [5.0, 0.0], atol=1e-5)
    # Poisson: rate/(tgroup*gain*(n-1)); read noise: 12 (rn g/sqrt2 / tg)^2/((n^3-n) g^2)
    assert rate.var_poisson[0, 0] == pytest.approx(5.0 / (TG * 2.0 * 5))
    vr = 12 * (10.0 / np.sqrt(2) / TG) ** 2 / (ng**3 - ng)
    np.testing.assert_allclose(rate.var_rnoise[0], vr, rtol=1e-6)
    assert rate.var_poisson[0, 1] == 0.0
    np.testing.assert_allclose(rate.err[0], np.sqrt(rate.var_poisson[0] + vr), rtol=1e-6)
    np.testing.assert_allclose(ints.data[0], rate.data, rtol=1e-6)


def test_ramp_fit_jump_splits_segments():
    ng = 8
    data, gdq, pdq = ramp(ngroups=ng, ny=1, nx=1)
    data[0, :, 0, 0] = 2.0 * TG * np.arange(ng)
    data[0, 4:, 0, 0] += 1000.0
    gdq[0, 4, 0, 0] = _dq.JUMP_DET
    rate, _ = _fit(data, gdq, pdq)
    assert rate.data[0, 0] == pytest.approx(2.0, rel=1e-5)
    assert rate.dq[0, 0] == _dq.JUMP_DET
    # two segments of 4: read-noise variances add inversely
    vr4 = 12 * (10.0 / np.sqrt(2) / TG) ** 2 / (4**3 - 4)
    assert rate.var_rnoise[0, 0] == pytest.approx(vr4 / 2, rel=1e-5)


def test_ramp_fit_saturation_cases():
    ng = 6
    data, gdq, pdq = ramp(ngroups=ng, ny=1, nx=4)
    data[0] = (3.0 * TG * np.arange(ng))[:, None, None]
    gdq[0, 3:, 0, 0] = _dq.SATURATED  # partial: 3 good groups
    gdq[0, :, 0, 1] = _dq.SATURATED  # from group 0
    gdq[0, 1:, 0, 2] = _dq.SATURATED  # one good group -> suppressed
    rate, _ = _fit(data, gdq, pdq)
    assert rate.data[0, 0] == pytest.approx(3.0, rel=1e-5)
    assert rate.dq[0, 0] == _dq.SATURATED
    assert np.isnan(rate.data[0, 1]) and rate.dq[0, 1] == _dq.DO_NOT_USE | _dq.SATURATED
    assert rate.err[0, 1] == 0 and rate.var_poisson[0, 1] == 0
    assert np.isnan(rate.data[0, 2]) and rate.dq[0, 2] & _dq.DO_NOT_USE
    assert np.all(gdq[0, :, 0, 2] & _dq.DO_NOT_USE)  # suppressed in place, as jwst
    assert rate.data[0, 3] == pytest.approx(3.0, rel=1e-5)


def test_ramp_fit_one_group_kept_when_not_suppressed():
    ng = 4
    data, gdq, pdq = ramp(ngroups=ng, ny=1, nx=1)
    data[0, :, 0, 0] = 40.0
    gdq[0, 1:, 0, 0] = _dq.SATURATED
    rate, _ = _fit(data, gdq, pdq, suppress_one_group=False)
    assert rate.data[0, 0] == pytest.approx(40.0 / TG)  # one_group_time = TFRAME for NFRAMES=1


def test_ramp_fit_multiple_integrations_and_bad_gain():
    data, gdq, pdq = ramp(nints=2, ngroups=5, ny=1, nx=2)
    data[0] = (1.0 * TG * np.arange(5))[:, None, None]
    data[1] = (3.0 * TG * np.arange(5))[:, None, None]
    gain = np.array([[2.0, 0.0]], np.float32)
    rate, ints = fit_ramps(data, gdq, pdq, np.full((1, 2), 10.0, np.float32), gain,
                           group_time=TG, frame_time=TG)
    np.testing.assert_allclose(ints.data[:, 0, 0], [1.0, 3.0], rtol=1e-5)
    # equal read-noise variances -> plain mean
    assert rate.data[0, 0] == pytest.approx(2.0, rel=1e-5)
    assert np.isnan(rate.data[0, 1]) and rate.dq[0, 1] == _dq.DO_NOT_USE | _dq.NO_GAIN_VALUE
    assert ints.var_rnoise[0, 0, 0] == pytest.approx(2 * rate.var_rnoise[0, 0], rel=1e-5)


def test_ramp_fit_rejects_bad_shapes():
    data, gdq, pdq = ramp()
    with pytest.raises(StepInputError, match="gain"):
        fit_ramps(data, gdq, pdq, np.ones(pdq.shape), np.ones((2, 2)), group_time=1.0,
                  frame_time=1.0)


def test_jump_sigma_clipping_many_integrations():
    rng = np.random.default_rng(7)
    nints, ng = 120, 3
    data = np.cumsum(rng.normal(10.0, 5.0, (nints, ng, 4, 4)), axis=1).astype(np.float32)
    data[17, 2:, 1, 1] += 400.0
    gdq = np.zeros(data.shape, np.uint8)
    pdq = np.zeros((4, 4), np.uint32)
    g = np.ones((4, 4), np.float32)
    res = detect_jumps(data, gdq, pdq, g, 5 * g, flag_4_neighbors=False)
    assert gdq[17, 2, 1, 1] == _dq.JUMP_DET
    # 4-sigma two-sided Gaussian tail over 120 x 2 x 16 differences: ~0.015 expected
    assert 1 <= res.n_primary <= 4


def test_package_exports_functions_not_modules():
    import importlib

    importlib.import_module("jwpipe.algorithms.gain_scale")
    import jwpipe.algorithms as algorithms

    for name in ("gain_scale", "group_scale", "dq_init", "fit_ramps", "detect_jumps"):
        assert callable(getattr(algorithms, name)), name
