"""Near-IR reference-pixel correction (JWST ``refpix``, "median" algorithm, non-IRS2).

Works in the detector frame (through views, so the ramp is corrected in place):

1. Top/bottom reference rows: for every integration, group and amplifier, the sigma-clipped mean
   of the bottom and of the top reference rows is computed, separately for even and odd columns
   when ``odd_even_columns``; the average of top and bottom is subtracted from that amplifier's
   columns of the same parity.
2. Side reference columns (``use_side_ref_pixels``): the left and right reference columns are
   smoothed along rows with a running median over ``side_smoothing_length`` rows (reflective
   edges), left and right are averaged, multiplied by ``side_gain`` and subtracted row by row.

A subarray read through one output (smaller than 2048x2048, NOUTPUTS not 4) is corrected as
jwst corrects it: one sigma-clipped mean of all its reference pixels (every pixel flagged
REFERENCE_PIXEL, side and top/bottom alike), per column parity when ``odd_even_columns``, is
subtracted from every pixel of that parity; the side correction does not apply (jwst ignores
``use_side_ref_pixels`` there).

Reference pixels are those flagged REFERENCE_PIXEL in PIXELDQ (rows/columns made entirely of
them); an unflagged 2048x2048 frame is assumed to have the standard 4-pixel border. DO_NOT_USE
reference pixels are ignored. Every group is corrected. Data without reference rows skip step 1,
without reference columns skip step 2; with neither, nothing is done and False is returned
(jwst then records SKIPPED).
"""

from __future__ import annotations

import numpy as np

from jwpipe.algorithms import _dq
from jwpipe.algorithms._util import map_chunks, nanmedian_axis0, row_chunks
from jwpipe.errors import StepInputError

__all__ = ["correct_refpix", "detector_view", "sigma_clipped_mean"]

_FULL = 2048
_BORDER = 4


def detector_view(a: np.ndarray, fastaxis: int, slowaxis: int) -> np.ndarray:
    """View of ``a`` (last two axes in DMS orientation) in the detector readout frame.

    Parameters
    ----------
    a : ndarray
        Array whose last two axes are (y, x) in DMS orientation.
    fastaxis, slowaxis : int
        FASTAXIS and SLOWAXIS keywords (+-1, +-2).

    Returns
    -------
    ndarray
        A view (writes go to ``a``) with the fast readout direction along the last axis,
        increasing in readout order.
    """
    if abs(fastaxis) == 2:
        a = np.swapaxes(a, -1, -2)
    if fastaxis < 0:
        a = a[..., ::-1]
    if slowaxis < 0:
        a = a[..., ::-1, :]
    return a


