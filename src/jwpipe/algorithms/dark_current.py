"""Dark-current subtraction (JWST ``dark_current``, near-IR 3-D darks)."""

from __future__ import annotations

import numpy as np

from jwpipe.algorithms._util import map_chunks
from jwpipe.errors import ReferenceFileError, StepInputError

__all__ = ["subtract_dark"]


def _nan_to_zero(plane: np.ndarray) -> np.ndarray:
    """``np.nan_to_num(plane, nan=0.0)`` in place; one check when the plane is all finite."""
    if np.isfinite(plane).all():
        return plane
    return np.nan_to_num(plane, nan=0.0, copy=False)


def _dark_plane(dark: np.ndarray, j: int) -> np.ndarray:
    """Dark plane ``j``, extrapolated linearly from the last two planes beyond the end."""
    n = dark.shape[0]
    if j < n:
        return _nan_to_zero(dark[j].astype(np.float32))
    if n < 2:
        raise ReferenceFileError("dark: reference has one plane; cannot extrapolate it")
    last = _nan_to_zero(dark[n - 1].astype(np.float32))
    prev = _nan_to_zero(dark[n - 2].astype(np.float32))
    return last + np.float32(j - n + 1) * (last - prev)


def subtract_dark(
    data: np.ndarray,
    pixeldq: np.ndarray,
    dark: np.ndarray,
    dark_dq: np.ndarray | None = None,
    *,
    nframes: int = 1,
    groupgap: int = 0,
    dark_nframes: int = 1,
    dark_groupgap: int = 0,
    threads: int | None = None,
) -> bool:
    """Subtract the dark matched to the science readout pattern, **in place**.

    When the dark has the science NFRAMES and GROUPGAP, dark group g is subtracted from science
    group g. Otherwise the dark must be given per frame (dark NFRAMES=1, GROUPGAP=0) and science
    group g gets the mean of dark frames ``[g*(nframes+groupgap), g*(nframes+groupgap)+nframes)``.
    Darks shorter than the science ramp are extrapolated linearly from their last two planes.
    NaN dark values count as 0. Only one dark plane per worker thread is materialised at a time.

    Parameters
    ----------
    data : ndarray of float32, shape (nints, ngroups, ny, nx)
        Ramp, modified in place.
    pixeldq : ndarray of uint32, shape (ny, nx)
        Pixel DQ; ``dark_dq`` is OR'd in place.
    dark : ndarray, shape (ndark, ny, nx)
        Cumulative dark signal per dark group (DN).
    dark_dq : ndarray, shape (ny, nx), optional
        Dark reference DQ.
    nframes, groupgap : int
        Science readout pattern.
    dark_nframes, dark_groupgap : int
        Dark readout pattern.
    threads : int, optional
        Worker threads over groups (default: ``$JWPIPE_THREADS`` or the usable CPUs).

    Returns
    -------
    bool
        False (nothing done, jwst SKIPPED) when the dark averages more frames or skips more
        frames than the science data; True otherwise.

    Raises
    ------
    StepInputError
        If the dark does not match the image shape.
    ReferenceFileError
        If the dark readout pattern cannot be converted to the science one.
    """
    if dark.ndim != 3 or dark.shape[1:] != data.shape[2:]:
        raise StepInputError(f"dark_current: dark shape {dark.shape} != image {data.shape[2:]}")
    if dark_nframes > nframes or dark_groupgap > groupgap:
        return False
    ngroups = data.shape[1]
    same = dark_nframes == nframes and dark_groupgap == groupgap
    if not same and (dark_nframes != 1 or dark_groupgap != 0):
        raise ReferenceFileError(
            f"dark_current: dark readout NFRAMES={dark_nframes}, GROUPGAP={dark_groupgap} cannot "
            f"be averaged to NFRAMES={nframes}, GROUPGAP={groupgap} (needs a per-frame dark)"
        )
    stride = nframes + groupgap

    def subtract(g: int) -> None:
        if same:
            plane = _dark_plane(dark, g)
        else:
            start = g * stride
            plane = _dark_plane(dark, start)
            for j in range(start + 1, start + nframes):
                plane += _dark_plane(dark, j)
            plane /= np.float32(nframes)
        data[:, g] -= plane

    map_chunks(subtract, range(ngroups), threads)
    if dark_dq is not None:
        pixeldq |= dark_dq.astype(np.uint32)
    return True
