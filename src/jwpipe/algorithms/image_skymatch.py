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

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

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


@dataclass(frozen=True)
class SkyMatch:
    """Sky levels of a set of exposures, and how they were linked.

    Attributes
    ----------
    levels : ndarray, shape (n,)
        Sky level of each image (images of one group share it).
    component : ndarray of int, shape (n,)
        Index of the set of mutually overlapping groups each image was matched in (matching
        methods); levels of different sets are each relative to their own lowest level.
    isolated : ndarray of bool, shape (n,)
        Images whose group overlaps no other group: matching could not set their level
        (``match``: 0; ``global+match``: the global level).
    """

    levels: NDArray[np.float64]
    component: NDArray[np.int64]
    isolated: NDArray[np.bool_]


def connected_components(n: int, edges: Sequence[tuple[int, int]]) -> NDArray[np.int64]:
    """Label of the connected component of each of ``n`` nodes (numbered in order of their
    first node), given undirected ``edges``; union-find over exposure groups."""
    parent = list(range(n))

    def find(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for i, j in edges:
        parent[find(i)] = find(j)
    roots = [find(k) for k in range(n)]
    labels = {r: c for c, r in enumerate(dict.fromkeys(roots))}
    return np.array([labels[r] for r in roots], dtype=np.int64)


def match_sky_groups(
    images: Sequence[ArrayLike],
    groups: Sequence[Hashable] | None = None,
    masks: Sequence[ArrayLike | None] | None = None,
    skymethod: str = "match",
    skystat: str = "mode",
    nclip: int = 5,
    lsigma: float = 4.0,
    usigma: float = 4.0,
    min_overlap: int = 100,
) -> SkyMatch:
    """Sky levels per exposure group, matched within each set of overlapping groups.

    Images with the same ``groups`` label (the detectors of one exposure, as jwst's
    ``group_id``) share one level and are never compared with each other. For the matching
    methods, groups are linked by overlaps of at least ``min_overlap`` common pixels; each set
    of linked groups is solved on its own with its lowest level 0, and a group linked to none
    is flagged ``isolated`` instead of failing (jwst likewise matches independent subsets).

    Parameters
    ----------
    images : sequence of array_like, each (ny, nx)
        Exposures on a common grid (NaN = no data).
    groups : sequence of hashable, optional
        Exposure group of each image (default: each image its own group).
    masks, skymethod, skystat, nclip, lsigma, usigma, min_overlap
        As for :func:`match_sky`.

    Returns
    -------
    SkyMatch
    """
    if skymethod not in SKYMETHODS:
        raise StepInputError(f"skymethod must be one of {SKYMETHODS}, got {skymethod!r}")
    n = len(images)
    if n == 0:
        raise StepInputError("skymatch needs at least one exposure")
    masks = list(masks) if masks is not None else [None] * n
    labels = list(groups) if groups is not None else list(range(n))
    if len(labels) != n:
        raise StepInputError(f"skymatch: {len(labels)} group labels for {n} images")
    names = list(dict.fromkeys(labels))
    gi = np.array([names.index(g) for g in labels], dtype=np.int64)
    ng = len(names)

    def stat(values: NDArray, bad: NDArray | None = None) -> float:
        return sigma_clipped_stats(values, bad, lsigma, usigma, nclip).stat(skystat)

    arrays = [np.asarray(im, dtype=np.float64) for im in images]
    valid = [_valid(a, m) for a, m in zip(arrays, masks, strict=True)]

    def group_stat(g: int, levels: NDArray | None = None) -> float:
        idx = np.flatnonzero(gi == g)
        vals = np.concatenate([(arrays[k] - (0.0 if levels is None else levels[g]))[valid[k]]
                               for k in idx])
        return stat(vals) if vals.size else np.nan

    none = np.zeros(n, dtype=bool)
    if skymethod in ("local", "global"):
        local = np.array([group_stat(g) for g in range(ng)])
        per_group = local if skymethod == "local" else np.full(ng, np.nanmin(local))
        return SkyMatch(per_group[gi], gi.copy(), none)

    rows, rhs, wts, edges = [], [], [], []
    for i in range(n):
        for j in range(i + 1, n):
            if gi[i] == gi[j]:
                continue
            common = valid[i] & valid[j]
            npix = int(common.sum())
            if npix < min_overlap:
                continue
            rows.append((gi[i], gi[j]))
            rhs.append(stat(arrays[i][common] - arrays[j][common]))
            wts.append(np.sqrt(npix))
            edges.append((int(gi[i]), int(gi[j])))
    comp = connected_components(ng, edges)
    linked = np.zeros(ng, dtype=bool)
    for i, j in edges:
        linked[i] = linked[j] = True
    per_group = np.zeros(ng)
    if rows:
        a = np.zeros((len(rows), ng))
        for k, (i, j) in enumerate(rows):
            a[k, i], a[k, j] = wts[k], -wts[k]
        b = np.array(rhs) * np.array(wts)
        # each component fixes only differences: add sum(s) = 0 per component, then shift
        ncomp = int(comp.max()) + 1
        gauge = np.zeros((ncomp, ng))
        gauge[comp, np.arange(ng)] = 1.0
        solution, *_ = np.linalg.lstsq(np.vstack([a, gauge]), np.append(b, np.zeros(ncomp)),
                                       rcond=None)
        for c in range(ncomp):
            members = comp == c
            per_group[members] = solution[members] - solution[members].min()
    per_group[~linked] = 0.0
    if skymethod == "global+match":
        residual = np.array([group_stat(g, per_group) for g in range(ng)])
        per_group = per_group + np.nanmin(residual)
    return SkyMatch(per_group[gi], comp[gi], ~linked[gi] if ng > 1 else none)


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
    result = match_sky_groups(images, None, masks, skymethod, skystat, nclip, lsigma, usigma,
                              min_overlap)
    if skymethod in ("match", "global+match") and result.isolated.any():
        lonely = ", ".join(str(k) for k in np.flatnonzero(result.isolated))
        raise StepInputError(f"skymatch: exposure(s) {lonely} overlap no other exposure")
    return result.levels
