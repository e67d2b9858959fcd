"""Drizzle resampling and blotting on the C kernels of STScI's ``drizzle`` package.

:class:`DrizzleAccumulator` adds one exposure at a time into a :class:`drizzle.resample.Drizzle`
(running weighted sums on the output grid), so N exposures need only one input exposure in
memory at a time. Data are surface brightness (JWST ``_cal`` files are MJy/sr): an output
pixel is the weighted mean of the input pixels overlapping it, weights ``a * w`` with ``a``
the kernel overlap and ``w`` the input pixel weight (:func:`ivm_weights` = 1/VAR_RNOISE, or the
exposure time). Variance arrays propagate as ``sum((a w)^2 var) / (sum a w)^2`` (drizzle's
squared-weight images); ``ERR = sqrt(sum of the variance arrays)``. The context image has bit
``k % 32`` of plane ``k // 32`` set where exposure ``k`` contributed.

Pixel maps come from :func:`jwpipe.algorithms.image_geometry.pixel_map`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from jwpipe.errors import StepInputError

__all__ = [
    "BLOT_INTERPOLATIONS",
    "KERNELS",
    "DrizzleAccumulator",
    "ResampleResult",
    "blot",
    "drizzle_one",
    "exposure_count",
    "ivm_weights",
]

#: Drizzle kernels offered (``gaussian`` and ``lanczos3`` do not conserve flux).
KERNELS = ("square", "point", "turbo", "gaussian", "lanczos3")
#: Blot interpolations offered by drizzle's ``blot_image``.
BLOT_INTERPOLATIONS = ("nearest", "linear", "poly3", "poly5", "lan3", "lan5")
#: Half-width (pixels) of each blot interpolation's footprint, for NaN masking.
_BLOT_REACH = {"nearest": 0, "linear": 1, "poly3": 2, "poly5": 3, "lan3": 3, "lan5": 5}


def ivm_weights(var_rnoise: ArrayLike, bad: ArrayLike | None = None) -> NDArray[np.float32]:
    """Inverse-variance weights ``1/VAR_RNOISE``; 0 for bad, non-finite or non-positive var."""
    var = np.asarray(var_rnoise, dtype=np.float32)
    ok = np.isfinite(var) & (var > 0)
    if bad is not None:
        ok &= ~np.asarray(bad, dtype=bool)
    return np.where(ok, np.float32(1.0) / np.where(ok, var, np.float32(1.0)), np.float32(0.0))


def exposure_count(con: ArrayLike) -> NDArray[np.int32]:
    """Number of exposures that contributed to each pixel, from a context array."""
    planes = np.asarray(con).astype(np.int64) & 0xFFFFFFFF
    bits = np.unpackbits(planes.astype(">u4").view(np.uint8).reshape(*planes.shape, 4),
                         axis=-1)
    return bits.sum(axis=(0, -1)).astype(np.int32)


@dataclass
class ResampleResult:
    """Final products of a drizzle combination.

    Attributes
    ----------
    sci : ndarray of float32
        Weighted mean (``fillval`` where nothing contributed).
    err : ndarray of float32
        ``sqrt`` of the summed propagated variances (NaN where nothing contributed).
    wht : ndarray of float32
        Summed weights ``sum(a w)``.
    variances : dict of str to ndarray of float32
        Each propagated variance array.
    context : ndarray of int32, shape (nplanes, ny, nx)
        Bit ``k % 32`` of plane ``k // 32`` set if exposure ``k`` contributed.
    """

    sci: NDArray[np.float32]
    err: NDArray[np.float32]
    wht: NDArray[np.float32]
    variances: dict[str, NDArray[np.float32]]
    context: NDArray[np.int32]

    @property
    def count(self) -> NDArray[np.int32]:
        """Number of exposures contributing to each output pixel."""
        return exposure_count(self.context)


@dataclass
class DrizzleAccumulator:
    """Running drizzle sums on an output grid; add exposures one at a time.

    Parameters
    ----------
    shape : (int, int)
        Output (ny, nx).
    variance_keys : tuple of str
        Names of the variance arrays every :meth:`add` propagates.
    kernel : str
        One of :data:`KERNELS`.
    pixfrac : float
        Linear shrink factor of the input pixel footprint, in (0, 1].
    n_exposures : int
        Expected number of exposures (sizes the context image; it grows if exceeded).
    context : bool
        Keep the context image.
    """

    shape: tuple[int, int]
    variance_keys: tuple[str, ...] = ()
    kernel: str = "square"
    pixfrac: float = 1.0
    n_exposures: int = 1
    context: bool = True
    n_added: int = field(init=False, default=0)
    _driz: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        from drizzle.resample import Drizzle

        if self.kernel not in KERNELS:
            raise StepInputError(f"kernel must be one of {', '.join(KERNELS)}, "
                                 f"got {self.kernel!r}")
        if not 0.0 < self.pixfrac <= 1.0:
            raise StepInputError(f"pixfrac must be in (0, 1], got {self.pixfrac}")
        ny, nx = int(self.shape[0]), int(self.shape[1])
        img2 = [np.zeros((ny, nx), dtype=np.float32) for _ in self.variance_keys]
        self._driz = Drizzle(kernel=self.kernel, out_shape=(ny, nx), fillval=0.0,
                             fillval2=0.0, out_img2=img2 or None,
                             max_ctx_id=max(1, self.n_exposures) - 1,
                             disable_ctx=not self.context)

    def add(
        self,
        data: ArrayLike,
        pixmap: ArrayLike,
        weight: ArrayLike | float = 1.0,
        variances: dict[str, ArrayLike] | None = None,
        pixel_scale_ratio: float = 1.0,
    ) -> None:
        """Drizzle one exposure into the running sums (it becomes context bit ``n_added``).

        Parameters
        ----------
        data : array_like, shape (ny, nx)
            Input surface brightness; non-finite pixels get no weight.
        pixmap : array_like, shape (ny, nx, 2)
            Output-grid position of each input pixel centre
            (:func:`jwpipe.algorithms.image_geometry.pixel_map`).
        weight : array_like or float
            Per-pixel weight (0 = skip), e.g. :func:`ivm_weights` or the exposure time.
        variances : dict of str to array_like, optional
            The arrays named by ``variance_keys``; non-finite values get no weight.
        pixel_scale_ratio : float
            Output / input pixel scale (sizes the turbo, gaussian and lanczos kernels).
        """
        img = np.asarray(data, dtype=np.float32)
        if img.ndim != 2:
            raise StepInputError(f"resample input must be 2-D, got shape {img.shape}")
        pm = np.asarray(pixmap, dtype=np.float64)
        if pm.shape != (*img.shape, 2):
            raise StepInputError(f"pixel map shape {pm.shape} does not fit data shape "
                                 f"{img.shape}")
        variances = variances or {}
        if set(variances) != set(self.variance_keys):
            raise StepInputError(f"variance arrays {sorted(variances)} differ from the "
                                 f"declared {sorted(self.variance_keys)}")
        w = np.array(np.broadcast_to(np.asarray(weight, dtype=np.float32), img.shape))
        good = np.isfinite(img) & np.isfinite(w) & (w > 0)
        var = [np.asarray(variances[k], dtype=np.float32) for k in self.variance_keys]
        for v in var:
            good &= np.isfinite(v)
        w[~good] = 0.0
        # the C kernels skip zero-weight pixels, but NaN would still poison the sums; the
        # pixel map is left alone (drizzle clips the input to the polygon of its edges)
        img = np.where(good, img, np.float32(0.0))
        var = [np.where(good, v, np.float32(0.0)) for v in var]
        self._driz.add_image(img, exptime=1.0, pixmap=pm, data2=var or None, weight_map=w,
                             pixfrac=self.pixfrac, in_units="cps", iscale=1.0,
                             pixel_scale_ratio=pixel_scale_ratio)
        self.n_added += 1

    def finalize(self, fillval: float = np.nan) -> ResampleResult:
        """Return the combined products (copies; the accumulator may go on)."""
        wht = np.array(self._driz.out_wht, dtype=np.float32)
        covered = wht > 0
        sci = np.where(covered, self._driz.out_img, np.float32(fillval)).astype(np.float32)
        variances = {k: np.where(covered, v, np.float32(np.nan)).astype(np.float32)
                     for k, v in zip(self.variance_keys, self._driz.out_img2 or [], strict=False)}
        if variances:
            err = np.sqrt(np.sum(list(variances.values()), axis=0, dtype=np.float32))
        else:
            err = np.full(sci.shape, np.nan, dtype=np.float32)
        if self.context:
            ctx = np.array(self._driz.out_ctx, dtype=np.int32)
        else:
            ctx = covered.astype(np.int32)[None]
        return ResampleResult(sci=sci, err=err.astype(np.float32), wht=wht,
                              variances=variances, context=ctx)


def drizzle_one(
    data: ArrayLike,
    pixmap: ArrayLike,
    out_shape: tuple[int, int],
    weight: ArrayLike | float = 1.0,
    pixfrac: float = 1.0,
    kernel: str = "square",
    fillval: float = np.nan,
    pixel_scale_ratio: float = 1.0,
) -> ResampleResult:
    """Resample a single exposure (outlier detection's and skymatch's use); no variances."""
    acc = DrizzleAccumulator(out_shape, kernel=kernel, pixfrac=pixfrac, context=False)
    acc.add(data, pixmap, weight, pixel_scale_ratio=pixel_scale_ratio)
    return acc.finalize(fillval)


def blot(image: ArrayLike, pixmap: ArrayLike, interp: str = "poly5") -> NDArray[np.float32]:
    """Interpolate an output-grid image back onto an input frame (drizzle's ``blot_image``).

    Parameters
    ----------
    image : array_like, shape (ny_out, nx_out)
        E.g. the median of the resampled exposures (NaN = no data).
    pixmap : array_like, shape (ny, nx, 2)
        The input frame's pixel map onto the image's grid.
    interp : str
        One of :data:`BLOT_INTERPOLATIONS` (jwst uses ``poly5``: bilinear lowers the peaks
        of undersampled stars enough for their cores to be flagged as outliers).

    Returns
    -------
    ndarray of float32, shape (ny, nx)
        NaN where the pixel centre falls outside the image or within the interpolation
        footprint of a NaN.
    """
    from drizzle.resample import blot_image
    from scipy import ndimage

    if interp not in BLOT_INTERPOLATIONS:
        raise StepInputError(f"blot interpolation must be one of "
                             f"{', '.join(BLOT_INTERPOLATIONS)}, got {interp!r}")
    img = np.asarray(image, dtype=np.float32)
    pm = np.asarray(pixmap, dtype=np.float64)
    if img.ndim != 2 or pm.ndim != 3 or pm.shape[-1] != 2:
        raise StepInputError(f"blot needs a 2-D image and a (ny, nx, 2) pixel map, got "
                             f"{img.shape} and {pm.shape}")
    nan = ~np.isfinite(img)
    # NaN are replaced by a typical value before interpolating (the pixels they reach are set
    # to NaN afterwards); a median of every 16th row and column is typical enough
    sample = img[::16, ::16]
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        sample = img[~nan]
    fill = float(np.median(sample)) if sample.size else 0.0
    values = blot_image(np.where(nan, np.float32(fill), img), pm, iscale=1.0,
                        fillval=np.nan, interp=interp)
    values = np.asarray(values, dtype=np.float32)
    reach = _BLOT_REACH[interp]
    if nan.any():
        grown = ndimage.binary_dilation(nan, iterations=reach) if reach else nan
        inside = np.isfinite(pm).all(axis=-1)
        ix = np.clip(np.rint(np.where(inside, pm[..., 0], 0)), 0, img.shape[1] - 1)
        iy = np.clip(np.rint(np.where(inside, pm[..., 1], 0)), 0, img.shape[0] - 1)
        values[grown[iy.astype(np.intp), ix.astype(np.intp)]] = np.nan
    # outside the image: drizzle leaves fillval; be explicit for partially covered maps
    ny, nx = img.shape
    outside = ~((pm[..., 0] > -0.5) & (pm[..., 0] < nx - 0.5)
                & (pm[..., 1] > -0.5) & (pm[..., 1] < ny - 0.5))
    values[outside] = np.nan
    return values
