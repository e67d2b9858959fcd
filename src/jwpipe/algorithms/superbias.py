"""Superbias subtraction (JWST ``superbias``)."""

from __future__ import annotations

import numpy as np

from jwpipe.algorithms._util import map_chunks, row_chunks
from jwpipe.errors import StepInputError

__all__ = ["subtract_superbias"]


def subtract_superbias(
    data: np.ndarray,
    pixeldq: np.ndarray,
    bias: np.ndarray,
    bias_dq: np.ndarray | None = None,
    zeroframe: np.ndarray | None = None,
    *,
    chunk_bytes: int | None = None,
    threads: int | None = None,
) -> None:
    """Subtract the superbias from every group, **in place**; OR its DQ into PIXELDQ.

    Parameters
    ----------
    data : ndarray of float32, shape (nints, ngroups, ny, nx)
        Ramp, modified in place.
    pixeldq : ndarray of uint32, shape (ny, nx)
        Pixel DQ, updated in place.
    bias : ndarray, shape (ny, nx)
        Superbias in DN; NaN is treated as 0.
    bias_dq : ndarray, shape (ny, nx), optional
        Superbias DQ, OR'd into ``pixeldq``.
    zeroframe : ndarray, shape (nints, ny, nx), optional
        ZEROFRAME; non-zero pixels have the bias subtracted in place.
    chunk_bytes : int, optional
        Size of the row blocks subtracted by one worker.
    threads : int, optional
        Worker threads (default: ``$JWPIPE_THREADS`` or the usable CPUs).

    Raises
    ------
    StepInputError
        If the bias does not match the image shape.
    """
    if bias.shape != data.shape[2:]:
        raise StepInputError(f"superbias: bias shape {bias.shape} != image {data.shape[2:]}")
    clean = bias.astype(data.dtype, copy=False)
    if not np.isfinite(clean).all():
        clean = np.nan_to_num(clean, nan=0.0)

    def subtract(rows: slice) -> None:
        block = data[:, :, rows]
        block -= clean[rows]

    nints, ngroups, _, nx = data.shape
    map_chunks(subtract, row_chunks(data.shape[2], nints * ngroups * nx * data.itemsize,
                                    chunk_bytes), threads)
    if bias_dq is not None:
        pixeldq |= bias_dq.astype(np.uint32)
    if zeroframe is not None:
        nonzero = zeroframe != 0
        zeroframe -= np.where(nonzero, clean, 0).astype(zeroframe.dtype)