def sigma_clipped_mean(values: np.ndarray, siglimit: float = 3.0, max_iter: int = 50) -> np.ndarray:
    """Mean along the last axis after iterative symmetric sigma clipping (NaN ignored).

    Clips values outside mean +- ``siglimit`` * std and repeats until nothing changes, like
    ``scipy.stats.sigmaclip``.

    Parameters
    ----------
    values : ndarray
        Samples along the last axis.
    siglimit : float
        Clipping limit in standard deviations.
    max_iter : int
        Safety bound on iterations.

    Returns
    -------
    ndarray
        Clipped mean, shape ``values.shape[:-1]`` (NaN where no value).
    """
    v = values.astype(np.float64)
    keep = ~np.isnan(v)
    for _ in range(max_iter):
        n = keep.sum(axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(keep, v, 0.0).sum(axis=-1) / n
            var = np.where(keep, (v - mean[..., None]) ** 2, 0.0).sum(axis=-1) / n
        std = np.sqrt(var)
        new = keep & (np.abs(v - mean[..., None]) <= siglimit * std[..., None])
        if np.array_equal(new, keep):
            break
        keep = new
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(keep, v, 0.0).sum(axis=-1) / keep.sum(axis=-1)


def _reference_layout(refmask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    ny, nx = refmask.shape
    if not refmask.any() and (ny, nx) == (_FULL, _FULL):
        refmask = np.zeros_like(refmask)
        refmask[:_BORDER] = refmask[-_BORDER:] = True
        refmask[:, :_BORDER] = refmask[:, -_BORDER:] = True
    full_rows = np.nonzero(refmask.all(axis=1))[0]
    full_cols = np.nonzero(refmask.all(axis=0))[0]
    bottom = full_rows[full_rows < ny // 2]
    top = full_rows[full_rows >= ny // 2]
    left = full_cols[full_cols < nx // 2]
    right = full_cols[full_cols >= nx // 2]
    return bottom, top, left, right


def correct_refpix(
    data: np.ndarray,
    pixeldq: np.ndarray,
    *,
    odd_even_columns: bool = True,
    use_side_ref_pixels: bool = True,
    side_smoothing_length: int = 11,
    side_gain: float = 1.0,
    noutputs: int = 4,
    fastaxis: int = 1,
    slowaxis: int = 2,
    siglimit: float = 3.0,
    chunk_bytes: int | None = None,
    threads: int | None = None,
) -> bool:
    """Subtract reference-pixel bias drifts from every group, **in place**.

    Parameters
    ----------
    data : ndarray of float32, shape (nints, ngroups, ny, nx)
        Ramp in DMS orientation, corrected in place.
    pixeldq : ndarray of uint32, shape (ny, nx)
        Pixel DQ (read only): REFERENCE_PIXEL locates reference pixels, DO_NOT_USE excludes them.
    odd_even_columns : bool
        Separate means for even and odd columns.
    use_side_ref_pixels : bool
        Apply the side (left/right column) correction.
    side_smoothing_length : int
        Running-median window along rows for the side reference pixels (odd).
    side_gain : float
        Multiplier of the side correction.
    noutputs : int
        Number of amplifiers (NOUTPUTS); 4 with 2048 detector columns gives 4 x 512 columns.
    fastaxis, slowaxis : int
        FASTAXIS/SLOWAXIS of the data.
    siglimit : float
        Sigma-clipping limit of the reference means.
    chunk_bytes : int, optional
        Size of the row blocks corrected by one worker.
    threads : int, optional
        Worker threads (default: ``$JWPIPE_THREADS`` or the usable CPUs); the corrections are
        elementwise, so the result is the same for any count.

    Returns
    -------
    bool
        False when the data have no reference pixels (nothing done).

    Raises
    ------
    StepInputError
        If shapes are inconsistent or ``side_smoothing_length`` is not a positive integer.
    """
    if data.ndim != 4 or pixeldq.shape != data.shape[2:]:
        raise StepInputError(f"refpix: data {data.shape} / pixeldq {pixeldq.shape} mismatch")
    if side_smoothing_length < 1:
        raise StepInputError(
            f"refpix: side_smoothing_length must be >= 1, got {side_smoothing_length}"
        )
    det = detector_view(data, fastaxis, slowaxis)
    dq = detector_view(pixeldq, fastaxis, slowaxis)
    bottom, top, left, right = _reference_layout((dq & _dq.REFERENCE_PIXEL) != 0)
    if bottom.size + top.size + left.size + right.size == 0:
        return False
    dnu = (dq & _dq.DO_NOT_USE) != 0
    nints, ngroups, ny, nx = det.shape
    if (ny, nx) != (_FULL, _FULL) and noutputs != 4:
        return _correct_one_output_subarray(det, (dq & _dq.REFERENCE_PIXEL) != 0, dnu,
                                            odd_even_columns, siglimit)
    namp = noutputs if (noutputs == 4 and nx == _FULL) else 1
    amp_w = nx // namp
    parities = (0, 1) if odd_even_columns else (None,)

    column_offset = corr = None
    if bottom.size or top.size:
        sides = [rows for rows in (bottom, top) if rows.size]
        # one offset per (integration, group, column)
        column_offset = np.zeros((nints, ngroups, nx), np.float32)
        for a in range(namp):
            for p in parities:
                cols = slice(a * amp_w + (p or 0), (a + 1) * amp_w, 2 if p is not None else 1)
                means = []
                for rows in sides:
                    vals = det[:, :, rows, cols].astype(np.float32)
                    vals[:, :, dnu[rows, cols]] = np.nan
                    means.append(sigma_clipped_mean(vals.reshape(nints, ngroups, -1), siglimit))
                offset = np.nanmean(np.stack(means), axis=0) if len(means) > 1 else means[0]
                offset = np.nan_to_num(offset, nan=0.0).astype(np.float32)
                column_offset[:, :, cols] = offset[:, :, None]

    if use_side_ref_pixels and (left.size or right.size):
        smoothed = []
        for cols in (left, right):
            if not cols.size:
                continue
            vals = det[:, :, :, cols]  # (nints, ngroups, ny, ncol)
            if column_offset is not None:  # the side columns as step 1 leaves them
                vals = vals - column_offset[:, :, None, cols]
            vals = vals.astype(np.float32)
            vals[:, :, dnu[:, cols]] = np.nan
            smoothed.append(_running_median(vals, side_smoothing_length))
        corr = np.nanmean(np.stack(smoothed), axis=0) if len(smoothed) > 1 else smoothed[0]
        corr = (np.nan_to_num(corr, nan=0.0) * side_gain).astype(np.float32)

    def subtract(rows: slice) -> None:
        # both corrections in one pass over each block of rows, in the order of the steps
        block = det[:, :, rows]
        if column_offset is not None:
            block -= column_offset[:, :, None, :]
        if corr is not None:
            block -= corr[:, :, rows, None]

    if column_offset is not None or corr is not None:
        map_chunks(subtract, row_chunks(det.shape[2], nints * ngroups * nx * 4, chunk_bytes),
                   threads)
    return True


def _correct_one_output_subarray(det: np.ndarray, refmask: np.ndarray, dnu: np.ndarray,
                                 odd_even_columns: bool, siglimit: float) -> bool:
    """jwst's single-output subarray correction: per integration, group and column parity,
    the clipped mean of every usable reference pixel is subtracted from that parity's
    columns."""
    usable = refmask & ~dnu
    if not usable.any():
        return False
    parity = np.arange(det.shape[-1]) % 2
    groups = ((0, 1) if odd_even_columns else (None,))
    for p in groups:
        cols = np.ones(det.shape[-1], bool) if p is None else parity == p
        sel = usable & cols[None, :]
        if not sel.any():
            continue
        offset = sigma_clipped_mean(det[:, :, sel].astype(np.float32), siglimit)
        offset = np.nan_to_num(offset, nan=0.0).astype(np.float32)
        if p is None:
            det -= offset[:, :, None, None]
        else:
            det[..., p::2] -= offset[:, :, None, None]
    return True


def _running_median(vals: np.ndarray, length: int) -> np.ndarray:
    """Running median over ``length`` rows x all columns; vals (nints, ngroups, ny, ncol)."""
    nints, ngroups, ny, ncol = vals.shape
    half = length // 2
    padded = np.pad(vals, ((0, 0), (0, 0), (half, length - 1 - half), (0, 0)), mode="reflect")
    win = np.lib.stride_tricks.sliding_window_view(padded, length, axis=2)
    # win: (nints, ngroups, ny, ncol, length) -> samples first for the axis-0 median
    samples = np.moveaxis(win, (3, 4), (0, 1)).reshape(ncol * length, -1)
    return nanmedian_axis0(samples).reshape(nints, ngroups, ny)
