"""Relative (and absolute) alignment of exposures from their source catalogues.

Catalogues are given as positions on one common tangent plane (e.g. arcsec about a fixed
sky point; :func:`tangent_plane` converts RA/Dec). Each exposure ``i`` gets a correction
``T_i(p) = R(theta_i) p + t_i`` (rotation about the tangent point, then shift) that maps its
measured positions to the common frame.

1. Matching (:func:`match_catalogs`): all pairwise differences within ``searchrad`` vote in a
   2-D histogram (bin = ``tolerance``); the peak (refined by the mean of the differences
   around it) is the offset; then one-to-one mutual nearest neighbours within ``tolerance``.
   Every pair of exposures, and every exposure against the reference catalogue if given, is
   matched.
2. Joint fit (:func:`align_catalogs`): one linearised least-squares system over all matched
   pairs of all exposures, with exposure ``fixed`` (or the reference catalogue) held at the
   identity, iterated (Gauss-Newton) and sigma-clipped; then the catalogues are re-matched
   with the fitted corrections and the fit repeated. All exposures thus agree with each
   other, not just with one reference (the jointcal idea).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from jwpipe.errors import StepInputError


class AlignmentError(StepInputError):
    """Too few sources or matches to align the exposures."""


@dataclass(frozen=True)
class AlignResult:
    """Per-exposure corrections ``T_i(p) = R(rotation_i) p + shift_i``.

    Attributes
    ----------
    shift : ndarray, shape (n, 2)
        Shifts in the catalogues' units.
    rotation : ndarray, shape (n,)
        Rotations, degrees (counter-clockwise in the catalogue's x-y frame).
    rms : ndarray, shape (n,)
        RMS of the final matched-pair residuals involving each exposure.
    nmatch : ndarray of int, shape (n,)
        Number of matched pairs used for each exposure.
    fixed : int or None
        Index of the exposure held fixed (None when a reference catalogue was used).
    matrix : ndarray, shape (n, 2, 2), or None
        With ``affine``: the full linear part ``A_i`` of ``T_i(p) = A_i p + shift_i``
        (``rotation`` is then its mean rotation angle, for information).
    """

    shift: NDArray[np.float64]
    rotation: NDArray[np.float64]
    rms: NDArray[np.float64]
    nmatch: NDArray[np.int64]
    fixed: int | None
    matrix: NDArray[np.float64] | None = None


def tangent_plane(
    ra: ArrayLike, dec: ArrayLike, ra0: float, dec0: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Gnomonic projection about ``(ra0, dec0)``: standard coordinates (xi east, eta north).

    All angles in degrees in; ``xi, eta`` in arcsec out.
    """
    a = np.radians(np.asarray(ra, dtype=np.float64))
    d = np.radians(np.asarray(dec, dtype=np.float64))
    a0, d0 = np.radians(ra0), np.radians(dec0)
    cosc = np.sin(d0) * np.sin(d) + np.cos(d0) * np.cos(d) * np.cos(a - a0)
    xi = np.cos(d) * np.sin(a - a0) / cosc
    eta = (np.cos(d0) * np.sin(d) - np.sin(d0) * np.cos(d) * np.cos(a - a0)) / cosc
    k = np.degrees(1.0) * 3600.0
    return xi * k, eta * k


def apply_correction(xy: ArrayLike, shift: ArrayLike, rotation_deg: float) -> NDArray[np.float64]:
    """Apply ``R(rotation) p + shift`` to points ``xy`` of shape (n, 2)."""
    p = np.asarray(xy, dtype=np.float64)
    th = np.radians(rotation_deg)
    c, s = np.cos(th), np.sin(th)
    out = np.empty_like(p)
    out[:, 0] = c * p[:, 0] - s * p[:, 1] + shift[0]
    out[:, 1] = s * p[:, 0] + c * p[:, 1] + shift[1]
    return out


def match_catalogs(
    a: ArrayLike,
    b: ArrayLike,
    searchrad: float,
    tolerance: float,
    use2dhist: bool = True,
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float64]]:
    """Match two point lists: histogram vote on the offset, then mutual nearest neighbours.

    Parameters
    ----------
    a, b : array_like, shape (n, 2) and (m, 2)
        Positions in a common frame (``b ~ a + offset``).
    searchrad : float
        Largest offset considered.
    tolerance : float
        Matching radius after applying the offset (and histogram bin size).
    use2dhist : bool
        Vote for an offset first; if False, assume zero offset.

    Returns
    -------
    ia, ib : ndarray of int
        Indices of matched pairs.
    offset : ndarray, shape (2,)
        Offset ``b - a`` found (refined by the matched pairs' mean difference).
    """
    pa = np.asarray(a, dtype=np.float64).reshape(-1, 2)
    pb = np.asarray(b, dtype=np.float64).reshape(-1, 2)
    empty = np.zeros(0, np.intp)
    if len(pa) == 0 or len(pb) == 0:
        return empty, empty, np.zeros(2)
    offset = np.zeros(2)
    if use2dhist:
        diff = (pb[None, :, :] - pa[:, None, :]).reshape(-1, 2)
        diff = diff[np.hypot(diff[:, 0], diff[:, 1]) <= searchrad]
        if diff.size:
            nbin = max(1, int(np.ceil(2 * searchrad / tolerance)))
            hist, ex, ey = np.histogram2d(
                diff[:, 0], diff[:, 1], bins=nbin, range=[[-searchrad, searchrad]] * 2
            )
            i, j = np.unravel_index(np.argmax(hist), hist.shape)
            peak = np.array([0.5 * (ex[i] + ex[i + 1]), 0.5 * (ey[j] + ey[j + 1])])
            near = np.hypot(*(diff - peak).T) <= tolerance
            offset = diff[near].mean(axis=0)
    from scipy.spatial import cKDTree  # scipy costs 0.15 s at import; only matching needs it

    tree = cKDTree(pb)
    dist, jb = tree.query(pa + offset, distance_upper_bound=tolerance)
    found = np.isfinite(dist)
    ia = np.flatnonzero(found)
    jb = jb[found]
    # keep only mutual nearest neighbours (one-to-one)
    _, back = cKDTree(pa + offset).query(pb[jb])
    mutual = back == ia
    ia, jb = ia[mutual], jb[mutual]
    if ia.size:
        offset = (pb[jb] - pa[ia]).mean(axis=0)
    return ia, jb, offset


