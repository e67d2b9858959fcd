"""Rescale groups averaged on board with a power-of-two divisor (JWST ``group_scale``)."""

from __future__ import annotations

import numpy as np

from jwpipe.errors import StepInputError

__all__ = ["group_scale", "group_scale_needed"]


def group_scale_needed(nframes: int | None, frame_divisor: int | None) -> bool:
    """Whether ``group_scale`` has anything to do (otherwise jwst marks the step SKIPPED).

    Parameters
    ----------
    nframes : int or None
        NFRAMES, frames averaged per group.
    frame_divisor : int or None
        FRMDIVSR, the divisor used on board.

    Returns
    -------
    bool
        False when NFRAMES is missing, when FRMDIVSR is missing and NFRAMES is a power of two,
        or when the two are equal.
    """
    if nframes is None:
        return False
    if frame_divisor is None:
        return not (nframes > 0 and (nframes & (nframes - 1)) == 0)
    return frame_divisor != nframes


def group_scale(data: np.ndarray, nframes: int, frame_divisor: int | None) -> float:
    """Multiply the ramp **in place** by ``frame_divisor / nframes``.

    Parameters
    ----------
    data : ndarray of float32, shape (nints, ngroups, ny, nx)
        Ramp, modified in place.
    nframes : int
        NFRAMES.
    frame_divisor : int or None
        FRMDIVSR. If None, the divisor is taken as the power of two used on board (the smallest
        power of two >= NFRAMES).

    Returns
    -------
    float
        The factor applied (1.0 when nothing was needed).

    Raises
    ------
    StepInputError
        If ``nframes`` or ``frame_divisor`` is not positive.
    """
    if nframes is None or nframes <= 0:
        raise StepInputError(f"group_scale: NFRAMES must be a positive integer, got {nframes}")
    if frame_divisor is not None and frame_divisor <= 0:
        raise StepInputError(f"group_scale: FRMDIVSR must be positive, got {frame_divisor}")
    if not group_scale_needed(nframes, frame_divisor):
        return 1.0
    divisor = frame_divisor if frame_divisor is not None else 1 << (nframes - 1).bit_length()
    factor = divisor / nframes
    np.multiply(data, data.dtype.type(factor), out=data)
    return float(factor)
