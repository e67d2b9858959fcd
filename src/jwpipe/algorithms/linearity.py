"""Classical non-linearity correction with polynomial coefficients (JWST ``linearity``)."""

from __future__ import annotations

import numpy as np

from jwpipe.algorithms import _dq
from jwpipe.algorithms._util import map_chunks, row_chunks
from jwpipe.errors import StepInputError

__all__ = ["correct_linearity", "sanitize_coefficients"]


def sanitize_coefficients(
    coeffs: np.ndarray, lin_dq: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Replace unusable per-pixel polynomials by the identity.

    Parameters
    ----------
    coeffs : ndarray, shape (ncoeffs, ny, nx)
        COEFFS: plane k multiplies DN**k.
    lin_dq : ndarray, shape (ny, nx), optional
        Linearity reference DQ.

    Returns
    -------
    coeffs : ndarray of float32
        Pixels with NO_LIN_CORR, any NaN coefficient or a zero linear term have c1 = 1 and all
        other coefficients 0 (a copy when any pixel is replaced; the input is never modified).
    no_corr : ndarray of bool
        Those pixels.
    """
    c = coeffs.astype(np.float32, copy=False)
    no_corr = np.isnan(c).any(axis=0) | (c[1] == 0)
    if lin_dq is not None:
        no_corr |= (lin_dq.astype(np.uint32, copy=False) & _dq.NO_LIN_CORR) != 0
    if no_corr.any():
        c = c.copy()  # copy the (large) table only when there is something to replace
        c[:, no_corr] = 0.0
        c[1, no_corr] = 1.0
    return c, no_corr


def correct_linearity(
    data: np.ndarray,
    groupdq: np.ndarray,
    pixeldq: np.ndarray,
    coeffs: np.ndarray,
    lin_dq: np.ndarray | None = None,
    *,
    chunk_bytes: int | None = None,
    threads: int | None = None,
) -> None:
    """Apply ``DN_corr = sum_k c_k DN**k`` to every unsaturated group, **in place**.

    Parameters
    ----------
    data : ndarray of float32, shape (nints, ngroups, ny, nx)
        Bias-subtracted ramp, modified in place. Groups flagged SATURATED are left unchanged.
    groupdq : ndarray of uint8, same shape
        Group DQ (read only).
    pixeldq : ndarray of uint32, shape (ny, nx)
        Pixel DQ; the reference DQ and NO_LIN_CORR (for sanitised pixels) are OR'd in place.
    coeffs : ndarray, shape (ncoeffs, ny, nx)
        Polynomial coefficients (COEFFS), ncoeffs >= 2.
    lin_dq : ndarray, shape (ny, nx), optional
        Linearity reference DQ.
    chunk_bytes : int, optional
        Size of per-chunk temporaries.
    threads : int, optional
        Worker threads over row chunks (default: ``$JWPIPE_THREADS`` or the usable CPUs).

    Raises
    ------
    StepInputError
        If the coefficient array does not match the data.
    """
    if coeffs.ndim != 3 or coeffs.shape[1:] != data.shape[2:] or coeffs.shape[0] < 2:
        raise StepInputError(
            f"linearity: COEFFS shape {coeffs.shape} does not match image {data.shape[2:]}"
        )
    c, no_corr = sanitize_coefficients(coeffs, lin_dq)
    if lin_dq is not None:
        pixeldq |= lin_dq.astype(np.uint32)
    pixeldq[no_corr] |= np.uint32(_dq.NO_LIN_CORR)
    nints, ngroups, ny, nx = data.shape
    ncoef = c.shape[0]

    def apply(rows: slice) -> None:
        cr = c[:, rows]
        for i in range(nints):
            for g in range(ngroups):
                plane = data[i, g, rows]
                acc = cr[ncoef - 1].copy()
                for k in range(ncoef - 2, -1, -1):
                    acc *= plane
                    acc += cr[k]
                keep = (groupdq[i, g, rows] & _dq.SATURATED) == 0
                np.copyto(plane, acc, where=keep)

    map_chunks(apply, row_chunks(ny, nx * 4 * 8, chunk_bytes), threads)
