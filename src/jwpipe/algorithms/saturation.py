"""Saturation and A/D-floor flagging (JWST ``saturation``), on raw DN before superbias."""

from __future__ import annotations

import numpy as np

from jwpipe.algorithms import _dq
from jwpipe.algorithms._util import map_chunks, row_chunks
from jwpipe.errors import StepInputError

__all__ = ["ATOD_LIMIT", "dilate", "flag_saturation"]

#: Full scale of the 16-bit A/D converter (DN).
ATOD_LIMIT = 65535.0


def dilate(mask: np.ndarray, n: int) -> np.ndarray:
    """Grow a 2-D boolean mask by a (2n+1) x (2n+1) box (separable shifted ORs).

    Parameters
    ----------
    mask : ndarray of bool, shape (ny, nx)
        Input mask (not modified).
    n : int
        Half width of the box; 0 returns a copy.

    Returns
    -------
    ndarray of bool
        Dilated mask.
    """
    out = mask.copy()
    if n <= 0 or not mask.any():
        return out
    rows = mask.copy()
    for s in range(1, n + 1):
        rows[s:] |= mask[:-s]
        rows[:-s] |= mask[s:]
    out[:] = rows
    for s in range(1, n + 1):
        out[:, s:] |= rows[:, :-s]
        out[:, :-s] |= rows[:, s:]
    return out


