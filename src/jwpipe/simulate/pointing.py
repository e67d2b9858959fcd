"""Pointings and WCSs: dithers, pointing errors, the synthetic focal plane.

Conventions (all documented in ``docs/simulate.md``):

* pixel scale 0.031"/pixel; TAN projection; ``PC = [[-cos r, sin r], [sin r, cos r]]`` so the
  detector +y axis points ``r`` degrees east of north and east is to the left for ``r = 0``;
* the focal plane has one reference point (the boresight, focal pixel (0, 0)) and each detector
  centre sits at a fixed focal-plane offset (a 2x2 grid per module with a gap);
* a dither ``d`` (pixels) moves the scene by ``+d`` on the detectors, nominally;
* a pointing error ``e`` (pixels) and roll error ``dr`` (degrees) move it further: a source the
  nominal WCS puts at pixel ``p`` near the boresight is really at ``p + e``; the roll error
  rotates the true focal plane about the boresight (true PA = nominal PA + dr).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.wcs import WCS

from jwpipe.simulate.config import ARCSEC_PER_PIXEL, DETECTORS

__all__ = [
    "Pointing",
    "default_dithers",
    "detector_wcs",
    "draw_pointings",
    "focal_offsets",
    "tan_wcs",
]

SCALE_DEG = ARCSEC_PER_PIXEL / 3600.0


def tan_wcs(crval: tuple[float, float], crpix: tuple[float, float], roll: float) -> WCS:
    """A TAN WCS with the simulator's pixel scale; ``crpix`` is 1-based (FITS)."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.cunit = ["deg", "deg"]
    w.wcs.crval = [float(crval[0]), float(crval[1])]
    w.wcs.crpix = [float(crpix[0]), float(crpix[1])]
    w.wcs.cdelt = [SCALE_DEG, SCALE_DEG]
    r = np.deg2rad(roll)
    w.wcs.pc = [[-np.cos(r), np.sin(r)], [np.sin(r), np.cos(r)]]
    w.wcs.radesys = "ICRS"
    return w


def focal_offsets(detectors: tuple[str, ...], size: int) -> dict[str, tuple[float, float]]:
    """Focal-plane pixel offset of each detector's centre from the boresight."""
    gap = max(8, round(0.08 * size))
    cols = np.array([DETECTORS[d][1] for d in detectors], dtype=float)
    rows = np.array([DETECTORS[d][2] for d in detectors], dtype=float)
    cc, rc = cols.mean(), rows.mean()
    return {
        d: ((c - cc) * (size + gap), (r - rc) * (size + gap))
        for d, c, r in zip(detectors, cols, rows)
    }


def default_dithers(n: int, size: int) -> list[tuple[float, float]]:
    """A 4-point pattern with sub-pixel phases, extended for more exposures."""
    step = max(3.0, size / 16)
    base = [(0.0, 0.0), (step + 0.5, 0.3 * step + 0.5), (0.3 * step + 0.25, step + 0.75),
            (1.3 * step + 0.75, 1.3 * step + 0.25)]
    out = []
    for k in range(n):
        bx, by = base[k % 4]
        cycle = k // 4
        out.append((round(bx + cycle * (step / 2 + 0.33), 3), round(by - cycle * (step / 3 - 0.66),
                                                                       3)))
    return out


@dataclass(frozen=True)
class Pointing:
    """Nominal and true pointing of one exposure (shared by all its detectors)."""

    exposure: int
    dither: tuple[float, float]
    error: tuple[float, float]
    roll_error: float
    roll: float
    nominal_crval: tuple[float, float]
    true_crval: tuple[float, float]

    def focal_wcs(self, true: bool) -> WCS:
        """The focal-plane WCS (boresight at 0-based focal pixel (0, 0))."""
        if true:
            return tan_wcs(self.true_crval, (1.0, 1.0), self.roll + self.roll_error)
        return tan_wcs(self.nominal_crval, (1.0, 1.0), self.roll)


def draw_pointings(
    rng: np.random.Generator,
    field_centre: tuple[float, float],
    roll: float,
    dithers: list[tuple[float, float]],
    error_range: tuple[float, float],
    roll_error: float,
) -> list[Pointing]:
    """Nominal pointings from the dithers, plus random pointing and roll errors.

    Error magnitudes are uniform in ``error_range`` (pixels) with a uniform direction; roll
    errors are uniform in ``[-roll_error, roll_error]`` degrees.
    """
    base = tan_wcs(field_centre, (1.0, 1.0), roll)
    out = []
    for k, (dx, dy) in enumerate(dithers):
        nominal = base.wcs_pix2world(np.array([[-dx, -dy]]), 0)[0]
        mag = rng.uniform(*error_range)
        ang = rng.uniform(0.0, 2 * np.pi)
        ex, ey = mag * np.cos(ang), mag * np.sin(ang)
        droll = rng.uniform(-roll_error, roll_error)
        nom_wcs = tan_wcs(nominal, (1.0, 1.0), roll)
        true = nom_wcs.wcs_pix2world(np.array([[-ex, -ey]]), 0)[0]
        out.append(Pointing(k, (float(dx), float(dy)), (float(ex), float(ey)), float(droll),
                            float(roll), (float(nominal[0]), float(nominal[1])),
                            (float(true[0]), float(true[1]))))
    return out


def detector_wcs(pointing: Pointing, offset: tuple[float, float], size: int, *, true: bool) -> WCS:
    """The TAN WCS of a detector whose centre is at focal-plane ``offset``."""
    focal = pointing.focal_wcs(true)
    centre = focal.wcs_pix2world(np.array([offset]), 0)[0]
    roll = pointing.roll + (pointing.roll_error if true else 0.0)
    return tan_wcs(centre, ((size + 1) / 2.0, (size + 1) / 2.0), roll)
