"""Tests of jwpipe.algorithms.drizzle_psf: the PSF widening of drizzle's kernels at given
sub-pixel phases, and the encircled-energy change it causes."""

from __future__ import annotations

import numpy as np
import pytest

from jwpipe.algorithms.drizzle_psf import (
    KernelVarianceTally,
    encircled_energy_ratio,
    kernel_moments,
    random_phase_variance,
)
from jwpipe.algorithms.image_resample import DrizzleAccumulator


def test_square_kernel_moments_at_known_phases():
    s = np.array([0.0, 0.1, 0.25, 0.5, 0.8])
    m1, m2 = kernel_moments(10.0 + s, 1.0)
    # pixfrac 1 at the output scale: weights 1 - s and s on two pixels
    assert np.allclose(m1, 0.0, atol=1e-12)
    assert np.allclose(m2, s * (1 - s))
    m1, m2 = kernel_moments(np.array([3.3, -2.6]), 0.0)  # point: the nearest pixel
    assert np.allclose(m1, [-0.3, -0.4]) and np.allclose(m2, [0.09, 0.16])


@pytest.mark.parametrize("drop", [0.0, 0.5, 1.0, 1.6, 2.0])
def test_random_phase_variance(drop):
    # a uniform photon position in the drop, then uniform rounding: (d^2 + 1) / 12 for d >= 1
    expected = {0.0: 1 / 12, 1.0: 1 / 6, 1.6: (1.6**2 + 1) / 12, 2.0: 5 / 12}
    if drop in expected:
        assert random_phase_variance(drop) == pytest.approx(expected[drop], rel=1e-4)
    # the phase average never exceeds the total variance of photon position and rounding
    assert random_phase_variance(drop) <= (drop**2 + 1) / 12 + 1e-6


def _shifted_map(shape, dx, dy):
    yy, xx = np.indices(shape, dtype=np.float64)
    return np.stack([xx + dx, yy + dy], axis=-1)


def test_tally_mixes_exposures_at_their_phases():
    shape = (64, 64)
    aligned = KernelVarianceTally(shape, 1.0)
    aligned.add(_shifted_map(shape, 0.0, 0.0))
    assert aligned.variance() == pytest.approx(0.0, abs=1e-12)
    half = KernelVarianceTally(shape, 1.0)
    half.add(_shifted_map(shape, 0.5, 0.5))
    assert half.variance() == pytest.approx(0.25)
    # two exposures, one on the grid and one half a pixel off in x: x variance (0 + 1/4) / 2
    mixed = KernelVarianceTally(shape, 1.0)
    mixed.add(_shifted_map(shape, 0.0, 0.0))
    mixed.add(_shifted_map(shape, 0.5, 0.0), weight=1.0)
    assert mixed.variance() == pytest.approx(0.0625)
    # a zero-weight exposure does not count
    zero = KernelVarianceTally(shape, 1.0)
    zero.add(_shifted_map(shape, 0.0, 0.0))
    zero.add(_shifted_map(shape, 0.5, 0.5), weight=0.0)
    assert zero.variance() == pytest.approx(0.0, abs=1e-12)
    assert np.isnan(KernelVarianceTally(shape, 1.0).variance())


def test_tally_random_phases_of_a_rotated_exposure():
    """An exposure rotated by 10 degrees sweeps all phases across the grid."""
    shape = (256, 256)
    yy, xx = np.indices(shape, dtype=np.float64)
    c, s = np.cos(np.radians(10.0)), np.sin(np.radians(10.0))
    pm = np.stack([c * (xx - 128) - s * (yy - 128) + 128.3,
                   s * (xx - 128) + c * (yy - 128) + 128.7], axis=-1)
    tally = KernelVarianceTally(shape, 1.0)
    tally.add(pm)
    assert tally.variance() == pytest.approx(1 / 6, abs=0.01)


