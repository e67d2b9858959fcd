"""Scale rate products by the gain factor (JWST ``gain_scale``)."""

from __future__ import annotations

import numpy as np

__all__ = ["gain_scale"]


def gain_scale(
    data: np.ndarray,
    err: np.ndarray,
    var_poisson: np.ndarray,
    var_rnoise: np.ndarray,
    gain_factor: float,
) -> None:
    """Multiply SCI and ERR by ``gain_factor`` and the variances by its square, in place.

    Parameters
    ----------
    data, err, var_poisson, var_rnoise : ndarray of float32
        Rate (2-D) or rateints (3-D) arrays, modified in place.
    gain_factor : float
        GAINFACT.
    """
    f = np.float32(gain_factor)
    data *= f
    err *= f
    var_poisson *= f * f
    var_rnoise *= f * f