def flag_saturation(
    data: np.ndarray,
    groupdq: np.ndarray,
    pixeldq: np.ndarray,
    sat_thresh: np.ndarray,
    sat_dq: np.ndarray | None = None,
    *,
    n_pix_grow_sat: int = 1,
    use_readpatt: bool = True,
    nframes: int = 1,
    groupgap: int = 0,
    zeroframe: np.ndarray | None = None,
    chunk_bytes: int | None = None,
    threads: int | None = None,
) -> int:
    """Flag saturated and A/D-floor groups; ``groupdq``/``pixeldq`` (and ``zeroframe``) in place.

    A group at or above its pixel's threshold is SATURATED, as are all later groups; each plane's
    saturation is grown by ``n_pix_grow_sat`` pixels (box). Values <= 0 get AD_FLOOR|DO_NOT_USE in
    that group only. Pixels with NO_SAT_CHECK in ``sat_dq`` or a NaN threshold are never flagged
    (threshold set above the A/D limit) and get NO_SAT_CHECK in PIXELDQ.

    With ``use_readpatt`` and frame-averaged groups (NFRAMES > 1), a group just before the first
    saturated group is flagged DO_NOT_USE when its value exceeds the threshold times the dilution
    factor mean(frame index) / last frame index of the group: the average can be below threshold
    while its last frames saturated. A second check flags group 1 when group 0 predicts no
    saturation by group 2, group 1 exceeds threshold/NFRAMES, and group 2 is saturated.

    Parameters
    ----------
    data : ndarray, shape (nints, ngroups, ny, nx)
        Raw ramp in DN (bias included); not modified.
    groupdq : ndarray of uint8, same shape
        Group DQ, updated in place.
    pixeldq : ndarray of uint32, shape (ny, nx)
        Pixel DQ, updated in place with the (sanitised) saturation reference DQ.
    sat_thresh : ndarray, shape (ny, nx)
        Saturation threshold (DN).
    sat_dq : ndarray, shape (ny, nx), optional
        Saturation reference DQ.
    n_pix_grow_sat : int
        Neighbour growth of saturation (jwst default 1 -> 3x3 box).
    use_readpatt : bool
        Apply the frame-averaging checks.
    nframes, groupgap : int
        Readout pattern: frames averaged per group and frames dropped between groups.
    zeroframe : ndarray, shape (nints, ny, nx), optional
        ZEROFRAME; saturated or floor pixels (grown) are set to 0 in place.
    chunk_bytes : int, optional
        Size of the row blocks (counted as float32 rows of one plane).
    threads : int, optional
        Worker threads over row blocks (default: ``$JWPIPE_THREADS`` or the usable CPUs); the
        result is the same for any count.

    Returns
    -------
    int
        Number of pixels saturated in any group of any integration.

    Raises
    ------
    StepInputError
        If shapes are inconsistent.
    """
    if data.ndim != 4 or groupdq.shape != data.shape:
        raise StepInputError(
            f"saturation: data {data.shape} and groupdq {groupdq.shape} must be equal 4-D shapes"
        )
    if sat_thresh.shape != data.shape[2:]:
        raise StepInputError(
            f"saturation: threshold shape {sat_thresh.shape} != image {data.shape[2:]}"
        )
    nints, ngroups = data.shape[:2]
    thresh = sat_thresh.astype(np.float32, copy=False)
    no_check = np.isnan(thresh)
    if sat_dq is not None:
        no_check |= (sat_dq.astype(np.uint32, copy=False) & _dq.NO_SAT_CHECK) != 0
    if no_check.any():
        thresh = thresh.copy()  # the reference array itself is never modified
        thresh[no_check] = ATOD_LIMIT + 1.0
    sat_flag = np.uint8(_dq.SATURATED)
    dnu = np.uint8(_dq.DO_NOT_USE)
    ever = np.zeros(thresh.shape, bool)
    stride = nframes + groupgap

    ny = thresh.shape[0]
    halo = max(0, n_pix_grow_sat)
    # row blocks on worker threads; each group is done in two passes so that the growth of a
    # block's saturation can read its neighbours' rows (halo) before any flag is written
    blocks = list(row_chunks(ny, thresh.shape[1] * 4, chunk_bytes))  # a few blocks per plane
    floor = np.uint8(_dq.AD_FLOOR | _dq.DO_NOT_USE)
    sat = np.empty(thresh.shape, bool)
    for i in range(nints):
        running = np.zeros(thresh.shape, bool)
        for g in range(ngroups):
            plane, gd = data[i, g], groupdq[i, g]

            def mark(rows: slice, plane=plane, gd=gd, running=running) -> None:
                run, block = running[rows], sat[rows]
                run |= plane[rows] >= thresh[rows]
                np.not_equal(gd[rows] & sat_flag, 0, out=block)
                block |= run

            def flag(rows: slice, plane=plane, gd=gd) -> None:
                lo, hi = max(0, rows.start - halo), min(ny, rows.stop + halo)
                grown = dilate(sat[lo:hi], n_pix_grow_sat)[rows.start - lo:rows.stop - lo]
                out = gd[rows]
                # where= ORs in one pass; boolean-mask indexing would gather and scatter
                np.bitwise_or(out, sat_flag, out=out, where=grown)
                np.bitwise_or(out, floor, out=out, where=plane[rows] <= 0)

            map_chunks(mark, blocks, threads)
            map_chunks(flag, blocks, threads)
        ever |= running
        if not (use_readpatt and nframes > 1):
            continue
        for g in range(ngroups - 2, -1, -1):
            first = g * stride + 1
            dilution = (first + (nframes - 1) / 2.0) / (first + nframes - 1)
            lim = np.where(no_check, thresh, thresh * np.float32(dilution))
            this, nxt = groupdq[i, g], groupdq[i, g + 1]
            hit = ((data[i, g] >= lim) & ((this & (sat_flag | dnu)) == 0)
                   & ((nxt & sat_flag) != 0))
            if hit.any():
                groupdq[i, g][dilate(hit, n_pix_grow_sat)] |= dnu
        if ngroups > 2:
            mean_read0 = (1 + nframes) / 2.0
            last_read2 = 2 * stride + nframes
            hit = data[i, 0] / np.float32(mean_read0) * np.float32(last_read2) < thresh
            hit &= data[i, 1] > thresh / np.float32(nframes)
            hit &= ((groupdq[i, 2] & sat_flag) != 0) & ((groupdq[i, 1] & sat_flag) == 0)
            groupdq[i, 1][hit] |= dnu

    if zeroframe is not None:
        for i in range(nints):
            z = zeroframe[i]
            bad = dilate(z >= thresh, n_pix_grow_sat) | (z <= 0)
            z[bad] = 0.0
    if sat_dq is not None:
        pixeldq |= sat_dq.astype(np.uint32, copy=False)
    np.bitwise_or(pixeldq, np.uint32(_dq.NO_SAT_CHECK), out=pixeldq, where=no_check)
    return int(np.count_nonzero(ever))
