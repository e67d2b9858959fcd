"""Merge the bad-pixel mask into the ramp's DQ (JWST ``dq_init``)."""

from __future__ import annotations

import numpy as np

from jwpipe.algorithms import _dq
from jwpipe.errors import StepInputError

__all__ = ["dq_init"]


def dq_init(
    pixeldq: np.ndarray,
    groupdq: np.ndarray,
    mask_dq: np.ndarray,
    user_dq: np.ndarray | None = None,
) -> None:
    """OR the MASK reference DQ into PIXELDQ and its DO_NOT_USE into every GROUPDQ plane, in place.

    Parameters
    ----------
    pixeldq : ndarray of uint32, shape (ny, nx)
        Pixel DQ, updated in place.
    groupdq : ndarray of uint8, shape (nints, ngroups, ny, nx)
        Group DQ, updated in place (DO_NOT_USE only, as jwst >= 3.0).
    mask_dq : ndarray of integer, shape (ny, nx)
        MASK reference DQ, already cut to the science subarray.
    user_dq : ndarray of integer, optional
        Extra user-supplied DQ (``user_supplied_dq``) OR'd into the mask first.

    Raises
    ------
    StepInputError
        If the shapes do not match.
    """
    if mask_dq.shape != pixeldq.shape:
        raise StepInputError(f"dq_init: mask shape {mask_dq.shape} != pixeldq {pixeldq.shape}")
    if groupdq.shape[2:] != pixeldq.shape:
        raise StepInputError(f"dq_init: groupdq {groupdq.shape} does not match {pixeldq.shape}")
    mask = mask_dq.astype(np.uint32)
    if user_dq is not None:
        if user_dq.shape != pixeldq.shape:
            raise StepInputError(
                f"dq_init: user_supplied_dq shape {user_dq.shape} != pixeldq {pixeldq.shape}"
            )
        mask |= user_dq.astype(np.uint32)
    pixeldq |= mask
    dnu = (mask & _dq.DO_NOT_USE).astype(np.uint8)
    if dnu.any():
        groupdq |= dnu