Pair = tuple[int, int, NDArray[np.float64], NDArray[np.float64]]


def _blocks(p: NDArray, q: NDArray, r: NDArray) -> tuple[NDArray, NDArray, NDArray, NDArray,
                                                         NDArray]:
    """(JiTJi, JiTJj, JjTJj, JiTr, JjTr) summed over points; p, q corrected, r = p - q."""
    m = len(p)

    def jtj(a: NDArray) -> NDArray:
        return np.array([[m, 0.0, -a[:, 1].sum()], [0.0, m, a[:, 0].sum()],
                         [-a[:, 1].sum(), a[:, 0].sum(), (a**2).sum()]])

    cross = np.array([[m, 0.0, -q[:, 1].sum()], [0.0, m, q[:, 0].sum()],
                      [-p[:, 1].sum(), p[:, 0].sum(), (p * q).sum()]])

    def jtr(a: NDArray) -> NDArray:
        return np.array([r[:, 0].sum(), r[:, 1].sum(),
                         (-a[:, 1] * r[:, 0] + a[:, 0] * r[:, 1]).sum()])

    return jtj(p), cross, jtj(q), jtr(p), jtr(q)


def _clipped(pairs: list[Pair], keep: list[NDArray], corrected: Any, sigma: float
             ) -> list[NDArray] | None:
    """Matches kept after clipping residuals at ``sigma`` times their RMS; None when nothing
    changes or too few are left (the fit has converged)."""
    res = [np.hypot(*(corrected(i, p) - corrected(j, q)).T) for i, j, p, q in pairs]
    kept = np.concatenate([r[k] for r, k in zip(res, keep, strict=True)]) if res else []
    if len(kept) < 3:
        return None
    rms = np.sqrt(np.mean(np.square(kept)))
    new_keep = [r <= sigma * rms for r in res]
    if all(np.array_equal(a, b) for a, b in zip(new_keep, keep, strict=True)):
        return None
    return new_keep