def test_tally_phase_drifting_within_a_cell_is_no_widening():
    """A distorted exposure's phase drifts across the grid (here a 3 % scale change: a full
    pixel every ~33 px). With the point kernel each star is only shifted, never widened, by
    its exposure's drizzle: the tally reports 0, not the ~1/12 of the cell's mixture of
    shifts. Two such exposures half a pixel apart are a real mixture at every source:
    shifts 1/2 apart, variance 1/16 per axis in x."""
    shape = (128, 128)
    yy, xx = np.indices(shape, dtype=np.float64)
    scaled = np.stack([1.03 * (xx - 64) + 64.2, 1.03 * (yy - 64) + 63.9], axis=-1)
    one = KernelVarianceTally(shape, 0.0)
    one.add(scaled)
    assert one.variance() == pytest.approx(0.0, abs=0.005)
    two = KernelVarianceTally(shape, 0.0)
    two.add(scaled)
    two.add(scaled + np.array([0.5, 0.0]))
    assert two.variance() == pytest.approx(0.0625 / 2, abs=0.005)


def _box_gaussian_ee(sigma, nbox, radius):
    """EE of a Gaussian convolved with ``nbox`` unit boxes per axis (numerical)."""
    h = 0.01
    t = np.arange(-6 * sigma - 3, 6 * sigma + 3 + h / 2, h)
    prof = np.exp(-0.5 * (t / sigma) ** 2)
    for _ in range(nbox):
        prof = np.convolve(prof, np.ones(100), mode="same")
    prof /= prof.sum()
    rr = np.hypot(t[:, None], t[None, :])
    order = np.argsort(rr, axis=None)
    cum = np.cumsum((prof[:, None] * prof[None, :]).ravel()[order])
    return np.interp(radius, rr.ravel()[order], cum)


def test_encircled_energy_ratio_exact_for_gaussians():
    sigma2 = 1.1
    r = np.linspace(0.3, 4.0, 9)
    ee = 1 - np.exp(-(r**2) / (2 * sigma2))
    for dv in (-0.3, -1 / 6, 0.05, 0.4):
        want = (1 - np.exp(-(r**2) / (2 * (sigma2 + dv)))) / ee
        assert np.allclose(encircled_energy_ratio(r, ee, r, dv), want, rtol=1e-3), dv
    assert np.all(encircled_energy_ratio(r, ee, r, 0.0) == 1.0)


def test_encircled_energy_ratio_removing_a_drizzle_kernel():
    """The simulator's PSF (FWHM 2.1 px, pixel-integrated, aperture pixels held uniform) with
    and without the random-phase drizzle kernel (two more boxes, variance 1/6): the ratio
    derived from the 9-row curve with it matches the direct computation to 0.3 %."""
    sigma = 2.1 / 2.3548
    grid = np.linspace(0.05, 8.0, 800)
    ee4 = _box_gaussian_ee(sigma, 4, grid)
    levels = np.arange(1, 10) / 10
    rows = np.interp(levels, ee4, grid)  # an APCORR table: radius of each EE level
    radius = rows[[2, 4, 6]]  # the 30/50/70 % radii
    want = _box_gaussian_ee(sigma, 2, radius) / levels[[2, 4, 6]]
    got = encircled_energy_ratio(rows, levels, radius, -1 / 6)
    assert want[-1] > 1.08  # the effect is large for an undersampled PSF
    assert np.allclose(got, want, rtol=3e-3)


def test_tally_follows_the_drizzle_accumulator_inputs():
    """What the tally measures is what drizzle does: a point source drizzled at phase 0.5
    comes out wider by 1/4 px^2 per axis than at phase 0."""
    shape = (40, 40)
    yy, xx = np.indices(shape, dtype=np.float64)
    star = np.exp(-0.5 * ((xx - 20.3) ** 2 + (yy - 19.6) ** 2) / 1.2**2)

    def second_moment(img):
        w = img / img.sum()
        mx, my = (w * xx).sum(), (w * yy).sum()
        return 0.5 * ((w * (xx - mx) ** 2).sum() + (w * (yy - my) ** 2).sum())

    widths = []
    for shift in (0.0, 0.5):
        acc = DrizzleAccumulator(shape, pixfrac=1.0)
        acc.add(star.astype(np.float32), _shifted_map(shape, shift, shift))
        widths.append(second_moment(np.nan_to_num(acc.finalize().sci)))
        tally = KernelVarianceTally(shape, 1.0, cell=8, step=1)
        tally.add(_shifted_map(shape, shift, shift))
        assert tally.variance() == pytest.approx(shift * (1 - shift))
    assert widths[1] - widths[0] == pytest.approx(0.25, abs=0.01)
