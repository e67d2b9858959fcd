"""Outlier (cosmic-ray) detection for stage-3 imaging, the jwst two-threshold scheme.

1. :func:`block_median`: nan-median across exposures resampled to a common grid, a block of
   rows at a time; pixels whose weight is below ``maskpt`` times the exposure's mean weight
   (:func:`weight_threshold_mask`) are set to NaN before.
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


#: Bytes of the member stack combined at a time when computing the median.
MEDIAN_BLOCK_BYTES = 24 * 2**20


def _nanmedian_first_axis(stack: np.ndarray) -> np.ndarray:
    """Median over axis 0 ignoring NaN (NaN where all are NaN), sorting in place.

    Same result as ``np.nanmedian(stack, axis=0)`` without its masked-array copies.
    """
    stack.sort(axis=0)  # NaN sorts last
    n = np.isfinite(stack).sum(axis=0)
    lo = np.clip((n - 1) // 2, 0, None)[None]
    hi = np.clip(n // 2, 0, stack.shape[0] - 1)[None]
    med = 0.5 * (np.take_along_axis(stack, lo, 0)[0] + np.take_along_axis(stack, hi, 0)[0])
    med[n == 0] = np.nan
    return med.astype(np.float32)


def block_median(sources: Sequence[str | ArrayLike], shape: tuple[int, int] | None = None,
                 block_bytes: int = MEDIAN_BLOCK_BYTES) -> NDArray[np.float32]:
    """Nan-median of same-shape images, a block of rows at a time.

    Parameters
    ----------
    sources : sequence of str or array_like
        Images on a common grid (NaN = no data), as arrays or float32 ``.npy`` file paths.
        A file is memory-mapped only while its rows are copied, so neither the mapped pages
        nor the stack (at most ``block_bytes``, plus numpy's working copy) grow with the
        number of images.
    shape : (int, int), optional
        Their shape (default: that of the first).
    block_bytes : int
        Bytes of stack combined at a time.

    Returns
    -------
    ndarray of float32
        NaN where no image has data.
    """
    if len(sources) == 0:
        raise StepInputError("block_median needs at least one image")

    def rows_of(src: str | ArrayLike, r0: int, r1: int) -> NDArray:
        if isinstance(src, str):
            mapped = np.load(src, mmap_mode="r")
            try:
                return np.array(mapped[r0:r1], dtype=np.float32)
            finally:
                del mapped
        return np.asarray(src)[r0:r1]

    if shape is None:
        first = sources[0]
        shape = np.load(first, mmap_mode="r").shape if isinstance(first, str) else \
            np.shape(first)
    ny, nx = int(shape[0]), int(shape[1])
    rows = int(max(1, min(ny, block_bytes // max(1, len(sources) * nx * 4))))
    out = np.empty((ny, nx), dtype=np.float32)
    for r0 in range(0, ny, rows):
        r1 = min(r0 + rows, ny)
        stack = np.empty((len(sources), r1 - r0, nx), dtype=np.float32)
        for k, src in enumerate(sources):
            stack[k] = rows_of(src, r0, r1)
        out[r0:r1] = _nanmedian_first_axis(stack)
        del stack
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
    from scipy import ndimage  # scipy costs 0.15 s at import; only detection needs it

    grown = ndimage.binary_dilation(mask1, structure=np.ones((3, 3), dtype=bool))
    return grown & mask2


#: Most weights :func:`weight_threshold_mask` clips (a regular subsample beyond).
_WEIGHT_SAMPLE = 1 << 20


def weight_threshold_mask(weight: ArrayLike, maskpt: float = 0.7) -> NDArray[np.bool_]:
    """True where a resampled weight is below ``maskpt`` x its sigma-clipped mean (jwst).

    The clipped mean of a full-frame mosaic's weights is taken from a regular subsample of
    about 10^6 positive weights (every k-th): its relative error is ~1e-3 of the weights'
    spread, against the clipping of ~5 million values ten times over (2 s a member).
    """
    w = np.asarray(weight)
    positive = w[w > 0]
    step = max(1, -(-positive.size // _WEIGHT_SAMPLE))
    stats = sigma_clipped_stats(positive[::step].astype(np.float64))
    return w < maskpt * stats.mean
