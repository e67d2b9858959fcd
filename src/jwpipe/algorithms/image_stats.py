"""Robust statistics shared by the image-stage algorithms (sigma clipping, sky modes).

All functions are pure: they take numpy arrays and return numbers or arrays, never modify
their inputs, and ignore non-finite values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: Ratio of the standard deviation to the median absolute deviation for a normal distribution.
MAD_TO_SIGMA = 1.482602218505602


@dataclass(frozen=True)
class ClippedStats:
    """Result of :func:`sigma_clipped_stats`.

    Attributes
    ----------
    mean, median, std : float
        Statistics of the values kept after clipping (NaN if none were kept).
    mode : float
        ``2.5 * median - 1.5 * mean`` (the SExtractor sky-mode estimator), or the median
        when the mean and median differ by more than 0.3 std (crowded field).
    npix : int
        Number of values kept.
    """

    mean: float
    median: float
    std: float
    mode: float
    npix: int

    def stat(self, name: str) -> float:
        """Return the statistic called ``name`` (mean, median, mode, std)."""
        if name not in ("mean", "median", "mode", "std"):
            raise ValueError(f"unknown statistic {name!r} (use mean, median, mode or std)")
        return float(getattr(self, name))


def sigma_clipped_stats(
    values: ArrayLike,
    mask: ArrayLike | None = None,
    sigma_lower: float = 3.0,
    sigma_upper: float = 3.0,
    maxiters: int = 10,
) -> ClippedStats:
    """Iteratively sigma-clipped mean, median and standard deviation.

    Each iteration keeps values within ``[median - sigma_lower*std, median + sigma_upper*std]``
    of the previous kept set; stops when nothing changes or after ``maxiters`` iterations.

    Parameters
    ----------
    values : array_like
        Values of any shape; non-finite values are ignored.
    mask : array_like of bool, optional
        True where a value must be ignored.
    sigma_lower, sigma_upper : float
        Clipping limits in units of the standard deviation.
    maxiters : int
        Maximum number of clipping iterations.

    Returns
    -------
    ClippedStats
    """
    data = np.asarray(values, dtype=np.float64).ravel()
    keep = np.isfinite(data)
    if mask is not None:
        keep &= ~np.asarray(mask, dtype=bool).ravel()
    data = data[keep]
    for _ in range(maxiters):
        if data.size < 3:
            break
        med = np.median(data)
        std = data.std()
        if std == 0:
            break
        inside = (data >= med - sigma_lower * std) & (data <= med + sigma_upper * std)
        if inside.all():
            break
        data = data[inside]
    if data.size == 0:
        nan = float("nan")
        return ClippedStats(nan, nan, nan, nan, 0)
    mean = float(data.mean())
    median = float(np.median(data))
    std = float(data.std())
    mode = 2.5 * median - 1.5 * mean
    if std > 0 and abs(mean - median) / std > 0.3:
        mode = median
    return ClippedStats(mean, median, std, float(mode), int(data.size))


def clipped_mean_along_axis(
    values: NDArray[np.floating], sigma: float = 3.0, maxiters: int = 5
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]:
    """Sigma-clipped mean, std and count along the last axis, NaN entries ignored.

    Used for per-source statistics (e.g. background annuli) without a Python loop over rows.

    Parameters
    ----------
    values : ndarray, shape (..., n)
        NaN marks missing values.
    sigma : float
        Symmetric clipping limit around the median.
    maxiters : int
        Clipping iterations.

    Returns
    -------
    mean, std, count : ndarray, shape (...)
    """
    data = np.array(values, dtype=np.float64)
    for _ in range(maxiters):
        with np.errstate(invalid="ignore"), _quiet_nan_warnings():
            med = np.nanmedian(data, axis=-1, keepdims=True)
            std = np.nanstd(data, axis=-1, keepdims=True)
        out = np.abs(data - med) > sigma * std
        out &= std > 0
        if not out.any():
            break
        data[out] = np.nan
    count = np.isfinite(data).sum(axis=-1)
    with np.errstate(invalid="ignore"), _quiet_nan_warnings():
        mean = np.nanmean(data, axis=-1)
        std = np.nanstd(data, axis=-1)
    return mean, std, count


class _quiet_nan_warnings:
    """Silence numpy's 'mean of empty slice' warnings for all-NaN rows (NaN is the answer)."""

    def __enter__(self) -> None:
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", category=RuntimeWarning)

    def __exit__(self, *exc: object) -> None:
        self._ctx.__exit__(*exc)
