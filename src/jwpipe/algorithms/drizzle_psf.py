"""How drizzling widens a point source, and what that does to aperture corrections.

An input pixel centred at output position ``u`` is dropped (``square``/``turbo`` kernels) as
a box of side ``d = pixfrac / PXSCLRT`` output pixels, shared among the output pixels it
overlaps. Seen from the source, each exposure convolves the pixel-sampled PSF with a
discrete kernel: weights on the output pixel centres at offsets ``j - u``. Its variance
depends on the sub-pixel *phase* of the exposure relative to the output grid: 0 for an
exposure whose pixels fall exactly on output pixels (pixfrac 1, same scale), ``s (1 - s)``
per axis at phase ``s``, ``(d^2 + 1) / 12`` averaged over random phases. A mosaic is the
weighted mixture of its exposures' kernels, so its PSF width depends on the dither pattern's
phases.

Encircled-energy curves (APCORR references) describe one width. :class:`KernelVarianceTally`
measures the mosaic's kernel variance from the pixel maps as they are drizzled, and
:func:`encircled_energy_ratio` gives how the encircled energy at a radius changes when the
PSF's variance per axis changes by ``dv`` (the curve modelled as a sum of Gaussians fitted to
the reference's rows, each widened by ``dv``; exact to first order in ``dv`` for any
circular PSF, to 0.1 % for Gaussians).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "MODELLED_KERNELS",
    "KernelVarianceTally",
    "encircled_energy_ratio",
    "kernel_moments",
    "random_phase_variance",
]

#: Kernels whose weights are the box overlaps modelled here (``point``: drop size 0).
MODELLED_KERNELS = ("square", "turbo", "point")


def kernel_moments(position: ArrayLike, drop: float
                   ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """First and second moments, about the drop centre, of a 1-D box drop's output weights.

    Parameters
    ----------
    position : array_like
        Output-grid coordinate of the drop centre (output pixel centres at integers).
    drop : float
        Drop size in output pixels (0: the ``point`` kernel, all weight to the nearest
        output pixel).

    Returns
    -------
    m1, m2 : ndarray
        ``sum w (j - u)`` and ``sum w (j - u)^2`` over output pixels ``j`` (weights summing
        to 1).
    """
    u = np.asarray(position, dtype=np.float64)
    f = u - np.rint(u)  # in [-0.5, 0.5]
    if drop <= 0:
        return -f, f * f
    reach = int(np.ceil(drop / 2.0)) + 1
    k = np.arange(-reach, reach + 1, dtype=np.float64)
    c = k - f[..., None]  # output pixel centres relative to the drop centre
    w = np.clip(np.minimum(c + 0.5, drop / 2.0) - np.maximum(c - 0.5, -drop / 2.0), 0.0,
                None) / drop
    return (w * c).sum(axis=-1), (w * c * c).sum(axis=-1)


def random_phase_variance(drop: float) -> float:
    """Kernel variance per axis averaged over uniformly distributed phases
    (``(d^2 + 1) / 12`` for a box of ``d >= 1``; 1/12 for ``point``)."""
    phase = (np.arange(4000) + 0.5) / 4000 - 0.5
    m1, m2 = kernel_moments(phase, drop)
    return float(m2.mean() - m1.mean() ** 2)


class KernelVarianceTally:
    """The drizzle kernel's variance per axis, mixed over exposures, on a coarse grid.

    Exposures are added with their pixel maps and weights (as drizzled), every ``step``-th
    input pixel in each direction. At a source, the mosaic's kernel is the weighted mixture
    of the exposures' kernels at *their phases there*: each exposure contributes its own
    kernel's variance (``m2 - m1^2``, sampled pixel by pixel) plus the spread of the
    exposures' mean shifts ``m1`` about their weighted mean. An exposure's shift within an
    output cell of ``cell`` x ``cell`` pixels is taken at its circular-mean phase there, so
    that a phase drifting across the cell (distortion, rotation, a scale change) is not
    counted as widening: the catalogue's apertures sit on one source at one phase, not on a
    mixture of the cell's phases. :meth:`variance` is the mean over covered cells, averaged
    over x and y.

    Parameters
    ----------
    shape : (int, int)
        Output grid (ny, nx).
    drop : float
        Drop size in output pixels (``pixfrac / PXSCLRT``; 0 for ``point``).
    cell, step : int
        Output cell size and input subsampling. The cell must be small against the length
        over which an exposure's phase drifts by a pixel (``1 / scale mismatch``: ~40 px for
        a 2.5 % local scale change).
    """

    def __init__(self, shape: tuple[int, int], drop: float, cell: int = 8, step: int = 2):
        self.drop = float(drop)
        self.cell, self.step = int(cell), int(step)
        self._ncy = -(-int(shape[0]) // self.cell)
        self._ncx = -(-int(shape[1]) // self.cell)
        self._shape = (int(shape[0]), int(shape[1]))
        # weight; per axis: sum w m1, sum w m1^2 of the exposures' shifts, sum w (m2 - m1^2)
        self._sums = np.zeros((7, self._ncy * self._ncx), dtype=np.float64)

    def add(self, pixmap: ArrayLike, weight: ArrayLike | float = 1.0) -> None:
        """Add one exposure (pixel map (ny, nx, 2) of output x, y; per-pixel weights)."""
        pm = np.asarray(pixmap)[:: self.step, :: self.step]
        w = np.broadcast_to(np.asarray(weight, dtype=np.float64),
                            np.asarray(pixmap).shape[:2])[:: self.step, :: self.step]
        x, y = pm[..., 0].ravel(), pm[..., 1].ravel()
        w = w.ravel()
        ok = (np.isfinite(x) & np.isfinite(y) & np.isfinite(w) & (w > 0)
              & (x > -0.5) & (y > -0.5) & (x < self._shape[1] - 0.5)
              & (y < self._shape[0] - 0.5))
        x, y, w = x[ok].astype(np.float64), y[ok].astype(np.float64), w[ok]
        idx = ((np.rint(y).astype(np.int64) // self.cell) * self._ncx
               + np.rint(x).astype(np.int64) // self.cell)
        n = self._sums.shape[1]
        cw = np.bincount(idx, weights=w, minlength=n)
        has = cw > 0
        self._sums[0] += cw
        for axis, u in enumerate((x, y)):
            m1, m2 = kernel_moments(u, self.drop)
            own = np.bincount(idx, weights=w * (m2 - m1 * m1), minlength=n)
            turn = 2.0 * np.pi * u
            phase = np.arctan2(np.bincount(idx, weights=w * np.sin(turn), minlength=n)[has],
                               np.bincount(idx, weights=w * np.cos(turn), minlength=n)[has])
            shift = kernel_moments(phase / (2.0 * np.pi), self.drop)[0]
            self._sums[1 + 3 * axis, has] += cw[has] * shift
            self._sums[2 + 3 * axis, has] += cw[has] * shift * shift
            self._sums[3 + 3 * axis] += own

    def variance(self) -> float:
        """Mean kernel variance per axis over the covered cells (NaN if none)."""
        s = self._sums[0]
        ok = s > 0
        if not ok.any():
            return float("nan")
        v = np.zeros(int(ok.sum()))
        for axis in (0, 1):
            s1, s2, own = (self._sums[1 + 3 * axis + k, ok] / s[ok] for k in range(3))
            v += 0.5 * (own + np.maximum(s2 - s1 * s1, 0.0))
        return float(np.mean(v))


def encircled_energy_ratio(curve_radius: ArrayLike, curve_ee: ArrayLike, radius: ArrayLike,
                           dv: float) -> NDArray[np.float64]:
    """EE(radius) of the PSF widened by ``dv`` (px^2 per axis; negative: narrowed) over the
    EE(radius) of the curve given.

    The curve (radii and encircled-energy fractions, e.g. an APCORR reference's rows) is
    modelled as a non-negative sum of circular Gaussians (``1 - exp(-r^2 / 2 s^2)`` terms on
    a logarithmic grid of widths, fitted by NNLS through the origin); widening adds ``dv`` to
    every ``s^2``. Widths narrower than ``sqrt(-dv)`` are not used, so the narrowed model
    stays a PSF.
    """
    from scipy.optimize import nnls

    r = np.asarray(curve_radius, dtype=np.float64)
    ee = np.asarray(curve_ee, dtype=np.float64)
    radius = np.asarray(radius, dtype=np.float64)
    if dv == 0.0 or r.size < 2:
        return np.ones(radius.shape)
    floor = np.sqrt(max(0.0, -dv) * 1.5 + 1e-6)
    widths = np.geomspace(max(floor, 0.1 * r.min()), 3.0 * r.max(), 160)

    def design(rad: NDArray, s2: NDArray) -> NDArray:
        return 1.0 - np.exp(-(rad[:, None] ** 2) / (2.0 * s2[None, :]))

    amp, _ = nnls(design(r, widths**2), ee)
    before = design(radius, widths**2) @ amp
    after = design(radius, widths**2 + dv) @ amp
    return after / before