def _solve(pairs: list[Pair], params: NDArray, free: NDArray, fit_rotation: bool, nclip: int,
           sigma: float) -> tuple[NDArray, list[NDArray]]:
    n = params.shape[0]
    npar = 3 if fit_rotation else 2
    col = -np.ones(n, dtype=np.intp)
    col[free] = np.arange(int(free.sum())) * npar
    nunk = int(free.sum()) * npar
    keep = [np.ones(len(p), dtype=bool) for _, _, p, _ in pairs]

    def corrected(k: int, pts: NDArray) -> NDArray:
        return apply_correction(pts, params[k, :2], np.degrees(params[k, 2]))

    for it in range(nclip + 1):
        for _ in range(6):
            if nunk == 0:
                return params, keep
            mat = np.zeros((nunk, nunk))
            rhs = np.zeros(nunk)
            for (i, j, p, q), kp in zip(pairs, keep, strict=True):
                if not kp.any():
                    continue
                pi, qj = corrected(i, p[kp]), corrected(j, q[kp])
                aii, aij, ajj, bi, bj = _blocks(pi, qj, pi - qj)
                ci, cj = col[i], col[j]
                s = slice(0, npar)
                if ci >= 0:
                    mat[ci:ci + npar, ci:ci + npar] += aii[s, s]
                    rhs[ci:ci + npar] -= bi[s]
                if cj >= 0:
                    mat[cj:cj + npar, cj:cj + npar] += ajj[s, s]
                    rhs[cj:cj + npar] += bj[s]
                if ci >= 0 and cj >= 0:
                    mat[ci:ci + npar, cj:cj + npar] -= aij[s, s]
                    mat[cj:cj + npar, ci:ci + npar] -= aij[s, s].T
            delta, *_ = np.linalg.lstsq(mat, rhs, rcond=None)
            for k in np.flatnonzero(free):
                c = col[k]
                dth = delta[c + 2] if fit_rotation else 0.0
                cs, sn = np.cos(dth), np.sin(dth)
                tx, ty = params[k, 0], params[k, 1]
                params[k, 0] = cs * tx - sn * ty + delta[c]
                params[k, 1] = sn * tx + cs * ty + delta[c + 1]
                params[k, 2] += dth
            if np.max(np.abs(delta)) < 1e-10:
                break
        if it == nclip:
            break
        new_keep = _clipped(pairs, keep, corrected, sigma)
        if new_keep is None:
            break
        keep = new_keep
    return params, keep


def _solve_affine(pairs: list[Pair], free: NDArray, nclip: int, sigma: float
                  ) -> tuple[NDArray, NDArray, list[NDArray]]:
    """Full affine ``A_k p + t_k`` per free exposure (others the identity), linear least squares
    over all matched pairs, sigma-clipped like :func:`_solve`. Returns (A, t, keep)."""
    n = len(free)
    col = -np.ones(n, dtype=np.intp)
    col[free] = np.arange(int(free.sum())) * 6
    nunk = int(free.sum()) * 6
    mats = np.tile(np.eye(2), (n, 1, 1))
    shifts = np.zeros((n, 2))
    keep = [np.ones(len(p), dtype=bool) for _, _, p, _ in pairs]

    def corrected(k: int, pts: NDArray) -> NDArray:
        return pts @ mats[k].T + shifts[k]

    for it in range(nclip + 1):
        rows, rhs = [], []
        for (i, j, p, q), kp in zip(pairs, keep, strict=True):
            if not kp.any():
                continue
            m = int(kp.sum())
            block = np.zeros((2 * m, nunk))
            const = np.zeros(2 * m)
            for k, pts, sign in ((i, p[kp], 1.0), (j, q[kp], -1.0)):
                if col[k] < 0:
                    const -= sign * corrected(k, pts).T.reshape(-1)  # x rows, then y rows
                    continue
                c = col[k]
                block[:m, c:c + 2] = sign * pts  # a11, a12
                block[:m, c + 4] = sign  # tx
                block[m:, c + 2:c + 4] = sign * pts  # a21, a22
                block[m:, c + 5] = sign  # ty
            rows.append(block)
            rhs.append(const)
        if not rows or nunk == 0:
            break
        sol, *_ = np.linalg.lstsq(np.vstack(rows), np.concatenate(rhs), rcond=None)
        for k in np.flatnonzero(free):
            c = col[k]
            mats[k] = sol[c:c + 4].reshape(2, 2)
            shifts[k] = sol[c + 4:c + 6]
        if it == nclip:
            break
        new_keep = _clipped(pairs, keep, corrected, sigma)
        if new_keep is None:
            break
        keep = new_keep
    return mats, shifts, keep


def _connected(pairs: list[Pair], n: int, anchor: int) -> list[int]:
    reached = {anchor}
    changed = True
    while changed:
        changed = False
        for i, j, _, _ in pairs:
            if (i in reached) != (j in reached):
                reached |= {i, j}
                changed = True
    return sorted(set(range(n)) - reached)


