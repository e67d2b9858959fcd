"""Small helpers shared by the Detector1 algorithms (row chunking, threads, NaN-aware medians)."""

from __future__ import annotations

import functools
from collections.abc import Iterator

import numpy as np

from jwpipe._threads import THREADS_ENV, map_chunks, thread_count

__all__ = ["THREADS_ENV", "map_chunks", "nanmedian_axis0", "row_chunks", "thread_count"]

#: Default size, in bytes, of one chunk-sized float32 temporary. Peak memory of a chunked
#: algorithm is a small multiple of this on top of its inputs.
DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024


def row_chunks(ny: int, bytes_per_row: int, chunk_bytes: int | None = None) -> Iterator[slice]:
    """Yield row slices covering ``range(ny)`` so that each chunk holds about ``chunk_bytes``.

    Parameters
    ----------
    ny : int
        Number of rows.
    bytes_per_row : int
        Size in bytes of one row of the largest per-chunk temporary.
    chunk_bytes : int, optional
        Target temporary size; :data:`DEFAULT_CHUNK_BYTES` if None.

    Yields
    ------
    slice
        Consecutive row ranges.
    """
    target = DEFAULT_CHUNK_BYTES if chunk_bytes is None else int(chunk_bytes)
    step = max(1, target // max(1, bytes_per_row))
    for start in range(0, ny, step):
        yield slice(start, min(ny, start + step))


#: Up to this many entries per column, columns are sorted by a sorting network (see below).
NETWORK_MAX = 64


@functools.cache
def _network(n: int) -> tuple[tuple[int, int], ...]:
    """Compare-exchange pairs of Batcher's odd-even merge sort for ``n`` inputs."""
    pairs = []
    p = 1
    while p < n:
        k = p
        while k >= 1:
            for j in range(k % p, n - k, 2 * k):
                for i in range(min(k, n - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return tuple(pairs)


def sorted_with_counts(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort along axis 0 and count the non-NaN entries of each column.

    Parameters
    ----------
    values : ndarray
        Array of shape (n, ...) possibly containing NaN.

    Returns
    -------
    sorted_values : ndarray
        ``values`` sorted along axis 0. The first ``counts`` entries of a column are its
        non-NaN values in order; the entries after them are unspecified (+inf or NaN).
    counts : ndarray of int64
        Number of non-NaN values per column, shape ``values.shape[1:]``.

    Notes
    -----
    ``numpy.sort`` along a short axis 0 sorts every column separately; for up to
    :data:`NETWORK_MAX` rows a sorting network of elementwise minimum/maximum over whole rows is
    several times faster (NaN is replaced by +inf first so that it sorts last). Both give the
    same ordered values.
    """
    nan = np.isnan(values)
    counts = values.shape[0] - np.count_nonzero(nan, axis=0)
    n = values.shape[0]
    if n > NETWORK_MAX or n < 2:
        return np.sort(values, axis=0), counts
    work = values.copy()
    work[nan] = np.inf
    rows = list(work)
    for a, b in _network(n):
        lo = np.minimum(rows[a], rows[b])
        np.maximum(rows[a], rows[b], out=rows[b])
        rows[a] = lo
    return np.stack(rows), counts


def median_of_first(sorted_values: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Median of the first ``m`` entries of each column of an axis-0 sorted array.

    Parameters
    ----------
    sorted_values : ndarray
        Shape (n, k), sorted along axis 0.
    m : ndarray of int
        Shape (k,), number of leading entries to use (0 gives NaN).

    Returns
    -------
    ndarray
        Shape (k,), same float dtype as ``sorted_values``.
    """
    m = np.asarray(m, dtype=np.intp)
    lo = np.clip((m - 1) // 2, 0, sorted_values.shape[0] - 1)
    hi = np.clip(m // 2, 0, sorted_values.shape[0] - 1)
    if sorted_values.ndim == 2 and sorted_values.flags.c_contiguous:
        # a flat gather: take_along_axis builds broadcast index arrays and is ~2x slower
        flat = sorted_values.reshape(-1)
        columns = np.arange(sorted_values.shape[1], dtype=np.intp)
        a = flat[lo * sorted_values.shape[1] + columns]
        b = flat[hi * sorted_values.shape[1] + columns]
    else:
        a = np.take_along_axis(sorted_values, lo[np.newaxis], axis=0)[0]
        b = np.take_along_axis(sorted_values, hi[np.newaxis], axis=0)[0]
    med = (a + b) * sorted_values.dtype.type(0.5)
    med[m <= 0] = np.nan
    return med


def nanmedian_axis0(values: np.ndarray) -> np.ndarray:
    """NaN-ignoring median along axis 0 of a 2-D array (fast for short axes).

    ``numpy.nanmedian`` falls back to masked arrays for short reduction axes, which is
    orders of magnitude slower than one sort along the axis.

    Parameters
    ----------
    values : ndarray
        Shape (n, k).

    Returns
    -------
    ndarray
        Shape (k,); NaN where a column has no finite value.
    """
    s, counts = sorted_with_counts(values)
    return median_of_first(s, counts)
