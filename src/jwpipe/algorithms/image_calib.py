"""Image2 calibrations as pure functions: background subtraction, flat field, photometry.

Arrays may be 2-D (rate/cal) or 3-D (rateints/calints, integrations first); reference arrays
are 2-D and broadcast over integrations. Inputs are never modified; results are new float32
(uint32 for DQ) arrays.

Flat field (jwst ``flat_field`` for imaging): a flat pixel that is NaN, zero or carries
NO_FLAT_FIELD is not applied (flat = 1, error 0) and flags the science pixel
``DO_NOT_USE | NO_FLAT_FIELD``; ``SCI /= flat``, ``VAR_POISSON, VAR_RNOISE /= flat^2``,
``VAR_FLAT = SCI_new^2 (flat_err / flat)^2``, ``ERR = sqrt(VAR_POISSON + VAR_RNOISE + VAR_FLAT)``.

Photometry: ``SCI, ERR *= c`` and every variance ``*= c^2`` with ``c`` = PHOTMJSR.

Finally :func:`match_nans_and_flags` makes NaN and DO_NOT_USE agree across SCI, ERR, the
variances and DQ (any of them bad -> all bad).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from jwpipe.algorithms.image_stats import clipped_mean_along_axis
from jwpipe.datamodels import dqflags
from jwpipe.errors import StepInputError

DO_NOT_USE = np.uint32(dqflags.pixel["DO_NOT_USE"])
NO_FLAT_FIELD = np.uint32(dqflags.pixel["NO_FLAT_FIELD"])


@dataclass
class Calibrated:
    """Arrays of a calibrated exposure."""

    sci: NDArray[np.float32]
    err: NDArray[np.float32]
    dq: NDArray[np.uint32]
    var_poisson: NDArray[np.float32]
    var_rnoise: NDArray[np.float32]
    var_flat: NDArray[np.float32]


def match_nans_and_flags(c: Calibrated) -> Calibrated:
    """Any NaN in SCI/ERR/variances or DO_NOT_USE in DQ -> all NaN and DO_NOT_USE (in place)."""
    bad = (c.dq & DO_NOT_USE) != 0
    for arr in (c.sci, c.err, c.var_poisson, c.var_rnoise, c.var_flat):
        bad |= ~np.isfinite(arr)
    for arr in (c.sci, c.err, c.var_poisson, c.var_rnoise, c.var_flat):
        arr[bad] = np.nan
    c.dq[bad] |= DO_NOT_USE
    return c


def _f32(a: ArrayLike) -> NDArray[np.float32]:
    return np.array(a, dtype=np.float32, copy=True)


def apply_flat(
    sci: ArrayLike,
    err: ArrayLike,
    dq: ArrayLike,
    var_poisson: ArrayLike,
    var_rnoise: ArrayLike,
    flat: ArrayLike,
    flat_err: ArrayLike | None = None,
    flat_dq: ArrayLike | None = None,
    inverse: bool = False,
) -> Calibrated:
    """Divide by (``inverse``: multiply by) a flat field and propagate the errors.

    Parameters
    ----------
    sci, err, dq, var_poisson, var_rnoise : array_like, shape (..., ny, nx)
        The exposure (``err`` is recomputed; it is only used for its shape).
    flat, flat_err, flat_dq : array_like, shape (ny, nx)
        The flat already cut to the science subarray.
    inverse : bool
        Multiply instead of divide (undo a flat); VAR_FLAT is then left at zero.

    Returns
    -------
    Calibrated
    """
    s = np.asarray(sci)
    f = np.array(flat, dtype=np.float64)
    if f.shape != s.shape[-2:]:
        raise StepInputError(f"flat shape {f.shape} does not match the data {s.shape[-2:]}")
    fe = np.zeros_like(f) if flat_err is None else np.array(flat_err, dtype=np.float64)
    fdq = (np.zeros(f.shape, np.uint32) if flat_dq is None
           else np.array(flat_dq, dtype=np.uint32))
    unusable = ~np.isfinite(f) | (f == 0) | ((fdq & NO_FLAT_FIELD) != 0)
    fdq[unusable] |= DO_NOT_USE | NO_FLAT_FIELD
    f[unusable] = 1.0
    fe[unusable | ~np.isfinite(fe)] = 0.0
    with np.errstate(invalid="ignore", over="ignore"):
        if inverse:
            new = (s * f).astype(np.float32)
            vp = (np.asarray(var_poisson) * f**2).astype(np.float32)
            vr = (np.asarray(var_rnoise) * f**2).astype(np.float32)
            vf = np.zeros(s.shape, np.float32)
        else:
            new = (s / f).astype(np.float32)
            vp = (np.asarray(var_poisson) / f**2).astype(np.float32)
            vr = (np.asarray(var_rnoise) / f**2).astype(np.float32)
            vf = (new.astype(np.float64) ** 2 * (fe / f) ** 2).astype(np.float32)
        e = np.sqrt(vp.astype(np.float64) + vr + vf).astype(np.float32)
    out_dq = np.array(dq, dtype=np.uint32) | fdq
    del err
    return match_nans_and_flags(Calibrated(new, e, out_dq, vp, vr, vf))


def apply_photom(c: Calibrated, conversion: float, inverse: bool = False) -> Calibrated:
    """Scale a calibrated exposure by ``conversion`` (PHOTMJSR); new arrays are returned."""
    if not np.isfinite(conversion) or conversion <= 0:
        raise StepInputError(f"photometric conversion must be positive, got {conversion}")
    k = 1.0 / conversion if inverse else conversion
    k2 = k * k
    out = Calibrated(
        (c.sci * k).astype(np.float32), (c.err * k).astype(np.float32), c.dq.copy(),
        (c.var_poisson * k2).astype(np.float32), (c.var_rnoise * k2).astype(np.float32),
        (c.var_flat * k2).astype(np.float32))
    return match_nans_and_flags(out)


@dataclass
class Background:
    """A combined background exposure."""

    sci: NDArray[np.float32]
    err: NDArray[np.float32]
    dq: NDArray[np.uint32]
    count: NDArray[np.int64]


def combine_backgrounds(
    scis: Sequence[ArrayLike],
    errs: Sequence[ArrayLike],
    bads: Sequence[ArrayLike],
    sigma: float = 3.0,
    maxiters: int | None = None,
) -> Background:
    """Sigma-clipped mean of background exposures, pixel by pixel.

    ``err`` is the error of the mean, ``sqrt(sum err_i^2) / n`` over each pixel's good
    members (before clipping); pixels with no good member get NaN and DO_NOT_USE.
    """
    if not scis:
        raise StepInputError("background subtraction needs at least one background exposure")
    stack = np.stack([np.where(np.asarray(b, bool), np.nan, np.asarray(s, np.float64))
                      for s, b in zip(scis, bads, strict=True)], axis=-1)
    estack = np.stack([np.asarray(e, np.float64) for e in errs], axis=-1)
    mean, _, count = clipped_mean_along_axis(stack, sigma=sigma,
                                             maxiters=5 if maxiters is None else maxiters)
    good = np.isfinite(stack)
    n = np.maximum(good.sum(axis=-1), 1)
    err = np.sqrt(np.where(good, estack**2, 0.0).sum(axis=-1)) / n
    none = count == 0
    dq = np.where(none, DO_NOT_USE, np.uint32(0)).astype(np.uint32)
    return Background(np.where(none, np.nan, mean).astype(np.float32),
                      np.where(none, np.nan, err).astype(np.float32), dq, count)


def subtract_background(sci: ArrayLike, dq: ArrayLike, bkg: Background
                        ) -> tuple[NDArray[np.float32], NDArray[np.uint32]]:
    """``SCI - background``, DQ OR'd with the background's (ERR unchanged, as in jwst)."""
    s = np.asarray(sci)
    if s.shape[-2:] != bkg.sci.shape:
        raise StepInputError(
            f"background shape {bkg.sci.shape} does not match the science data {s.shape[-2:]}")
    return (s - bkg.sci).astype(np.float32), np.asarray(dq, np.uint32) | bkg.dq
