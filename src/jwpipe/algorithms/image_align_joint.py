"""Joint alignment of many exposures with memory independent of the number of matches.

Same model and procedure as :func:`jwpipe.algorithms.image_align.align_catalogs` (pairwise
histogram matching, one least-squares fit of ``T_k(p) = R(theta_k) p + t_k`` for all
exposures, sigma clipping, a second matching round with the fitted corrections), but the
Gauss-Newton step is solved through the normal equations accumulated pair by pair: each
matched pair of exposures adds 3x3 blocks, so memory is ``O(n_exposures^2)`` for the normal
matrix instead of ``O(pairs x matches x n_exposures)`` for a dense design matrix, and only
``candidate_pairs`` (e.g. exposures whose footprints overlap) are matched.

For exposure ``k`` the derivative of a corrected point ``P = T_k(p)`` with respect to
``(dt_x, dt_y, dtheta)`` of the update ``P -> R(dtheta) P + dt`` is ``[[1, 0, -P_y],
[0, 1, P_x]]``; a pair (i, j) with residuals ``r = P_i - Q_j`` then contributes
``J_i^T J_i``, ``-J_i^T J_j``, ``-J_j^T J_i``, ``J_j^T J_j`` to the matrix and ``-J_i^T r``,
``+J_j^T r`` to the right-hand side, all sums over the matched points.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from jwpipe.algorithms.image_align import (
    AlignmentError,
    AlignResult,
    apply_correction,
    match_catalogs,
)

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
        res = [np.hypot(*(corrected(i, p) - corrected(j, q)).T) for i, j, p, q in pairs]
        kept = np.concatenate([r[k] for r, k in zip(res, keep, strict=True)]) if res else []
        if len(kept) < 3:
            break
        rms = np.sqrt(np.mean(np.square(kept)))
        new_keep = [r <= sigma * rms for r in res]
        if all(np.array_equal(a, b) for a, b in zip(new_keep, keep, strict=True)):
            break
        keep = new_keep
    return params, keep


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


def align_catalogs_joint(
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
) -> AlignResult:
    """Jointly align exposures (see the module docstring); arguments as ``align_catalogs``.

    ``candidate_pairs`` lists the exposure pairs ``(i, j)``, ``i < j``, worth matching
    (default: all); with a reference catalogue every exposure is also matched to it.

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
    nmatch = np.zeros(n, dtype=np.int64)
    sq = np.zeros(n)
    for (i, j, p, q), kp in zip(pairs, keep, strict=True):
        r = apply_correction(p[kp], params[i, :2], np.degrees(params[i, 2])) - apply_correction(
            q[kp], params[j, :2], np.degrees(params[j, 2]))
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
                       fixed=None if reference is not None else fixed)
