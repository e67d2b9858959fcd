"""Synthetic ramps with known truth for the Detector1 algorithm tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jwpipe.algorithms import _dq

TGROUP = 10.73677


@dataclass
class SynthRamp:
    """A ramp and its truth: ``data`` (DN), ``groupdq``, and the injected quantities."""

    data: np.ndarray
    groupdq: np.ndarray
    pixeldq: np.ndarray
    gain: np.ndarray
    readnoise: np.ndarray
    rate: np.ndarray  # true DN/s
    cr_group: np.ndarray  # (nints, ny, nx) group index of the injected jump, -1 = none
    cr_amp: np.ndarray  # DN
    sat_group: np.ndarray  # (nints, ny, nx) first saturated group, ngroups = none
    tgroup: float = TGROUP


def make_ramps(
    seed: int,
    *,
    nints: int = 1,
    ngroups: int = 10,
    shape: tuple[int, int] = (256, 256),
    gain: float = 2.0,
    readnoise: float = 10.0,
    rate_range: tuple[float, float] = (0.3, 300.0),
    cr_fraction: float = 0.0,
    cr_amp_range: tuple[float, float] = (10.0, 5000.0),
    sat_fraction: float = 0.0,
    sat0_fraction: float = 0.0,
    sat_level: float = 50000.0,
) -> SynthRamp:
    """Generate NFRAMES=1 ramps: Poisson electrons, CDS read noise ``readnoise`` (DN).

    Each group gets independent read noise of ``readnoise/sqrt(2)`` DN, so a group difference
    has read-noise sigma ``readnoise`` as in JWST READNOISE references. ``cr_fraction`` of pixels
    get one jump per integration (log-uniform amplitude, group >= 1); ``sat_fraction`` get a rate
    high enough to saturate at a random group >= 2 and ``sat0_fraction`` saturate in group 0.
    """
    rng = np.random.default_rng(seed)
    ny, nx = shape
    lo, hi = np.log(rate_range[0]), np.log(rate_range[1])
    rate = np.exp(rng.uniform(lo, hi, size=shape))
    offset = rng.normal(0.0, 20.0, size=shape) + 1000.0
    npix = ny * nx
    flat = rate.reshape(-1)
    pix = rng.permutation(npix)
    nsat = int(sat_fraction * npix)
    nsat0 = int(sat0_fraction * npix)
    sat_pix = pix[:nsat]
    sat0_pix = pix[nsat:nsat + nsat0]
    # saturate at a chosen group between 2 and ngroups-1
    target = rng.integers(2, max(3, ngroups), size=nsat)
    flat[sat_pix] = (sat_level - 1000.0) / (TGROUP * (target + 0.5))
    flat[sat0_pix] = 2.0 * sat_level / TGROUP
    data = np.empty((nints, ngroups, ny, nx), np.float32)
    cr_group = np.full((nints, ny, nx), -1, np.int64)
    cr_amp = np.zeros((nints, ny, nx))
    for i in range(nints):
        electrons = np.cumsum(
            rng.poisson(rate * gain * TGROUP, size=(ngroups, ny, nx)), axis=0
        ).astype(np.float64)
        ramp = electrons / gain + offset
        ramp += rng.normal(0.0, readnoise / np.sqrt(2.0), size=ramp.shape)
        if cr_fraction > 0:
            ordinary = np.ones(npix, bool)
            ordinary[sat_pix] = False
            ordinary[sat0_pix] = False
            cand = np.nonzero(ordinary)[0]
            ncr = int(cr_fraction * npix)
            hit = rng.choice(cand, size=ncr, replace=False)
            gj = rng.integers(1, ngroups, size=ncr)
            amp = np.exp(rng.uniform(*np.log(cr_amp_range), size=ncr))
            ys, xs = np.divmod(hit, nx)
            cr_group[i, ys, xs] = gj
            cr_amp[i, ys, xs] = amp
            gidx = np.arange(ngroups)[:, None]
            ramp[:, ys, xs] += np.where(gidx >= gj[None, :], amp[None, :], 0.0)
        data[i] = ramp
    saturated = data >= sat_level
    saturated = np.maximum.accumulate(saturated, axis=1)
    data[saturated] = sat_level
    groupdq = np.where(saturated, _dq.SATURATED, 0).astype(np.uint8)
    first_sat = np.where(saturated.any(axis=1), saturated.argmax(axis=1), ngroups)
    return SynthRamp(
        data=data,
        groupdq=groupdq,
        pixeldq=np.zeros(shape, np.uint32),
        gain=np.full(shape, gain, np.float32),
        readnoise=np.full(shape, readnoise, np.float32),
        rate=rate,
        cr_group=cr_group,
        cr_amp=cr_amp,
        sat_group=first_sat,
    )
