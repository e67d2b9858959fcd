"""Quick-look pictures of calibrated images: an asinh stretch with bad pixels masked.

The stretch is the one survey teams use to inspect JWST images by eye (Lupton et al. 2004): the
sky sits near black, faint sources rise linearly and bright cores compress logarithmically, so
one picture shows both the noise floor and the brightest stars. Pixels flagged ``DO_NOT_USE``
(or not finite) are drawn in a separate colour, never as data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["asinh_stretch", "downsample", "robust_limits"]


def robust_limits(data: np.ndarray, good: np.ndarray) -> tuple[float, float]:
    """Sky level and noise of an image from its good pixels.

    Parameters
    ----------
    data : ndarray
        The image.
    good : ndarray of bool
        Pixels to use (finite, not flagged).

    Returns
    -------
    sky, sigma : float
        The median and the robust standard deviation (1.4826 x MAD) of the good pixels;
        ``(0, 1)`` when there are none.
    """
    values = np.asarray(data, dtype=np.float64)[good]
    if values.size == 0:
        return 0.0, 1.0
    if values.size > 1_000_000:  # a regular subsample is enough for two statistics
        values = values[:: values.size // 1_000_000 + 1]
    sky = float(np.median(values))
    sigma = 1.4826 * float(np.median(np.abs(values - sky)))
    if not np.isfinite(sigma) or sigma <= 0:
        sigma = float(np.std(values)) or 1.0
    return sky, sigma


def asinh_stretch(data: np.ndarray, good: np.ndarray, *, softening: float = 3.0,
                  top_percentile: float = 99.9) -> np.ndarray:
    """Map an image to [0, 1] with an asinh stretch anchored on the sky noise.

    Parameters
    ----------
    data : ndarray
        The image (any float dtype).
    good : ndarray of bool
        Pixels that carry data; others come out as NaN.
    softening : float
        Where the stretch turns from linear to logarithmic, in units of the sky noise.
    top_percentile : float
        Percentile of the good pixels that maps to white.

    Returns
    -------
    ndarray of float32
        Stretched image in [0, 1], NaN where ``good`` is False.
    """
    data = np.asarray(data, dtype=np.float32)
    sky, sigma = robust_limits(data, good)
    scale = np.float32(softening * sigma)
    top = np.percentile(data[good], top_percentile) if good.any() else sky + 10 * sigma
    norm = np.arcsinh(max(top - sky, scale) / scale)
    out = np.arcsinh((data - np.float32(sky)) / scale) / np.float32(norm)
    np.clip(out, 0.0, 1.0, out=out)
    out[~good] = np.nan
    return out


def downsample(image: np.ndarray, max_size: int) -> tuple[np.ndarray, int]:
    """Block-average an image so neither side exceeds ``max_size`` (NaNs ignored).

    Returns the smaller image and the block factor (1 when no reduction was needed).
    """
    factor = max(1, int(np.ceil(max(image.shape) / max_size)))
    if factor == 1:
        return image, 1
    ny, nx = (s // factor * factor for s in image.shape)
    blocks = image[:ny, :nx].reshape(ny // factor, factor, nx // factor, factor)
    with np.errstate(invalid="ignore"), _quiet_nanmean():
        return np.nanmean(blocks, axis=(1, 3)), factor


class _quiet_nanmean:
    """Silence numpy's 'mean of empty slice' for all-NaN blocks (they stay NaN)."""

    def __enter__(self) -> None:
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc: object) -> None:
        self._ctx.__exit__(*exc)


def marker_positions(x: Sequence[float], y: Sequence[float], factor: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Source positions (0-based pixels) in the frame of an image block-averaged by ``factor``."""
    return (np.asarray(x, dtype=float) + 0.5) / factor - 0.5, \
        (np.asarray(y, dtype=float) + 0.5) / factor - 0.5
