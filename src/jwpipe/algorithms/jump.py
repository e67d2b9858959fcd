"""Cosmic-ray jump detection by the two-point-difference method (JWST ``jump`` step).

Work is done in electrons on first differences of the groups of each integration. For every
pixel, the differences of all integrations are pooled. With fewer than ``min_diffs_single_pass``
usable differences the detection is iterative: the largest outlier (in units of the expected
difference noise) is flagged, removed, and the statistics recomputed, until no pixel has an
outlier above its threshold (4, 5 or 6 sigma for >= 4, 3 or 2 usable differences). With more
differences one pass against the median is used. The group *after* a flagged difference gets
JUMP_DET. Jumps between ``min_jump_to_flag_neighbors`` and ``max_jump_to_flag_neighbors`` sigma
also flag the 4 orthogonal neighbours in the same group.

With at least ``minimum_sigclip_groups`` integrations each difference is instead sigma-clipped
across integrations (median centre, standard deviation, up to 5 iterations).

Not implemented: snowball/shower expansion, after-jump flagging, clearing JUMP_DET from groups
in which every pixel is flagged (sigma-clipping mode).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jwpipe.algorithms import _dq
from jwpipe.algorithms._util import map_chunks, median_of_first, row_chunks, sorted_with_counts
from jwpipe.errors import StepInputError

__all__ = ["JumpResult", "detect_jumps"]


@dataclass(frozen=True)
class JumpResult:
    """Summary of a jump-detection run.

    Attributes
    ----------
    skipped : bool
        True when the data have too few usable groups and nothing was flagged.
    n_primary : int
        Number of groups flagged as primary jumps (neighbour flags not counted).
    n_neighbors : int
        Number of additional groups flagged as neighbours of large jumps.
    """

    skipped: bool
    n_primary: int
    n_neighbors: int


def _check_shapes(data: np.ndarray, groupdq: np.ndarray, pixeldq: np.ndarray,
                  gain: np.ndarray, readnoise: np.ndarray) -> None:
    if data.ndim != 4:
        raise StepInputError(f"jump: ramp data must be 4-D (nints, ngroups, ny, nx): {data.shape}")
    if groupdq.shape != data.shape:
        raise StepInputError(f"jump: groupdq shape {groupdq.shape} != data shape {data.shape}")
    for name, arr in (("pixeldq", pixeldq), ("gain", gain), ("readnoise", readnoise)):
        if arr.shape != data.shape[2:]:
            raise StepInputError(f"jump: {name} shape {arr.shape} != image shape {data.shape[2:]}")


def _usable_group_count(groupdq: np.ndarray) -> int:
    """ngroups minus the largest number of groups that are DO_NOT_USE for every pixel."""
    nints, ngroups = groupdq.shape[:2]
    worst = 0
    for i in range(nints):
        all_dnu = sum(
            1 for g in range(ngroups) if np.all(groupdq[i, g] & _dq.DO_NOT_USE)
        )
        worst = max(worst, all_dnu)
    return ngroups - worst


def detect_jumps(
    data: np.ndarray,
    groupdq: np.ndarray,
    pixeldq: np.ndarray,
    gain: np.ndarray,
    readnoise: np.ndarray,
    *,
    nframes: int = 1,
    rejection_threshold: float = 4.0,
    three_group_rejection_threshold: float = 6.0,
    four_group_rejection_threshold: float = 5.0,
    flag_4_neighbors: bool = True,
    max_jump_to_flag_neighbors: float = 1000.0,
    min_jump_to_flag_neighbors: float = 10.0,
    min_diffs_single_pass: int = 10,
    minimum_groups: int = 3,
    minimum_sigclip_groups: int = 100,
    only_use_ints: bool = True,
    chunk_bytes: int | None = None,
    threads: int | None = None,
) -> JumpResult:
    """Flag cosmic-ray jumps in a ramp; ``groupdq`` and ``pixeldq`` are updated in place.

    Parameters
    ----------
    data : ndarray, shape (nints, ngroups, ny, nx)
        Ramp in DN (float32 preferred; not modified).
    groupdq : ndarray of uint8, same shape as ``data``
        Group DQ; JUMP_DET is OR'd in place. Groups with DO_NOT_USE or SATURATED are ignored.
    pixeldq : ndarray of uint32, shape (ny, nx)
        Pixel DQ; NO_GAIN_VALUE|DO_NOT_USE is OR'd in place where the gain is <= 0 or NaN.
    gain : ndarray, shape (ny, nx)
        Gain in e-/DN.
    readnoise : ndarray, shape (ny, nx)
        CDS read noise in DN (as in READNOISE reference files).
    nframes : int
        Frames averaged per group (NFRAMES); the read noise of a group difference is
        ``readnoise / sqrt(nframes)``.
    rejection_threshold : float
        Sigma threshold when a pixel has >= 4 usable differences.
    three_group_rejection_threshold : float
        Sigma threshold with exactly 2 usable differences (3 groups).
    four_group_rejection_threshold : float
        Sigma threshold with exactly 3 usable differences (4 groups).
    flag_4_neighbors : bool
        Also flag the 4 orthogonal neighbours of jumps of intermediate size.
    max_jump_to_flag_neighbors, min_jump_to_flag_neighbors : float
        Range (exclusive, in sigma) of jumps whose neighbours are flagged.
    min_diffs_single_pass : int
        With at least this many usable differences in every integration the single-pass method
        is used, otherwise the iterative one.
    minimum_groups : int
        Nothing is done when fewer usable groups remain (jwst uses 3).
    minimum_sigclip_groups : int
        With at least this many integrations (``only_use_ints``) or usable groups in total
        (otherwise), jumps are found by sigma clipping each difference across integrations
        (or across all differences of the pixel) at ``rejection_threshold``.
    only_use_ints : bool
        Sigma-clip across integrations only (per group difference).
    chunk_bytes : int, optional
        Size of per-chunk float32 temporaries (rows are processed in chunks).
    threads : int, optional
        Worker threads over row chunks (default: ``$JWPIPE_THREADS`` or the usable CPUs); the
        result is the same for any count.

    Returns
    -------
    JumpResult
        Whether detection ran and how many groups were flagged.

    Raises
    ------
    StepInputError
        If array shapes are inconsistent.
    """
    _check_shapes(data, groupdq, pixeldq, gain, readnoise)
    nints, ngroups, ny, nx = data.shape
    if ngroups < minimum_groups or _usable_group_count(groupdq) < minimum_groups:
        return JumpResult(skipped=True, n_primary=0, n_neighbors=0)
    min_usable_diffs = _usable_group_count(groupdq) - 1

    gain = np.asarray(gain, dtype=np.float32)
    bad_gain = ~(gain > 0)
    pixeldq[bad_gain] |= np.uint32(_dq.NO_GAIN_VALUE | _dq.DO_NOT_USE)
    gain_e = np.where(bad_gain, np.float32(np.nan), gain)
    # variance of a group difference from read noise, electrons^2
    rn_var = (np.asarray(readnoise, dtype=np.float32) * gain_e) ** 2 / np.float32(nframes)

    params = _Thresholds(
        rejection_threshold, four_group_rejection_threshold, three_group_rejection_threshold
    )
    ndiff_tot = nints * (ngroups - 1)
    sigclip = (nints >= minimum_sigclip_groups if only_use_ints
               else nints * _usable_group_count(groupdq) >= minimum_sigclip_groups)

    def detect(rows: slice) -> tuple[np.ndarray, ...] | None:
        # reads and writes only its own rows of groupdq (clearing JUMP_DET on unusable groups)
        gdq_c = groupdq[:, :, rows]
        electrons = np.multiply(data[:, :, rows], gain_e[rows], dtype=np.float32)
        np.copyto(electrons, np.float32(np.nan), where=(gdq_c & _dq.INVALID_GROUP) != 0)
        npix = electrons.shape[2] * nx
        fd = np.diff(electrons, axis=1).reshape(ndiff_tot, npix)
        del electrons
        var_c = rn_var[rows].reshape(npix)
        if sigclip:
            diff_idx, pix_idx = _sigma_clip(fd, nints, rejection_threshold, only_use_ints)
        elif min_usable_diffs >= min_diffs_single_pass:
            diff_idx, pix_idx = _single_pass(fd, var_c, rejection_threshold)
        else:
            diff_idx, pix_idx = _iterative(fd, var_c, params)
        # clear JUMP_DET on unusable groups (jwst removes such combinations)
        clear = ((gdq_c & _dq.JUMP_DET) != 0) & ((gdq_c & _dq.INVALID_GROUP) != 0)
        if clear.any():
            gdq_c[clear] &= np.uint8(~_dq.JUMP_DET & 0xFF)
        if diff_idx.size == 0:
            return None
        ints, grps = np.divmod(diff_idx, ngroups - 1)
        ys, xs = np.divmod(pix_idx, nx)
        sel = np.zeros(diff_idx.size, bool)
        if flag_4_neighbors:
            ratio = _neighbor_ratio(fd, var_c, diff_idx, pix_idx)
            sel = (ratio > min_jump_to_flag_neighbors) & (ratio < max_jump_to_flag_neighbors)
        return ints, grps + 1, ys + rows.start, xs, sel

    # Detection runs on row chunks in parallel; flags are then applied in chunk order, since
    # neighbour flags reach into the next chunk's rows (the counts depend on that order).
    n_primary = 0
    n_neighbors = 0
    for found in map_chunks(detect, row_chunks(ny, ndiff_tot * nx * 4, chunk_bytes), threads):
        if found is None:
            continue
        ints, grps, ys, xs, sel = found
        groupdq[ints, grps, ys, xs] |= np.uint8(_dq.JUMP_DET)
        n_primary += ints.size
        if flag_4_neighbors:
            n_neighbors += _flag_neighbors(groupdq, ints[sel], grps[sel], ys[sel], xs[sel])
    return JumpResult(skipped=False, n_primary=n_primary, n_neighbors=n_neighbors)


@dataclass(frozen=True)
class _Thresholds:
    four_plus: float
    three: float
    two: float


def _single_pass(fd: np.ndarray, rn_var: np.ndarray, threshold: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    s, counts = sorted_with_counts(fd)
    med = median_of_first(s, counts)
    del s
    sigma = np.sqrt(np.abs(med) + rn_var)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.abs(fd - med) / sigma
    hit = ratio > threshold  # NaN compares False
    return np.nonzero(hit)


def _sigma_clip(fd: np.ndarray, nints: int, threshold: float, only_use_ints: bool,
                max_iter: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Iterative median/std clipping of differences across integrations (or all differences)."""
    ndiff_tot, npix = fd.shape
    samples = fd.reshape(nints, -1) if only_use_ints else fd
    work = samples.copy()
    for _ in range(max_iter):
        med = median_of_first(*sorted_with_counts(work))
        valid = ~np.isnan(work)
        n = np.count_nonzero(valid, axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(valid, work, 0).sum(axis=0) / n
            std = np.sqrt(np.where(valid, (work - mean) ** 2, 0).sum(axis=0) / n)
            out = np.abs(work - med) > threshold * std
        if not out.any():
            break
        work[out] = np.nan
    clipped = np.isnan(work) & ~np.isnan(samples)
    return np.nonzero(clipped.reshape(ndiff_tot, npix))


def _clipped_median_abs(s: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Median of |differences| with the largest value dropped when >= 4 are usable."""
    m = np.where(counts >= 4, counts - 1, np.where(counts == 3, 3, np.where(counts == 2, 1, 0)))
    return median_of_first(s, m)


def _iterative(fd: np.ndarray, rn_var: np.ndarray, thr: _Thresholds
               ) -> tuple[np.ndarray, np.ndarray]:
    """Iteratively flag the largest outlier per pixel; return (diff index, pixel index) pairs."""
    absd = np.abs(fd)
    pix = np.arange(absd.shape[1])
    var = rn_var
    found_d: list[np.ndarray] = []
    found_p: list[np.ndarray] = []
    for _ in range(absd.shape[0]):
        s, counts = sorted_with_counts(absd)
        med = _clipped_median_abs(s, counts)
        del s
        sigma = np.sqrt(med + var)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.abs(absd - med) / sigma
        np.copyto(ratio, ratio.dtype.type(-1.0), where=np.isnan(ratio))
        # the largest ratio of every pixel; which difference it is matters only for the hits
        max_ratio = ratio.max(axis=0)
        limit = np.where(counts >= 4, thr.four_plus, np.where(counts == 3, thr.three, thr.two))
        hit = (max_ratio > limit) & (counts >= 2)
        if not hit.any():
            break
        hp = np.nonzero(hit)[0]
        worst = np.argmax(ratio[:, hp], axis=0)  # first of equal maxima, as over all pixels
        del ratio
        found_d.append(worst)
        found_p.append(pix[hp])
        # continue with the flagged pixels only, their outlier removed
        absd = absd[:, hp]
        absd[worst, np.arange(hp.size)] = np.nan
        pix = pix[hp]
        var = var[hp]
    if not found_d:
        empty = np.zeros(0, dtype=np.intp)
        return empty, empty
    return np.concatenate(found_d), np.concatenate(found_p)


def _neighbor_ratio(fd: np.ndarray, rn_var: np.ndarray, diff_idx: np.ndarray,
                    pix_idx: np.ndarray) -> np.ndarray:
    """Jump size in sigma relative to the plain median of the pixel's differences."""
    upix, inverse = np.unique(pix_idx, return_inverse=True)
    s, counts = sorted_with_counts(fd[:, upix])
    med = median_of_first(s, counts)
    sigma = np.sqrt(np.abs(med) + rn_var[upix])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.abs(fd[diff_idx, pix_idx] - med[inverse]) / sigma[inverse]


def _flag_neighbors(groupdq: np.ndarray, ints: np.ndarray, grps: np.ndarray,
                    ys: np.ndarray, xs: np.ndarray) -> int:
    """OR JUMP_DET into the 4 neighbours (same group) unless they are SATURATED/DO_NOT_USE."""
    ny, nx = groupdq.shape[2:]
    count = 0
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        yn = ys + dy
        xn = xs + dx
        ok = (yn >= 0) & (yn < ny) & (xn >= 0) & (xn < nx)
        lin = np.unique(np.ravel_multi_index((ints[ok], grps[ok], yn[ok], xn[ok]),
                                             groupdq.shape))
        i, g, yv, xv = np.unravel_index(lin, groupdq.shape)
        current = groupdq[i, g, yv, xv]
        take = ((current & _dq.INVALID_GROUP) == 0) & ((current & _dq.JUMP_DET) == 0)
        groupdq[i[take], g[take], yv[take], xv[take]] = current[take] | np.uint8(_dq.JUMP_DET)
        count += int(np.count_nonzero(take))
    return count
