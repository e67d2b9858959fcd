"""Detector1 accuracy against known truth on a controlled simulated exposure.

The exposure uses the simulator's detector (its reference files are the truth of gain, read
noise, bias, thresholds, non-linearity and dark) but a rate map chosen for the test: rates
log-uniform in 0.3-300 DN/s (as the jwst anchor in research/perf.md), a few pixels that
saturate part-way up the ramp, a few saturated from group 0, and cosmic rays on ~4 % of the
pixels (amplitudes log-uniform in 10-5000 DN). NIRCam full-frame timing (TGROUP 10.74 s),
10 groups, 1 integration, 256x256.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from jwpipe.simulate import simulate_field
from jwpipe.simulate.detector import DetectorProperties
from jwpipe.simulate.ramps import Readout, bias_offsets, draw_cosmic_rays, simulate_ramps
from jwpipe.stpipe.refstore import set_store

SIZE = 256
NGROUPS = 10
TFRAME = 10.73677
#: Median |z| of a unit normal: the value a correct ERR gives for |fit - true| / ERR.
MEDIAN_ABS_NORMAL = 0.6745


class Controlled:
    """The controlled exposure and its truth."""

    def __init__(self, root: Path) -> None:
        sim = simulate_field(root / "sim", n_exposures=1, size=SIZE, ngroups=NGROUPS,
                             frame_time=TFRAME, seed=11, cr_rate=0.0)
        self.store = sim.store_dir
        refs = {p.name.split("_")[2]: p for p in self.store.rglob("jwst_nircam_*.fits")}

        def sci(reftype: str, ext: str = "SCI") -> np.ndarray:
            return fits.getdata(refs[reftype], ext)

        mask = sci("mask", "DQ").astype(np.uint32)
        refpix = (mask & np.uint32(2**31)) != 0
        dark = sci("dark")
        self.det = DetectorProperties(
            gain=sci("gain"), readnoise=sci("readnoise"), superbias=sci("superbias"),
            saturation=sci("saturation"), lin_coeffs=sci("linearity", "COEFFS"),
            dark_rate=(dark[0] / TFRAME).astype(np.float32), flat=sci("flat"), mask=mask,
            refpix=refpix)
        rng = np.random.default_rng(2024)
        light = ~refpix
        rate = np.exp(rng.uniform(np.log(0.3), np.log(300.0), (SIZE, SIZE))).astype(np.float32)
        # partial saturation: linear signal reaches ~threshold-bias between groups 2 and 8
        full_well = self.det.saturation - self.det.superbias
        pick = rng.random((SIZE, SIZE))
        self.partial = light & (pick < 0.005)
        g_sat = rng.uniform(3.5, 8.0, (SIZE, SIZE))
        # 1.3: the measured (non-linear) signal lags the linear one; all of these saturate
        rate[self.partial] = (1.3 * full_well / (g_sat * TFRAME))[self.partial]
        self.sat0 = light & (pick > 0.9995)
        rate[self.sat0] = 1e5
        rate[refpix] = 0.0
        self.rate = rate
        self.readout = Readout(1, NGROUPS, 1, 0, TFRAME, 1)
        self.crs = draw_cosmic_rays(rng, light & ~self.partial & ~self.sat0, self.readout,
                                    4e-4, (10.0, 5000.0))
        offsets = bias_offsets(rng, self.readout, SIZE)
        data = simulate_ramps(rate, self.det, self.readout, rng, self.crs, offsets)
        self.uncal = root / "jw01234001001_02101_00001_nrca1_uncal.fits"
        with fits.open(sim.uncal_files[0]) as hdul:
            hdul["SCI"].data = data
            hdul.writeto(self.uncal)
        self.usable = light & ((mask & 1) == 0)


@pytest.fixture(scope="module")
def controlled(tmp_path_factory):
    return Controlled(tmp_path_factory.mktemp("d1acc"))


@pytest.fixture(scope="module")
def products(controlled):
    from jwpipe.pipeline import Detector1Pipeline

    set_store(controlled.store)
    try:
        pipe = Detector1Pipeline()
        rate = pipe.run(str(controlled.uncal))
        # the jump flags, for completeness / false positives
        jumpdq = None
        pipe2 = Detector1Pipeline()
        pipe2.ramp_fit.skip = True
        ramp = pipe2.run(str(controlled.uncal))
        jumpdq = ramp.groupdq.copy()
    finally:
        set_store(None)
    return rate, jumpdq


def _cr_pixels(c: Controlled) -> np.ndarray:
    hit = np.zeros((SIZE, SIZE), bool)
    hit[c.crs["y"], c.crs["x"]] = True
    return hit


def _near(mask: np.ndarray) -> np.ndarray:
    """Pixels within one pixel (3x3) of ``mask``."""
    out = mask.copy()
    out[1:] |= mask[:-1]
    out[:-1] |= mask[1:]
    grown = out.copy()
    grown[:, 1:] |= out[:, :-1]
    grown[:, :-1] |= out[:, 1:]
    return grown


def _clean(c: Controlled) -> np.ndarray:
    return c.usable & ~_near(_cr_pixels(c)) & ~_near(c.partial | c.sat0)


def test_clean_pixels_rate_error_and_normalised_residuals(controlled, products):
    rate, _ = products
    sel = _clean(controlled)
    true = controlled.rate[sel].astype(np.float64)
    fit = rate.data[sel].astype(np.float64)
    err = rate.err[sel].astype(np.float64)
    assert np.isfinite(fit).all()
    rel = (fit - true) / true
    z = (fit - true) / err
    n = sel.sum()
    # jwst on comparable data: 1.53 % median |rel|, bias ~0, median |z| 0.69 (perf.md 2.13/3.5)
    assert np.median(np.abs(rel)) <= 0.0153
    # bias: median relative error within 3 standard errors of the median of ~N pixels
    se_med = 1.2533 * np.std(np.clip(rel, -1, 1)) / np.sqrt(n)
    assert abs(np.median(rel)) < max(3 * se_med, 0.002)
    med_z = np.median(np.abs(z))
    # |z| consistent with a unit normal within a few per cent (and no worse than jwst's 0.69)
    assert abs(med_z / MEDIAN_ABS_NORMAL - 1) < 0.03
    assert med_z <= 0.69
    # quantiles of |z| against the normal's (68.3 % within 1, 95.4 % within 2)
    assert abs(np.mean(np.abs(z) < 1) - 0.683) < 0.02
    assert abs(np.mean(np.abs(z) < 2) - 0.954) < 0.01


@pytest.mark.parametrize("lo,hi", [(0.3, 1), (1, 10), (10, 100), (100, 300)])
def test_bias_by_rate_bin(controlled, products, lo, hi):
    rate, _ = products
    sel = _clean(controlled) & (controlled.rate >= lo) & (controlled.rate < hi)
    z = (rate.data[sel] - controlled.rate[sel]) / rate.err[sel]
    # Bias below a tenth of the per-pixel noise in every bin. (Measured: mean z -0.04 at
    # 0.3-10 DN/s, i.e. -0.1 to -0.2 % of the rate; it comes from the data-dependent optimal
    # weights and the median-difference Poisson variance of the OLS_C definition.)
    assert abs(np.mean(z)) < 0.1
    assert abs(np.median(z)) < 0.1
    assert abs(np.median(np.abs(z)) / MEDIAN_ABS_NORMAL - 1) < 0.06


def test_cosmic_ray_pixels_recover_their_rate(controlled, products):
    rate, _ = products
    hit = np.zeros((SIZE, SIZE), bool)
    hit[controlled.crs["y"], controlled.crs["x"]] = True
    sel = hit & controlled.usable & ~_near(controlled.partial | controlled.sat0)
    z = (rate.data[sel] - controlled.rate[sel]) / rate.err[sel]
    assert np.isfinite(z).all()
    # jwst with its own jump flags: median |z| 0.79 and |z| > 5 for 0.42 % (perf.md 2.14);
    # allowed: that value plus two standard errors of a median |z| of N pixels
    se = 0.5 / (0.635 * np.sqrt(sel.sum()))
    assert np.median(np.abs(z)) < 0.79 + 2 * se
    assert np.mean(np.abs(z) > 5) < 0.0042 + 3 * np.sqrt(0.0042 / sel.sum())
    # undetected (< 4 sigma) hits bias the rate up; jwst: +0.36 % median relative bias
    rel = rate.data[sel] / controlled.rate[sel] - 1
    print(f"CR pixels: N={sel.sum()} median|z|={np.median(np.abs(z)):.3f} "
          f"median rel={np.median(rel):.4%} median|rel|={np.median(np.abs(rel)):.3%}")
    assert np.median(rel) < 0.0036 + 2 * 1.2533 * np.std(np.clip(rel, -1, 1)) / np.sqrt(sel.sum())


def test_partially_saturated_pixels_keep_a_correct_rate(controlled, products):
    rate, _ = products
    sel = controlled.partial & controlled.usable & ~_near(controlled.sat0)
    assert sel.sum() > 100
    assert np.all(rate.dq[sel] & 2)  # SATURATED
    fit, true = rate.data[sel], controlled.rate[sel]
    assert np.isfinite(fit).all()
    z = (fit - true) / rate.err[sel]
    assert abs(np.median(np.abs(z)) / MEDIAN_ABS_NORMAL - 1) < 0.15
    assert np.median(np.abs(fit / true - 1)) < 0.01


def test_saturated_from_group_zero_is_nan_and_flagged(controlled, products):
    rate, _ = products
    sel = controlled.sat0
    assert sel.any()
    assert np.isnan(rate.data[sel]).all()
    assert np.all(rate.dq[sel] & 1) and np.all(rate.dq[sel] & 2)
    assert np.all(rate.err[sel] == 0)


def _diff_sigma(c: Controlled) -> np.ndarray:
    """Noise of one group difference in DN (read noise + Poisson of the true rate + dark)."""
    signal_e = (c.rate + c.det.dark_rate) * TFRAME * c.det.gain
    return np.sqrt(c.det.readnoise.astype(np.float64) ** 2 + signal_e / c.det.gain**2)


def test_jump_completeness_by_amplitude(controlled, products):
    _, gdq = products
    crs = controlled.crs
    # one hit per (pixel, group) only, and usable pixels
    ok = controlled.usable[crs["y"], crs["x"]]
    key = crs["y"] * SIZE + crs["x"]
    _, counts = np.unique(key, return_counts=True)
    single = np.isin(key, np.unique(key)[counts == 1])
    # groups flagged SATURATED (grown from saturating neighbours) cannot carry a jump flag
    near_sat = _near(controlled.partial | controlled.sat0)[crs["y"], crs["x"]]
    crs = crs[ok & single & ~near_sat & (crs["group"] >= 1)]
    amp_sigma = crs["amplitude"] / _diff_sigma(controlled)[crs["y"], crs["x"]]
    found = (gdq[0, crs["group"], crs["y"], crs["x"]] & 4) != 0
    mid = (amp_sigma >= 4) & (amp_sigma < 6)
    high = amp_sigma >= 6
    assert mid.sum() > 50 and high.sum() > 1000
    # jwst: 75-77 % at 4-6 sigma, 99.6-99.8 % at 6-10 sigma (perf.md 2.18)
    assert found[mid].mean() >= 0.75
    assert found[high].mean() >= 0.995


def test_jump_false_positive_rate(controlled, products):
    _, gdq = products
    away = controlled.usable & ~_near(_cr_pixels(controlled)) & ~_near(
        controlled.partial | controlled.sat0)
    flags = (gdq[0, 1:][:, away] & 4) != 0
    rate = flags.mean()
    # jwst: 1.9e-4 per group difference with 10 groups (perf.md 2.19)
    assert rate <= 2e-4
