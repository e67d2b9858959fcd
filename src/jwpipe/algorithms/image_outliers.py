"""Outlier (cosmic-ray) detection for stage-3 imaging, the jwst two-threshold scheme.

1. :func:`median_image`: nan-median across exposures resampled to a common grid, ignoring
   pixels whose weight is below ``maskpt`` times the exposure's mean weight.
2. The median is blotted back to each exposure's frame
   (:func:`jwpipe.algorithms.image_resample.blot`).
3. :func:`flag_outliers`: ``deriv`` = largest absolute difference between a blotted pixel and
   its 4 neighbours; ``diff = |sci - blot - backg|``;
   ``mask1 = diff > scale1 * deriv + snr1 * err`` is grown to its 8 neighbours and
   ``mask2 = diff > scale2 * deriv + snr2 * err``; outliers = grown(mask1) & mask2.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage

from jwpipe.algorithms.image_stats import sigma_clipped_stats
from jwpipe.errors import StepInputError


def parse_pair(value: str | Sequence[float], name: str) -> tuple[float, float]:
    """Parse jwst-style ``"5.0 4.0"`` (or a 2-sequence) into two floats."""
    parts = value.split() if isinstance(value, str) else list(value)
    try:
        a, b = (float(p) for p in parts)
    except (TypeError, ValueError):
        raise StepInputError(f"{name} must be two numbers like '5.0 4.0', got {value!r}") from None
    return a, b


def median_image(
    resampled: Sequence[ArrayLike],
    weights: Sequence[ArrayLike] | None = None,
    maskpt: float = 0.7,
    rows_per_block: int = 256,
) -> NDArray[np.float32]:
    """Nan-median of exposures on a common grid, low-weight pixels excluded.

    Parameters
    ----------
    resampled : sequence of array_like, each (ny, nx)
        Exposures (or groups) resampled to the same grid; NaN = no data. May be memory maps.
    weights : sequence of array_like, optional
        Their weight maps; a pixel is used only where ``weight >= maskpt * mean weight``
        (mean over the exposure's pixels with weight > 0).
    maskpt : float
        Weight threshold fraction.
    rows_per_block : int
        Rows combined at a time (bounds the temporary stack to N x rows x nx).

    Returns
    -------
    ndarray, float32
        NaN where no exposure has data.
    """
    if len(resampled) == 0:
        raise StepInputError("median_image needs at least one exposure")
    shape = np.shape(resampled[0])
    thresholds = []
    if weights is not None:
        if len(weights) != len(resampled):
            raise StepInputError("median_image: one weight map per exposure is needed")
        for w in weights:
            wa = np.asarray(w)
            pos = wa[wa > 0]
            thresholds.append(maskpt * pos.mean() if pos.size else np.inf)
    out = np.empty(shape, dtype=np.float32)
    for r0 in range(0, shape[0], rows_per_block):
        r1 = min(r0 + rows_per_block, shape[0])
        stack = np.stack([np.asarray(a)[r0:r1].astype(np.float32) for a in resampled])
        if weights is not None:
            for k, w in enumerate(weights):
                stack[k][np.asarray(w)[r0:r1] < thresholds[k]] = np.nan
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                out[r0:r1] = np.nanmedian(stack, axis=0)
    return out


def neighbour_derivative(blot: ArrayLike) -> NDArray[np.float64]:
    """Largest absolute difference between each pixel and its 4 neighbours (edges: inside)."""
    img = np.asarray(blot, dtype=np.float64)
    deriv = np.zeros_like(img)
    for axis in (0, 1):
        d = np.abs(np.diff(img, axis=axis))
        d = np.where(np.isfinite(d), d, 0.0)
        lo = [slice(None)] * 2
        hi = [slice(None)] * 2
        lo[axis] = slice(None, -1)
        hi[axis] = slice(1, None)
        deriv[tuple(lo)] = np.maximum(deriv[tuple(lo)], d)
        deriv[tuple(hi)] = np.maximum(deriv[tuple(hi)], d)
    return deriv


def flag_outliers(
    sci: ArrayLike,
    err: ArrayLike,
    blot: ArrayLike,
    snr: str | Sequence[float] = "5.0 4.0",
    scale: str | Sequence[float] = "1.2 0.7",
    backg: float | ArrayLike = 0.0,
) -> NDArray[np.bool_]:
    """Flag pixels of one exposure that disagree with the blotted median.

    Parameters
    ----------
    sci, err : array_like, shape (ny, nx)
        The exposure's data and 1-sigma errors.
    blot : array_like, shape (ny, nx)
        The median image blotted to this exposure (NaN = no comparison possible).
    snr, scale : str or pair of float
        The two S/N thresholds and derivative scales (jwst ``"5.0 4.0"``, ``"1.2 0.7"``).
    backg : float or array_like
        Background level added to the blot (the sky not subtracted from ``sci``).

    Returns
    -------
    ndarray of bool
        True for outliers.
    """
    snr1, snr2 = parse_pair(snr, "snr")
    scale1, scale2 = parse_pair(scale, "scale")
    s = np.asarray(sci, dtype=np.float64)
    e = np.asarray(err, dtype=np.float64)
    b = np.asarray(blot, dtype=np.float64)
    if not (s.shape == e.shape == b.shape) or s.ndim != 2:
        raise StepInputError(
            f"sci {s.shape}, err {e.shape} and blot {b.shape} must be 2-D of one shape"
        )
    deriv = neighbour_derivative(b)
    with np.errstate(invalid="ignore"):
        diff = np.abs(s - b - np.asarray(backg, dtype=np.float64))
        valid = np.isfinite(diff) & np.isfinite(e)
        mask1 = valid & (diff > scale1 * deriv + snr1 * e)
        mask2 = valid & (diff > scale2 * deriv + snr2 * e)
    grown = ndimage.binary_dilation(mask1, structure=np.ones((3, 3), dtype=bool))
    return grown & mask2


def weight_threshold_mask(weight: ArrayLike, maskpt: float = 0.7) -> NDArray[np.bool_]:
    """True where a resampled weight is below ``maskpt`` x its sigma-clipped mean (jwst)."""
    w = np.asarray(weight, dtype=np.float64)
    stats = sigma_clipped_stats(w, w <= 0)
    return w < maskpt * stats.mean
