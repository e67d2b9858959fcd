"""Simulated data against the simulator's own noise model and truth.

Tolerances are derived from the noise model: a sample variance of N independent values has a
relative standard error sqrt(2/(N-1)); a mean has std/sqrt(N). Assertions use 4-5 sigma.
"""

from __future__ import annotations

import numpy as np

from jwpipe.simulate import simulate_field
from jwpipe.simulate.detector import apply_nonlinearity, linearity_polynomial

EMPTY_SKY = {"n_stars": 0, "n_galaxies": 0, "background": 0.0, "cr_rate": 0.0}


def _var_ok(z: np.ndarray, sigmas: float = 4.0) -> tuple[float, float]:
    z = z[np.isfinite(z)]
    var = float(np.var(z))
    return var, sigmas * np.sqrt(2.0 / (z.size - 1))


def test_read_noise_matches_readnoise_reference(tmp_path, simdata):
    res = simulate_field(tmp_path, n_exposures=1, size=96, ngroups=8, seed=11, **EMPTY_SKY)
    d = simdata(res)
    pix = d.good | d.refpix
    # non-overlapping CDS pairs are independent; the common drift is removed per pair
    cds = d.raw[0, 1::2] - d.raw[0, 0::2]
    cds -= np.mean(cds[:, pix], axis=-1)[:, None, None]
    expected = d.readnoise**2 + 2.0 / 12.0  # CDS read noise + uint16 rounding of both groups
    z = cds[:, pix] / np.sqrt(expected[pix])
    var, tol = _var_ok(z)
    assert abs(var - 1.0) < tol, (var, tol)


def test_multi_frame_groups_average_reads(tmp_path, simdata):
    # MEDIUM2: 2 frames averaged per group, 8 dropped; background 40 DN/s before the flat
    res = simulate_field(tmp_path, n_exposures=1, size=96, ngroups=4, readpatt="MEDIUM2",
                         frame_time=1.0, seed=12, n_stars=0, n_galaxies=0, cr_rate=0.0,
                         background=40 * 0.22)
    d = simdata(res)
    assert (d.nframes, int(d.header["GROUPGAP"]), d.tgroup) == (2, 8, 10.0)
    # reference pixels: no signal; CDS of averaged groups has variance rn^2/NFRAMES
    cds = d.raw[0, 1:] - d.raw[0, :-1]
    cds = cds[0::2]
    cds -= np.mean(cds[:, d.refpix], axis=-1)[:, None, None]
    z = cds[:, d.refpix] / np.sqrt(d.readnoise[d.refpix] ** 2 / 2 + 2 / 12)
    var, tol = _var_ok(z)
    assert abs(var - 1.0) < tol, (var, tol)
    # light pixels: group g averages reads at (g*(NFRAMES+GROUPGAP) + 1, + 2) * TFRAME
    lin = d.linear()[0]
    for g in range(4):
        expected = d.rate * d.tframe * (g * 10 + 1.5)
        diff = (lin[g] - expected)[d.good]
        se = np.std(diff) / np.sqrt(diff.size)
        refpix_level_error = np.sqrt(np.mean(d.readnoise**2) / 4 / d.nref_parity)
        assert abs(np.mean(diff)) < 4 * np.hypot(se, refpix_level_error), (g, np.mean(diff))


def test_poisson_variance_of_flat_illuminated_patch(tmp_path, simdata):
    # ~500 DN/s over 10 s groups: the group differences are Poisson dominated
    res = simulate_field(tmp_path, n_exposures=1, size=128, ngroups=5, frame_time=10.0, seed=13,
                         n_stars=0, n_galaxies=0, cr_rate=0.0, background=500 * 0.22)
    d = simdata(res)
    m = d.measured()[0]
    lin = d.linear()[0]
    deriv = np.array([k * d.coeffs[k] for k in range(1, d.coeffs.shape[0])])
    slope = linearity_polynomial(deriv, m)  # dL/dm per group: read noise scales with it
    sigma_g2 = d.readnoise**2 / 2 + 1 / 12
    zs = []
    for g in (0, 2):
        diff = lin[g + 1] - lin[g]
        mean = d.rate * d.tgroup
        var = d.rate * d.tgroup / d.gain + sigma_g2 * (slope[g] ** 2 + slope[g + 1] ** 2)
        zs.append(((diff - mean) / np.sqrt(var))[d.good])
    z = np.concatenate(zs)
    var, tol = _var_ok(z)
    assert abs(var - 1.0) < tol, (var, tol)
    # the reference-pixel level of each group is known to rn/sqrt(2*nref) per parity
    level_err = np.sqrt(2 * np.mean(sigma_g2) / d.nref_parity) / np.median(np.sqrt(var))
    assert abs(np.mean(z)) < 4 * np.sqrt(1 / z.size + level_err**2)
    # the variance is mostly Poisson: a 10 % wrong gain would be caught
    assert tol < 0.05


