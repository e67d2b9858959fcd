"""Sky matching between overlapping exposures (jwst ``skymatch`` methods).

Exposures are given on a common grid (e.g. each resampled with
:func:`jwpipe.algorithms.image_resample.drizzle_one`), NaN where an exposure has no data.

* ``local``: each exposure's own sigma-clipped sky statistic.
* ``match``: for every overlapping pair ``(i, j)`` the clipped statistic of ``I_i - I_j``
  over the common pixels is ``d_ij``; the levels ``s`` minimise
  ``sum_ij n_ij (s_i - s_j - d_ij)^2`` (``n_ij`` = overlap pixels) with the lowest level set
  to 0 (``match_down``) - the differences that make overlaps agree.
* ``global``: one level for all, the minimum of the ``local`` levels.
* ``global+match``: ``match`` levels plus the minimum sky left after matching.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from jwpipe.algorithms.image_stats import sigma_clipped_stats
from jwpipe.errors import StepInputError

SKYMETHODS = ("local", "global", "match", "global+match")


def _valid(img: NDArray, mask: ArrayLike | None) -> NDArray[np.bool_]:
    ok = np.isfinite(img)
    if mask is not None:
        ok &= ~np.asarray(mask, dtype=bool)
    return ok


def match_sky(
    images: Sequence[ArrayLike],
    masks: Sequence[ArrayLike | None] | None = None,
    skymethod: str = "match",
    skystat: str = "mode",
    nclip: int = 5,
    lsigma: float = 4.0,
    usigma: float = 4.0,
    min_overlap: int = 100,
) -> NDArray[np.float64]:
    """Per-exposure sky levels.

    Parameters
    ----------
    images : sequence of array_like, each (ny, nx)
        Exposures on a common grid (NaN = no data).
    masks : sequence of array_like of bool or None, optional
        True for pixels to ignore (bad DQ, sources).
    skymethod : {"local", "global", "match", "global+match"}
    skystat : {"mode", "median", "mean"}
        Statistic of the clipped pixel values.
    nclip, lsigma, usigma : int, float, float
        Clipping iterations and lower/upper limits.
    min_overlap : int
        Least number of common pixels for a pair to count as overlapping.

    Returns
    -------
    ndarray, shape (n,)
        Sky level of each exposure (to subtract).

    Raises
    ------
    StepInputError
        Unknown method, or (for matching) an exposure that overlaps no other.
    """
    if skymethod not in SKYMETHODS:
        raise StepInputError(f"skymethod must be one of {SKYMETHODS}, got {skymethod!r}")
    n = len(images)
    if n == 0:
        raise StepInputError("skymatch needs at least one exposure")
    masks = list(masks) if masks is not None else [None] * n

    def stat(values: NDArray, bad: NDArray | None = None) -> float:
        return sigma_clipped_stats(values, bad, lsigma, usigma, nclip).stat(skystat)

    arrays = [np.asarray(im, dtype=np.float64) for im in images]
    valid = [_valid(a, m) for a, m in zip(arrays, masks, strict=True)]
    local = np.array([stat(a, ~v) for a, v in zip(arrays, valid, strict=True)])
    if skymethod == "local":
        return local
    if skymethod == "global":
        return np.full(n, np.nanmin(local))

    rows, rhs, wts = [], [], []
    for i in range(n):
        for j in range(i + 1, n):
            common = valid[i] & valid[j]
            npix = int(common.sum())
            if npix < min_overlap:
                continue
            d = stat(arrays[i][common] - arrays[j][common])
            row = np.zeros(n)
            row[i], row[j] = 1.0, -1.0
            rows.append(row)
            rhs.append(d)
            wts.append(np.sqrt(npix))
    linked = np.zeros(n, dtype=bool)
    for row in rows:
        linked |= row != 0
    if n > 1 and not linked.all():
        lonely = ", ".join(str(k) for k in np.flatnonzero(~linked))
        raise StepInputError(f"skymatch: exposure(s) {lonely} overlap no other exposure")
    if n == 1:
        levels = np.zeros(1)
    else:
        a = np.array(rows) * np.array(wts)[:, None]
        b = np.array(rhs) * np.array(wts)
        # the system fixes only differences: add sum(s) = 0, then shift
        a = np.vstack([a, np.ones(n)])
        b = np.append(b, 0.0)
        levels, *_ = np.linalg.lstsq(a, b, rcond=None)
    levels = levels - levels.min()
    if skymethod == "global+match":
        residual = [stat(a - s, ~v) for a, s, v in zip(arrays, levels, valid, strict=True)]
        levels = levels + np.nanmin(residual)
    return levels
