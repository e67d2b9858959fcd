"""Synthetic detector properties (the truth behind the reference files) and non-linearity.

All functions are pure numpy; nothing here reads or writes files.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

__all__ = [
    "DQ",
    "DetectorProperties",
    "NonLinearity",
    "apply_nonlinearity",
    "linearity_polynomial",
    "make_detector",
    "reference_pixel_mask",
]

#: The JWST pixel DQ values the simulator uses (jwst.md section 3.7).
DQ: dict[str, int] = {
    "DO_NOT_USE": 1,
    "DEAD": 1024,
    "HOT": 2048,
    "NO_FLAT_FIELD": 262144,
    "REFERENCE_PIXEL": 2147483648,
}

#: Largest non-linear signal (DN above bias) the inversion needs to reach: beyond the ADC range.
_M_CAP = 70000.0
#: Below this linear signal (DN) the series inverse needs no Newton refinement.
_SERIES_EXACT_BELOW = 300.0


@dataclass
class DetectorProperties:
    """True detector properties; the reference files are written from these exactly.

    Attributes
    ----------
    gain : (ny, nx) float32, e-/DN
    readnoise : (ny, nx) float32, CDS read noise in DN
    superbias : (ny, nx) float32, DN
    saturation : (ny, nx) float32, raw DN thresholds (bias included), integral values
    lin_coeffs : (ncoeffs, ny, nx) float32, linearity correction, plane k multiplies DN^k
    dark_rate : (ny, nx) float32, dark current in DN/s
    flat : (ny, nx) float32, relative response (0 for dead pixels, 1 on reference pixels)
    mask : (ny, nx) uint32, DQ flags
    refpix : (ny, nx) bool, reference pixels (4 on every edge)
    """

    gain: np.ndarray
    readnoise: np.ndarray
    superbias: np.ndarray
    saturation: np.ndarray
    lin_coeffs: np.ndarray
    dark_rate: np.ndarray
    flat: np.ndarray
    mask: np.ndarray
    refpix: np.ndarray

    @cached_property
    def nonlinearity(self) -> NonLinearity:
        """The inverse of this detector's linearity correction (built once)."""
        return NonLinearity(self.lin_coeffs)

    @property
    def dead(self) -> np.ndarray:
        """Dead pixels (bool)."""
        return (self.mask & DQ["DEAD"]) != 0

    @property
    def hot(self) -> np.ndarray:
        """Hot pixels (bool)."""
        return (self.mask & DQ["HOT"]) != 0


def reference_pixel_mask(ny: int, nx: int, border: int = 4) -> np.ndarray:
    """Boolean mask of the reference pixels: ``border`` rows/columns on every edge."""
    ref = np.ones((ny, nx), dtype=bool)
    ref[border : ny - border, border : nx - border] = False
    return ref


def _smooth_field(rng: np.random.Generator, ny: int, nx: int, amplitude: float) -> np.ndarray:
    """A low-order 2-D polynomial surface with peak-to-peak ~ 2*amplitude."""
    u = (2 * np.arange(nx, dtype=np.float32) / nx - 1)[None, :]
    v = (2 * np.arange(ny, dtype=np.float32) / ny - 1)[:, None]
    c = rng.normal(0.0, amplitude / 2, size=5).astype(np.float32)
    return (c[0] * u + c[3] * (u * u - 0.33)) + (c[1] * v + c[4] * (v * v - 0.33)) + c[2] * u * v


def make_detector(
    rng: np.random.Generator,
    ny: int,
    nx: int,
    *,
    border: int = 4,
    hot_fraction: float = 1e-3,
    dead_fraction: float = 5e-4,
) -> DetectorProperties:
    """Draw the properties of one detector.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness (the result is a deterministic function of its state).
    ny, nx : int
        Array shape.
    border : int
        Reference-pixel border width.
    hot_fraction, dead_fraction : float
        Fractions of light-sensitive pixels that are hot / dead.

    Returns
    -------
    DetectorProperties
    """
    shape = (ny, nx)
    f32 = np.float32
    refpix = reference_pixel_mask(ny, nx, border)
    gain = (2.05 + 0.05 * rng.standard_normal(shape, dtype=f32)).astype(f32)
    readnoise = np.clip(10.0 + 0.8 * rng.standard_normal(shape, dtype=f32), 6.0, 16.0).astype(f32)
    columns = 40.0 * rng.standard_normal(nx, dtype=f32)
    superbias = (12000.0 + columns[None, :] + 300.0 * rng.standard_normal(shape, dtype=f32)
                 + 200.0 * _smooth_field(rng, ny, nx, 1.0)).astype(f32)
    # integral thresholds: saturated groups are clipped to exactly this raw value
    saturation = np.minimum(
        np.floor(superbias + 47000.0 + 1500.0 * rng.standard_normal(shape, dtype=f32)), 65000.0
    ).astype(f32)
    ncoeffs = 4
    lin = np.zeros((ncoeffs, ny, nx), dtype=f32)
    lin[1] = 1.0
    lin[2] = 2.0e-6 * (1.0 + 0.1 * rng.standard_normal(shape, dtype=f32))
    lin[3] = 8.0e-12 * (1.0 + 0.1 * rng.standard_normal(shape, dtype=f32))
    dark_rate = np.abs(0.002 + 0.0005 * rng.standard_normal(shape, dtype=f32)).astype(f32)
    flat = (1.0 + 0.02 * rng.standard_normal(shape, dtype=f32)
            + _smooth_field(rng, ny, nx, 0.03)).astype(f32)

    mask = np.zeros(shape, dtype=np.uint32)
    mask[refpix] |= DQ["REFERENCE_PIXEL"]
    light = np.flatnonzero(~refpix.ravel())
    n_hot = rng.binomial(light.size, hot_fraction)
    n_dead = rng.binomial(light.size, dead_fraction)
    chosen = rng.choice(light, size=n_hot + n_dead, replace=False)
    hot, dead = chosen[:n_hot], chosen[n_hot:]
    mask.ravel()[hot] |= DQ["HOT"] | DQ["DO_NOT_USE"]
    mask.ravel()[dead] |= DQ["DEAD"] | DQ["DO_NOT_USE"]
    dark_rate.ravel()[hot] = np.exp(rng.uniform(np.log(0.5), np.log(50.0), n_hot)).astype(f32)
    dark_rate.ravel()[dead] = 0.0
    flat.ravel()[dead] = 0.0
    flat[refpix] = 1.0
    dark_rate[refpix] = 0.0
    return DetectorProperties(gain, readnoise, superbias, saturation, lin, dark_rate, flat, mask,
                              refpix)