def test_saturation_clips_at_reference_threshold(tmp_path, simdata):
    res = simulate_field(tmp_path, n_exposures=1, size=64, ngroups=6, frame_time=10.0, seed=14,
                         n_stars=0, n_galaxies=0, cr_rate=0.0, background=2500 * 0.22)
    d = simdata(res)
    raw = d.raw[0]
    assert np.all(raw <= d.saturation + 1e-9)
    sat = raw == d.saturation
    # 25000 DN/group linear: group 0 is below, the last group far above every threshold
    assert not sat[0][d.good].any()
    assert sat[-1][d.good].all()
    # once saturated, a pixel stays at the threshold
    first = np.argmax(sat, axis=0)
    g = np.arange(raw.shape[0])[:, None, None]
    assert np.all(sat[(g >= first) & sat[-1]])


def test_cosmic_rays_rate_and_amplitudes(tmp_path, simdata):
    res = simulate_field(tmp_path, n_exposures=2, size=96, ngroups=10, frame_time=1.0,
                         seed=15, n_stars=0, n_galaxies=0, background=0.0, cr_rate=2e-3)
    from astropy.table import Table

    table = Table.read(res.cosmic_rays, format="ascii.ecsv")
    for i in range(2):
        d = simdata(res, i)
        light = ~d.refpix & (d.flat > 0)
        expected = 2e-3 * light.sum() * 10.0
        assert abs(len(d.crs) - expected) < 4 * np.sqrt(expected)
        assert np.sum(table["exposure"] == res.uncal_files[i].name[:-11]) == len(d.crs)
        # the recorded group shows the recorded amplitude (through the non-linearity)
        counts = np.zeros(d.raw.shape[-2:], int)
        np.add.at(counts, (d.crs["y"], d.crs["x"]), 1)
        cds = d.raw[0, 1:] - d.raw[0, :-1]
        cds -= np.median(cds[:, d.good], axis=-1)[:, None, None]
        sel = (counts[d.crs["y"], d.crs["x"]] == 1) & (d.crs["group"] >= 1)
        sel &= d.good[d.crs["y"], d.crs["x"]]
        cr = d.crs[sel]
        jump = cds[cr["group"] - 1, cr["y"], cr["x"]]
        amp = apply_nonlinearity(d.coeffs[:, cr["y"], cr["x"]], cr["amplitude_dn"].astype(float))
        resid = (jump - amp) / d.readnoise[cr["y"], cr["x"]]
        assert len(cr) > 50
        assert np.mean(np.abs(resid) < 5) > 0.99, np.sort(np.abs(resid))[-5:]


def test_mean_slope_of_clean_pixels_matches_true_rate(tmp_path, simdata):
    res = simulate_field(tmp_path, n_exposures=1, size=96, ngroups=8, frame_time=2.0, seed=16,
                         n_stars=12, n_galaxies=8, cr_rate=1e-4)
    d = simdata(res)
    lin = d.linear()[0]
    n = lin.shape[0]
    t = np.arange(n) * d.tgroup
    tc = t - t.mean()
    slope = np.tensordot(tc, lin, axes=(0, 0)) / np.sum(tc**2)
    var = (12 * (d.readnoise**2 / 2) / (n * (n * n - 1) * d.tgroup**2)
           + 6 * (n * n + 1) / (5 * n * (n * n - 1)) * d.rate / (d.gain * d.tgroup))
    clean = d.good & ~np.any(d.raw[0] >= d.saturation, axis=0)
    clean[d.crs["y"], d.crs["x"]] = False
    z = ((slope - d.rate) / np.sqrt(var))[clean]
    assert z.size > 0.9 * 88 * 88 - 50
    # reference-pixel level errors of the groups propagate into every pixel's slope
    level_slope_err = np.sqrt(np.mean(d.readnoise**2) / 4 / d.nref_parity * 12
                              / (n * (n * n - 1))) / d.tgroup
    assert abs(np.mean(z)) < 4 * np.sqrt(1 / z.size + np.mean(level_slope_err**2 / var[clean]))
    var_z, tol = _var_ok(z)
    assert abs(var_z - 1) < tol, (var_z, tol)
    # sources are present: the truth rate spans orders of magnitude
    assert d.rate[clean].max() > 100 * np.median(d.rate[clean])