def align_catalogs(
    catalogs: list[ArrayLike],
    reference: ArrayLike | None = None,
    fixed: int = 0,
    fit_rotation: bool = True,
    searchrad: float = 2.0,
    tolerance: float = 0.7,
    minobj: int = 15,
    nclip: int = 3,
    sigma: float = 3.0,
    candidate_pairs: Iterable[tuple[int, int]] | None = None,
    affine: bool = False,
) -> AlignResult:
    """Jointly align exposures' source catalogues (and optionally to a reference catalogue).

    Parameters
    ----------
    catalogs : list of array_like, each (n_i, 2)
        Source positions of each exposure on the common tangent plane.
    reference : array_like (m, 2), optional
        Absolute reference catalogue (held fixed); all exposures are then free.
    fixed : int
        Exposure held at the identity when there is no reference catalogue.
    fit_rotation : bool
        Fit shift and rotation (``rshift``), else shift only.
    searchrad, tolerance : float
        Largest initial offset, and matching radius (catalogue units).
    minobj : int
        Least number of matched pairs an exposure needs.
    nclip : int
        Sigma-clipping iterations; ``sigma`` is the clip limit in units of the pair RMS.
    candidate_pairs : iterable of (i, j), optional
        Exposure pairs worth matching (e.g. overlapping footprints; default all). With a
        reference catalogue every exposure is also matched to it.
    affine : bool
        Fit a full affine transformation per exposure (jwst's ``fitgeometry='general'``):
        matching uses the shift-and-rotation fit, then the final matches are fitted with
        ``A_i p + t_i`` (6 parameters; at least 3 matches per exposure are needed).

    Returns
    -------
    AlignResult

    Raises
    ------
    AlignmentError
        Too few sources or matches, or exposures not connected to the anchor by matches.
    """
    cats = [np.asarray(c, dtype=np.float64).reshape(-1, 2) for c in catalogs]
    m = len(cats)
    if reference is not None:
        cats.append(np.asarray(reference, dtype=np.float64).reshape(-1, 2))
        anchor = len(cats) - 1
    else:
        if m < 2:
            raise AlignmentError("alignment needs at least two exposures or a reference catalogue")
        if not 0 <= fixed < m:
            raise AlignmentError(f"fixed exposure index {fixed} out of range")
        anchor = fixed
    n = len(cats)

    def name(k: int) -> str:
        return "reference catalogue" if reference is not None and k == n - 1 else f"exposure {k}"

    for k, c in enumerate(cats):
        if len(c) < minobj:
            raise AlignmentError(f"{name(k)} has {len(c)} sources, fewer than minobj={minobj}")
    todo = sorted({(min(i, j), max(i, j)) for i, j in candidate_pairs}) if candidate_pairs \
        is not None else [(i, j) for i in range(m) for j in range(i + 1, m)]
    if reference is not None:
        todo += [(i, n - 1) for i in range(m)]
    free = np.ones(n, dtype=bool)
    free[anchor] = False
    params = np.zeros((n, 3))
    pairs: list[Pair] = []
    keep: list[NDArray] = []
    for rnd in range(2):
        pairs = []
        for i, j in todo:
            pi = apply_correction(cats[i], params[i, :2], np.degrees(params[i, 2]))
            pj = apply_correction(cats[j], params[j, :2], np.degrees(params[j, 2]))
            ia, jb, _ = match_catalogs(pi, pj, searchrad if rnd == 0 else tolerance,
                                       tolerance, use2dhist=rnd == 0)
            if len(ia) >= max(3, minobj // 3 if rnd == 0 else 3):
                pairs.append((i, j, cats[i][ia], cats[j][jb]))
        missing = _connected(pairs, n, anchor)
        if missing:
            raise AlignmentError(f"{', '.join(name(k) for k in missing)} share(s) too few "
                                 f"matched sources with {name(anchor)}")
        params, keep = _solve(pairs, params, free, fit_rotation, nclip, sigma)
    mats = None
    if affine:
        mats, shifts, keep = _solve_affine(pairs, free, nclip, sigma)
        params[:, :2] = shifts
        params[:, 2] = np.arctan2(mats[:, 1, 0] - mats[:, 0, 1], mats[:, 0, 0] + mats[:, 1, 1])

    def final(k: int, pts: NDArray) -> NDArray:
        if mats is not None:
            return pts @ mats[k].T + params[k, :2]
        return apply_correction(pts, params[k, :2], np.degrees(params[k, 2]))

    nmatch = np.zeros(n, dtype=np.int64)
    sq = np.zeros(n)
    for (i, j, p, q), kp in zip(pairs, keep, strict=True):
        r = final(i, p[kp]) - final(j, q[kp])
        d2 = (r**2).sum()
        for k in (i, j):
            nmatch[k] += kp.sum()
            sq[k] += d2
    for k in range(n):
        if nmatch[k] < minobj:
            raise AlignmentError(f"{name(k)} has only {nmatch[k]} matched sources "
                                 f"(minobj={minobj})")
    rms = np.sqrt(sq / np.maximum(nmatch, 1))
    return AlignResult(shift=params[:m, :2].copy(), rotation=np.degrees(params[:m, 2]),
                       rms=rms[:m], nmatch=nmatch[:m],
                       fixed=None if reference is not None else fixed,
                       matrix=None if mats is None else mats[:m].copy())
