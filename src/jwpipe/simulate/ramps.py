"""Up-the-ramp readout of one exposure: the detector signal chain, pure numpy.

Per integration and read (frame) ``k`` at time ``(k+1)*TFRAME`` after reset:

* electrons accumulate as Poisson draws of ``(rate + dark) * gain * dt``;
* cosmic rays add their charge (DN, linear) from the first read after their arrival time;
* the linear signal ``L = electrons/gain + CR`` becomes the measured ``m`` through the exact
  inverse of the linearity correction;
* the ``NFRAMES`` reads of a group are averaged (``GROUPGAP`` frames are dropped after them);
* the group gets superbias, a per-integration bias offset per amplifier, odd/even column offsets
  per amplifier, a per-group drift per amplifier (all also on the reference pixels), and Gaussian
  read noise of ``readnoise/sqrt(2*NFRAMES)`` (CDS noise -> one averaged group);
* it is clipped at the saturation threshold and the ADC range, rounded, and stored as uint16.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jwpipe.simulate.detector import DetectorProperties

__all__ = ["CR_DTYPE", "Readout", "bias_offsets", "draw_cosmic_rays", "simulate_ramps"]

#: One row per cosmic-ray hit.
CR_DTYPE = np.dtype(
    [("integration", "i4"), ("y", "i4"), ("x", "i4"), ("group", "i4"), ("frame", "i4"),
     ("time", "f8"), ("amplitude", "f4")]
)


@dataclass(frozen=True)
class Readout:
    """Readout timing of an exposure."""

    nints: int
    ngroups: int
    nframes: int
    groupgap: int
    tframe: float
    noutputs: int

    @property
    def read_frames(self) -> np.ndarray:
        """Absolute frame index of every read, shape (ngroups, nframes)."""
        g = np.arange(self.ngroups)[:, None] * (self.nframes + self.groupgap)
        return g + np.arange(self.nframes)[None, :]

    @property
    def integration_time(self) -> float:
        """Time of the last read after reset (s)."""
        return float((self.read_frames[-1, -1] + 1) * self.tframe)

    def group_of_frame(self, frame: np.ndarray) -> np.ndarray:
        """Group whose reads first include charge arriving before read ``frame``.

        Charge arriving during dropped (gap) frames shows up in the next group.
        """
        period = self.nframes + self.groupgap
        group = frame // period
        return np.where(frame % period < self.nframes, group, group + 1)


def draw_cosmic_rays(
    rng: np.random.Generator,
    light: np.ndarray,
    readout: Readout,
    rate: float,
    amplitude_range: tuple[float, float],
) -> np.ndarray:
    """Draw cosmic-ray hits for every integration.

    Parameters
    ----------
    rng : numpy.random.Generator
    light : (ny, nx) bool
        Light-sensitive pixels (hits land only there).
    readout : Readout
    rate : float
        Hits per second per pixel.
    amplitude_range : (float, float)
        Log-uniform range of the deposited signal (DN, linear).

    Returns
    -------
    structured array of CR_DTYPE, sorted by integration and frame
    """
    pixels = np.flatnonzero(light.ravel())
    tint = readout.integration_time
    rows = []
    for integ in range(readout.nints):
        n = rng.poisson(rate * pixels.size * tint)
        hits = np.zeros(n, dtype=CR_DTYPE)
        where = rng.choice(pixels, size=n, replace=True)
        hits["integration"] = integ
        hits["y"], hits["x"] = np.unravel_index(where, light.shape)
        hits["time"] = rng.uniform(0.0, tint, n)
        lo, hi = np.log(amplitude_range[0]), np.log(amplitude_range[1])
        hits["amplitude"] = np.exp(rng.uniform(lo, hi, n))
        # the first read at or after the arrival: read k happens at (k+1)*TFRAME
        frame = np.maximum(np.ceil(hits["time"] / readout.tframe).astype(np.int64) - 1, 0)
        hits["frame"] = frame
        hits["group"] = readout.group_of_frame(frame)
        rows.append(hits[np.argsort(hits["frame"], kind="stable")])
    return np.concatenate(rows) if rows else np.zeros(0, dtype=CR_DTYPE)


def bias_offsets(
    rng: np.random.Generator, readout: Readout, nx: int
) -> np.ndarray:
    """Column offsets (DN) per integration and group: shape (nints, ngroups, nx), float32.

    Per amplifier (``nx/noutputs`` columns each) and integration: a level ~N(0, 30 DN) and
    odd/even column offsets ~N(0, 5 DN); per group a random-walk drift with 1.5 DN steps. The
    same offsets apply to every row, reference pixels included, so reference-pixel correction
    can remove them.
    """
    nout = readout.noutputs
    width = nx // nout
    amp = np.minimum(np.arange(nx) // width, nout - 1)
    parity = np.arange(nx) % 2
    out = np.empty((readout.nints, readout.ngroups, nx), dtype=np.float32)
    for integ in range(readout.nints):
        level = rng.normal(0.0, 30.0, nout)
        oddeven = rng.normal(0.0, 5.0, (nout, 2))
        drift = np.cumsum(rng.normal(0.0, 1.5, (readout.ngroups, nout)), axis=0)
        out[integ] = (level[amp] + oddeven[amp, parity])[None, :] + drift[:, amp]
    return out


def simulate_ramps(
    rate: np.ndarray,
    det: DetectorProperties,
    readout: Readout,
    rng: np.random.Generator,
    cosmic_rays: np.ndarray,
    offsets: np.ndarray,
) -> np.ndarray:
    """Simulate the raw ramps of one exposure.

    Parameters
    ----------
    rate : (ny, nx) float32
        True photo-electron count rate in DN/s as the detector sees it (flat applied), without
        dark current; zero on reference pixels.
    det : DetectorProperties
    readout : Readout
    rng : numpy.random.Generator
    cosmic_rays : structured array of CR_DTYPE
        Hits to inject (from :func:`draw_cosmic_rays`).
    offsets : (nints, ngroups, nx) float32
        Bias offsets per column (from :func:`bias_offsets`).

    Returns
    -------
    (nints, ngroups, ny, nx) uint16
    """
    ny, nx = rate.shape
    out = np.empty((readout.nints, readout.ngroups, ny, nx), dtype=np.uint16)
    electrons_per_s = (rate.astype(np.float64) + det.dark_rate) * det.gain
    gain = det.gain.astype(np.float64)
    noise_sigma = (det.readnoise / np.sqrt(2.0 * readout.nframes)).astype(np.float32)
    ceiling = np.minimum(det.saturation, 65535.0).astype(np.float32)
    reads = readout.read_frames
    nonlin = det.nonlinearity
    electrons = np.empty((ny, nx), dtype=np.float64)
    cr_signal = np.empty((ny, nx), dtype=np.float64)
    linear = np.empty((ny, nx), dtype=np.float64)
    measured = np.empty((ny, nx), dtype=np.float64)
    for integ in range(readout.nints):
        hits = cosmic_rays[cosmic_rays["integration"] == integ]
        next_hit = 0
        electrons[...] = 0.0
        cr_signal[...] = 0.0
        last_time = 0.0
        for g in range(readout.ngroups):
            measured[...] = 0.0
            for frame in reads[g]:
                t = (frame + 1) * readout.tframe
                electrons += rng.poisson(electrons_per_s * (t - last_time))
                last_time = t
                stop = np.searchsorted(hits["frame"], frame, side="right")
                if stop > next_hit:
                    new = hits[next_hit:stop]
                    np.add.at(cr_signal, (new["y"], new["x"]), new["amplitude"])
                    next_hit = stop
                np.divide(electrons, gain, out=linear)
                if next_hit:
                    linear += cr_signal
                measured += nonlin.measured(linear)
            group = (measured / readout.nframes).astype(np.float32)
            group += det.superbias
            group += offsets[integ, g][None, :]
            group += noise_sigma * rng.standard_normal((ny, nx), dtype=np.float32)
            np.minimum(group, ceiling, out=group)
            np.clip(group, 0.0, 65535.0, out=group)
            out[integ, g] = np.rint(group)
    return out