def linearity_polynomial(coeffs: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """Linearity correction ``sum_k coeffs[k] * measured**k`` (Horner, float64)."""
    out = np.zeros(np.broadcast_shapes(coeffs.shape[1:], np.shape(measured)), dtype=np.float64)
    for plane in coeffs[::-1]:
        out *= measured
        out += plane
    return out


class NonLinearity:
    """The exact inverse of a linearity correction, with the per-pixel constants precomputed.

    Parameters
    ----------
    coeffs : (ncoeffs, ny, nx) array
        Linearity coefficients (plane k multiplies DN^k), with ``coeffs[0] == 0`` and increasing,
        convex polynomials (``coeffs[2], coeffs[3] >= 0``) as the simulator draws them.
    """

    def __init__(self, coeffs: np.ndarray) -> None:
        self.c = np.asarray(coeffs, dtype=np.float64)
        self.deriv = np.array([k * self.c[k] for k in range(1, self.c.shape[0])])
        self.cap = linearity_polynomial(self.c, _M_CAP)
        c1 = self.c[1]
        c2 = self.c[2] / c1 if self.c.shape[0] > 2 else 0.0
        c3 = self.c[3] / c1 if self.c.shape[0] > 3 else 0.0
        # series reversion of L = c1 (m + c2 m^2 + c3 m^3): a start within ~1e-2 relative
        self._s1, self._s2, self._s3 = 1.0 / c1, -c2 / c1**2, (2 * c2 * c2 - c3) / c1**3

    def measured(self, linear: np.ndarray, *, tol: float = 1e-4, max_iter: int = 50) -> np.ndarray:
        """Measured DN whose linearity correction is ``linear`` (float64, |error| < ``tol``).

        The series start is already exact to ~1e-6 DN below 300 DN, so Newton iterations run
        only on the brighter pixels (a small fraction of a typical scene).
        """
        lin = np.minimum(np.asarray(linear, dtype=np.float64), self.cap)
        m = lin * (self._s1 + lin * (self._s2 + lin * self._s3))
        np.clip(m, 0.0, lin * self._s1, out=m)  # the root lies in [0, L/c1]
        bright = lin > _SERIES_EXACT_BELOW
        nbright = int(np.count_nonzero(bright))
        if nbright == 0:
            return m
        if nbright > lin.size // 2:  # mostly bright: whole-array iterations are cheaper
            for _ in range(max_iter):
                step = (linearity_polynomial(self.c, m) - lin) / linearity_polynomial(
                    self.deriv, m)
                m -= step
                if np.max(np.abs(step), initial=0.0) < tol:
                    break
            return m
        active = np.flatnonzero(bright)
        ncoef = self.c.shape[0]
        c = self.c.reshape(ncoef, -1)[:, active]
        d = self.deriv.reshape(ncoef - 1, -1)[:, active]
        target = lin.ravel()[active]
        ms = m.ravel()[active]
        for _ in range(max_iter):
            step = (linearity_polynomial(c, ms) - target) / linearity_polynomial(d, ms)
            ms -= step
            if np.max(np.abs(step), initial=0.0) < tol:
                break
        m.ravel()[active] = ms
        return m


def apply_nonlinearity(
    coeffs: np.ndarray, linear: np.ndarray, *, tol: float = 1e-4, max_iter: int = 50
) -> np.ndarray:
    """Exact inverse of the linearity correction: the measured DN that corrects to ``linear``.

    Solves ``linearity_polynomial(coeffs, m) = linear`` for ``m`` by Newton's method started
    from the series inverse. Signals beyond the ADC range are capped at 70000 DN (they saturate
    anyway).

    Parameters
    ----------
    coeffs : (ncoeffs, ny, nx) array
        Linearity coefficients (plane k multiplies DN^k).
    linear : (ny, nx) array
        Linear (bias-subtracted) DN.
    tol : float
        Convergence tolerance in DN.
    max_iter : int
        Iteration limit.

    Returns
    -------
    (ny, nx) float64 array
    """
    return NonLinearity(coeffs).measured(linear, tol=tol, max_iter=max_iter)
