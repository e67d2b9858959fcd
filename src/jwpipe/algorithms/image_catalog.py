"""Source detection and photometry on photutils (what jwst's source_catalog and tweakreg use).

1. :func:`estimate_background`: ``photutils.background.Background2D`` (sigma-clipped median
   in boxes of ``box_size``, median-filtered) gives the background and its RMS; images too
   small or too masked for a mesh fall back to one sigma-clipped value.
2. :func:`detect`: the background-subtracted image is convolved with a normalised 2-D
   Gaussian of FWHM ``kernel_fwhm``; ``photutils.segmentation.SourceFinder`` keeps regions of
   at least ``npixels`` connected pixels above ``snr_threshold`` x the RMS *of the convolved
   image* (a matched-filter S/N, measured with :func:`estimate_background` so that the
   correlated noise of a mosaic is accounted for); ``deblend_sources`` then splits them
   (multi-thresholding + watershed, ``nlevels``, ``contrast``) on the *unfiltered* image,
   where close pairs still have a saddle (jwst deblends the filtered image). Returns the
   segmentation image (the ``_segm.fits`` labels).
3. :func:`circular_photometry`: fluxes in circular apertures with exact pixel overlaps and a
   local background from the sigma-clipped median in a circular annulus
   (``photutils.aperture``), with errors from the ERR map and the background's standard error.
4. :func:`flux_to_abmag`, :func:`concentration_indices`: AB magnitudes and flux ratios.
5. :func:`find_sources`: tweakreg's per-exposure source lists from the same detection.

Coordinates are 0-based pixel indices (pixel centre ``x = column``, ``y = row``).
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from jwpipe.errors import StepInputError

__all__ = [
    "SOURCE_DTYPE",
    "Detection",
    "circular_photometry",
    "concentration_indices",
    "detect",
    "drizzle_noise_factor",
    "estimate_background",
    "filtered_noise",
    "find_sources",
    "flux_to_abmag",
    "measured_noise_factor",
    "source_positions",
]


def _mask(data: NDArray, mask: ArrayLike | None) -> NDArray[np.bool_]:
    bad = ~np.isfinite(data)
    if mask is not None:
        bad |= np.asarray(mask, dtype=bool)
    return bad


def estimate_background(data: ArrayLike, mask: ArrayLike | None = None, box_size: int = 1000,
                        filter_size: int = 3, *, level: bool = True, rms: bool = True
                        ) -> tuple[NDArray[np.float64] | None, NDArray[np.float64] | None]:
    """Background and background RMS images (``photutils.background.Background2D``).

    Parameters
    ----------
    data : array_like, shape (ny, nx)
        Image; NaN pixels are ignored.
    mask : array_like of bool, optional
        True for pixels to ignore.
    box_size : int
        Mesh box size in pixels (reduced to fit the image, at least 8 boxes' worth of pixels).
    filter_size : int
        Median filter applied to the mesh, in boxes.
    level, rms : bool
        Whether to return the background and its RMS (each costs an interpolation of the
        mesh to the full image; None is returned for the one not wanted).

    Returns
    -------
    background, rms : ndarray or None
        Same shape as ``data``.
    """
    from astropy.stats import SigmaClip, sigma_clipped_stats
    from photutils.background import (
        Background2D,
        BkgZoomInterpolator,
        MedianBackground,
        StdBackgroundRMS,
    )

    image = np.asarray(data, dtype=np.float64)
    if image.ndim != 2:
        raise StepInputError(f"background needs a 2-D image, got shape {image.shape}")
    bad = _mask(image, mask)
    if bad.all():
        raise StepInputError("background: the image has no valid pixels")
    box = int(max(8, min(box_size, min(image.shape) // 2 or 1)))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bkg = Background2D(np.where(bad, 0.0, image), box, mask=bad,
                               filter_size=filter_size, sigma_clip=SigmaClip(sigma=3.0),
                               bkg_estimator=MedianBackground(),
                               bkg_rms_estimator=StdBackgroundRMS(),
                               # bilinear between mesh points: a smooth background does not
                               # need the default cubic spline, which costs seconds a frame
                               interpolator=BkgZoomInterpolator(order=1))
            return (np.asarray(bkg.background, np.float64) if level else None,
                    np.asarray(bkg.background_rms, np.float64) if rms else None)
    except ValueError:
        # too few unmasked boxes for a mesh: one clipped level for the whole image
        _, median, std = sigma_clipped_stats(image[~bad], sigma=3.0)
        return (np.full(image.shape, float(median)) if level else None,
                np.full(image.shape, float(std)) if rms else None)


@dataclass
class Detection:
    """Result of :func:`detect`.

    Attributes
    ----------
    segm : photutils.segmentation.SegmentationImage or None
        Source labels (None: nothing detected).
    convolved : ndarray
        The background-subtracted image convolved with the detection kernel.
    """

    segm: Any
    convolved: NDArray[np.float64]

    @property
    def labels(self) -> NDArray[np.int32]:
        """The segmentation map (0 = no source)."""
        if self.segm is None:
            return np.zeros(self.convolved.shape, dtype=np.int32)
        return np.asarray(self.segm.data, dtype=np.int32)


def detect(
    data_bkgsub: ArrayLike,
    mask: ArrayLike | None = None,
    *,
    box_size: int = 1000,
    kernel_fwhm: float = 2.0,
    snr_threshold: float = 3.0,
    npixels: int = 25,
    connectivity: int = 8,
    deblend: bool = True,
    nlevels: int = 32,
    contrast: float = 0.001,
    deblend_npixels: int | None = 5,
    error: ArrayLike | None = None,
) -> Detection:
    """Detect (and deblend) sources by image segmentation.

    Parameters
    ----------
    data_bkgsub : array_like, shape (ny, nx)
        Background-subtracted image.
    mask : array_like of bool, optional
        True for pixels to ignore.
    box_size : int
        Mesh box size for the shape of the noise map when ``error`` is not given
        (:func:`estimate_background`).
    kernel_fwhm : float
        FWHM (pixels) of the Gaussian detection kernel.
    snr_threshold, npixels, connectivity, deblend, nlevels, contrast
        As jwst's ``source_catalog``.
    deblend_npixels : int or None
        Least number of pixels of a deblended component: ``min(npixels, deblend_npixels)``
        (None: ``npixels``, as jwst). In the unfiltered image a point source's core above
        the deblending levels covers only a few pixels, so jwst's 25 keeps faint stars
        merged with a bright neighbour (measured in docs/image.md).
    error : array_like, optional
        Per-pixel 1-sigma errors (ERR): give the shape of the noise map (a mosaic's edges,
        covered by fewer exposures, are noisier). The threshold is ``snr_threshold`` x the
        RMS of the convolved image, :func:`filtered_noise`.
    """
    from photutils.segmentation import SourceFinder, deblend_sources

    image = np.asarray(data_bkgsub, dtype=np.float64)
    if connectivity not in (4, 8):
        raise StepInputError(f"connectivity must be 4 or 8, got {connectivity}")
    if kernel_fwhm <= 0:
        raise StepInputError(f"kernel_fwhm must be positive, got {kernel_fwhm}")
    bad = _mask(image, mask)
    convolved = smooth(image, bad, kernel_fwhm)
    # the threshold is on the matched-filter S/N: the RMS is measured on the convolved
    # image itself, which also accounts for the pixel-to-pixel correlation of drizzled noise
    if error is None:
        _, shape = estimate_background(image, bad, box_size=box_size, level=False)
    else:
        shape = np.asarray(error, dtype=np.float64)
    conv_rms = filtered_noise(convolved, bad, kernel_fwhm, shape, snr_threshold)
    threshold = snr_threshold * conv_rms
    finder = SourceFinder(int(npixels), connectivity=int(connectivity), deblend=False,
                          progress_bar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no sources found" is a result, not a problem
        segm = finder(convolved, threshold, mask=bad)
        if segm is not None and deblend:
            # deblend on the unfiltered image: the detection kernel widens close pairs until
            # their saddle disappears (measured in tests/algorithms/test_image_catalog.py)
            least = int(npixels) if deblend_npixels is None else min(int(npixels),
                                                                      int(deblend_npixels))
            # photutils replaces exponential levels by linear ones for a segment holding a
            # pixel <= 0 (any faint background-subtracted one); linear levels are spaced by
            # 1/32 of the brightest peak, so a neighbour fainter than that is never split
            # off. Pixels below the smoothed noise RMS carry no structure: raise them to it.
            floor = np.maximum(conv_rms, np.finfo(np.float64).tiny)
            segm = deblend_sources(np.where(bad, floor, np.maximum(image, floor)), segm, least,
                                   n_levels=int(nlevels), contrast=float(contrast),
                                   connectivity=int(connectivity), progress_bar=False)
    return Detection(segm=segm, convolved=convolved)


def filtered_noise(convolved: NDArray, bad: NDArray, fwhm: float, noise: NDArray,
                   clip: float = 3.0) -> NDArray[np.float64]:
    """RMS map of an image convolved by :func:`smooth`, measured on its blank sky.

    The per-pixel noise ``noise`` (ERR, or a background-RMS map: only its shape matters) is
    propagated through the kernel as if uncorrelated, ``sqrt(k^2 * (m noise^2)) / (k * m)``;
    the result is scaled by the robust (MAD) standard deviation of ``convolved`` over that
    map on blank sky: pixels off every place where the ratio exceeds ``clip`` times its
    first MAD estimate, grown by twice the FWHM. The scale absorbs the pixel-to-pixel
    correlation of drizzled noise; the MAD on blank sky is not biased by the wings of
    sources, which a sigma-clipped standard deviation of the convolved image is (the
    convolved wings are many pixels a little above the sky): measured on the
    4-exposure mosaics of ``benchmarks/bench_catalog_completeness.py``, ``Background2D``'s
    RMS of the convolved image was 1.7-2.3x the blank-sky value (docs/image.md).
    """
    from scipy import ndimage

    good = ~np.asarray(bad, dtype=bool)
    var = np.where(good & np.isfinite(noise), np.asarray(noise, np.float64) ** 2, 0.0)
    k = _gaussian_kernel_1d(fwhm)
    k2 = k**2

    def conv(a: NDArray, w: NDArray) -> NDArray:
        return ndimage.correlate1d(ndimage.correlate1d(a, w, axis=0, mode="nearest"), w,
                                   axis=1, mode="nearest")

    cover = conv(good.astype(np.float64), k)
    with np.errstate(invalid="ignore", divide="ignore"):
        pred = np.sqrt(conv(var, k2)) / cover
    usable = good & np.isfinite(pred) & (pred > 0)
    if not usable.any():
        return np.full(convolved.shape, np.finfo(np.float64).tiny)
    fill = float(np.median(pred[usable]))
    pred = np.where(usable, pred, fill)
    z = convolved / pred

    def mad(v: NDArray) -> float:
        return float(1.482602218505602 * np.median(np.abs(v - np.median(v))))

    scale = mad(z[usable])
    src = ndimage.binary_dilation(usable & (z > clip * scale),
                                  iterations=max(1, int(np.ceil(2.0 * fwhm))))
    blank = usable & ~src
    if blank.sum() >= 100:
        scale = mad(z[blank])
    return pred * max(scale, np.finfo(np.float64).tiny)


def _gaussian_kernel_1d(fwhm: float) -> NDArray[np.float64]:
    sigma = fwhm / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    half = int(np.ceil(2.0 * fwhm))
    x = np.arange(-half, half + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def smooth(image: ArrayLike, bad: ArrayLike, fwhm: float) -> NDArray[np.float64]:
    """Normalised convolution with a Gaussian of FWHM ``fwhm`` (pixels), masked pixels
    excluded: ``(k * (d m)) / (k * m)`` with ``m`` the good-pixel map (0 where no good pixel is
    within reach). Separable, so it costs two 1-D passes."""
    from scipy import ndimage

    k = _gaussian_kernel_1d(fwhm)
    good = ~np.asarray(bad, dtype=bool)
    data = np.where(good, np.asarray(image, dtype=np.float64), 0.0)

    def conv(a: NDArray) -> NDArray:
        return ndimage.correlate1d(ndimage.correlate1d(a, k, axis=0, mode="nearest"), k,
                                   axis=1, mode="nearest")

    num, den = conv(data), conv(good.astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 1e-3, num / den, 0.0)


def source_positions(catalog: Any) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Windowed centroids of a ``SourceCatalog`` (isophotal ones where the window failed)."""
    x = np.asarray(catalog.x_centroid_win, dtype=np.float64)
    y = np.asarray(catalog.y_centroid_win, dtype=np.float64)
    bad = ~np.isfinite(x) | ~np.isfinite(y)
    x[bad] = np.asarray(catalog.x_centroid, dtype=np.float64)[bad]
    y[bad] = np.asarray(catalog.y_centroid, dtype=np.float64)[bad]
    return x, y


def circular_photometry(
    data: ArrayLike,
    error: ArrayLike,
    mask: ArrayLike | None,
    x: ArrayLike,
    y: ArrayLike,
    radii: ArrayLike,
    annulus: tuple[float, float],
) -> dict[str, NDArray[np.float64]]:
    """Aperture fluxes with a local annulus background.

    Parameters
    ----------
    data, error : array_like, shape (ny, nx)
        Image (background not subtracted locally) and its 1-sigma errors.
    mask : array_like of bool, optional
        Pixels to ignore (they count as missing in both the apertures and the annulus).
    x, y : array_like
        Aperture centres (0-based pixels).
    radii : array_like
        Aperture radii (pixels).
    annulus : (float, float)
        Inner and outer radius of the background annulus.

    Returns
    -------
    dict
        ``bkg`` (per-pixel sigma-clipped median in the annulus), ``bkg_err`` (its standard
        error), ``flux`` and ``flux_err`` arrays of shape (n_radii, n_sources), ``nbad``
        (masked pixels inside the largest aperture).
    """
    from astropy.stats import SigmaClip
    from photutils.aperture import (
        ApertureStats,
        CircularAnnulus,
        CircularAperture,
        aperture_photometry,
    )

    image = np.asarray(data, dtype=np.float64)
    err = np.asarray(error, dtype=np.float64)
    bad = _mask(image, mask) | ~np.isfinite(err)
    xy = np.column_stack([np.asarray(x, float), np.asarray(y, float)])
    radii = np.atleast_1d(np.asarray(radii, dtype=np.float64))
    n = xy.shape[0]
    out = {"bkg": np.full(n, np.nan), "bkg_err": np.full(n, np.nan),
           "flux": np.full((radii.size, n), np.nan), "flux_err": np.full((radii.size, n), np.nan),
           "nbad": np.zeros(n, dtype=np.int32)}
    if n == 0:
        return out
    ann = CircularAnnulus(xy, float(annulus[0]), float(annulus[1]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = ApertureStats(np.where(bad, 0.0, image), ann, mask=bad,
                              sigma_clip=SigmaClip(sigma=3.0, maxiters=10))
    bkg = np.asarray(stats.median, dtype=np.float64)
    nsky = np.asarray(stats.sum_aper_area.value, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        bkg_err = np.asarray(stats.std, dtype=np.float64) * np.sqrt(np.pi / 2.0 / nsky)
    out["bkg"], out["bkg_err"] = bkg, bkg_err
    apertures = [CircularAperture(xy, float(r)) for r in radii]
    clean = np.where(bad, 0.0, image)
    table = aperture_photometry(clean, apertures, error=np.where(bad, 0.0, err), mask=bad,
                                method="exact")
    ones = aperture_photometry((~bad).astype(np.float64), apertures, method="exact")
    full = aperture_photometry(np.ones(image.shape), apertures, method="exact")
    for k in range(radii.size):
        area = np.asarray(ones[f"aperture_sum_{k}"], dtype=np.float64)
        raw = np.asarray(table[f"aperture_sum_{k}"], dtype=np.float64)
        raw_err = np.asarray(table[f"aperture_sum_err_{k}"], dtype=np.float64)
        out["flux"][k] = raw - bkg * area
        out["flux_err"][k] = np.sqrt(raw_err**2 + (area * bkg_err) ** 2)
    lost = np.asarray(full[f"aperture_sum_{radii.size - 1}"]) - np.asarray(
        ones[f"aperture_sum_{radii.size - 1}"])
    out["nbad"] = np.ceil(np.round(lost, 6)).astype(np.int32)
    return out


def flux_to_abmag(flux_jy: ArrayLike, flux_err_jy: ArrayLike
                  ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """AB magnitudes and errors of fluxes in Jy (NaN for non-positive fluxes)."""
    f = np.asarray(flux_jy, dtype=np.float64)
    e = np.asarray(flux_err_jy, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mag = np.where(f > 0, -2.5 * np.log10(f / 3631.0), np.nan)
        mag_err = np.where(f > 0, 2.5 / np.log(10.0) * e / f, np.nan)
    return mag, mag_err


def concentration_indices(fluxes: dict[int, NDArray]) -> dict[str, NDArray[np.float64]]:
    """jwst's ``CI_<b>_<a>`` = flux(EE b) / flux(EE a): consecutive EE levels, then the
    largest over the smallest (``CI_50_30``, ``CI_70_50``, ``CI_70_30`` for 30/50/70)."""
    levels = sorted(fluxes)
    pairs = list(itertools.pairwise(levels))
    if len(levels) > 2:
        pairs.append((levels[0], levels[-1]))
    out = {}
    for a, b in pairs:
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"CI_{b}_{a}"] = np.asarray(fluxes[b], float) / np.asarray(fluxes[a], float)
    return out


# ----------------------------------------------------------------------------- noise correlation


def drizzle_noise_factor(pixfrac: float, scale_ratio: float) -> float:
    """Ratio of the true noise of a large aperture sum to that from per-pixel errors.

    Casertano et al. (2000): ``R = 1 / (1 - p / (3 s))`` for ``s >= p`` and
    ``R = (p / s) / (1 - s / (3 p))`` for ``s < p``, with ``s`` the output/input pixel scale
    ratio and ``p`` the drizzle pixfrac.
    """
    p, s = float(pixfrac), float(scale_ratio)
    if p <= 0 or s <= 0:
        return 1.0
    if s >= p:
        return 1.0 / (1.0 - p / (3.0 * s))
    return (p / s) / (1.0 - s / (3.0 * p))


def measured_noise_factor(residual: NDArray, err: NDArray, bad: NDArray, box: int
                          ) -> tuple[float, int]:
    """Empirical noise-correlation factor from blank-sky boxes of ``box`` x ``box`` pixels.

    ``residual`` is the background-subtracted image with sources masked in ``bad``. For every
    box without masked pixels the sum of its pixels is compared with the error predicted from
    ERR alone (``sqrt(sum err^2)``); the factor is the robust (MAD) standard deviation of the
    normalised sums. Returns (factor, number of boxes).
    """
    ny, nx = residual.shape
    by, bx = ny // box, nx // box
    if by == 0 or bx == 0:
        return 1.0, 0
    cut = (slice(0, by * box), slice(0, bx * box))

    def blocks(a: NDArray) -> NDArray:
        return a[cut].reshape(by, box, bx, box).swapaxes(1, 2).reshape(by * bx, box * box)

    clean = ~blocks(bad).any(axis=1)
    sums = blocks(np.where(bad, 0.0, residual)).sum(axis=1)[clean]
    pred = np.sqrt((blocks(np.where(bad, 0.0, err)) ** 2).sum(axis=1)[clean])
    ok = pred > 0
    if ok.sum() < 3:
        return 1.0, int(ok.sum())
    z = sums[ok] / pred[ok]
    mad = 1.482602218505602 * np.median(np.abs(z - np.median(z)))
    return float(mad), int(ok.sum())


# ----------------------------------------------------------------------------- source lists

#: dtype of :func:`find_sources` rows.
SOURCE_DTYPE = np.dtype([("label", np.int32), ("x", np.float64), ("y", np.float64),
                         ("flux", np.float64), ("peak", np.float64), ("snr", np.float64),
                         ("truncated", np.bool_)])


def find_sources(data: ArrayLike, mask: ArrayLike | None = None,
                 error: ArrayLike | None = None, *, kernel_fwhm: float = 2.5,
                 snr_threshold: float = 5.0, npixels: int = 5, box_size: int = 400,
                 deblend: bool = True, brightest: int | None = None,
                 drop_truncated: bool = False, peakmax: float | None = None) -> NDArray:
    """Source list of one image (tweakreg's): the same detection as the catalogue.

    Background (:func:`estimate_background`), detection and deblending (:func:`detect`),
    then per segment: windowed centroid (:func:`source_positions`), isophotal flux, peak
    value, S/N (flux over its error from ``error``, or over the background RMS times the
    square root of the area) and whether the segment touches a masked pixel or the edge.

    ``drop_truncated`` drops segments touching a masked pixel or the edge and ``peakmax``
    those whose peak exceeds it; then ``brightest`` keeps only that many sources (largest
    isophotal flux). Centroids are measured for the sources kept only.

    Returns
    -------
    ndarray of :data:`SOURCE_DTYPE`
        Brightest (largest ``flux``) first.
    """
    from photutils.segmentation import SourceCatalog
    from scipy import ndimage

    image = np.asarray(data, dtype=np.float64)
    if image.ndim != 2:
        raise StepInputError(f"source detection needs a 2-D image, got shape {image.shape}")
    bad = _mask(image, mask)
    if error is not None:
        err = np.asarray(error, dtype=np.float64)
        bad = bad | ~np.isfinite(err)
    if bad.all():
        return np.zeros(0, dtype=SOURCE_DTYPE)
    bkg, rms = estimate_background(image, bad, box_size=box_size, rms=error is None)
    sub = np.where(bad, 0.0, image - bkg)
    found = detect(sub, bad, box_size=box_size, kernel_fwhm=kernel_fwhm,
                   snr_threshold=snr_threshold, npixels=npixels, deblend=deblend,
                   error=err if error is not None else rms)  # rms: the noise map's shape
    if found.segm is None:
        return np.zeros(0, dtype=SOURCE_DTYPE)
    noise = np.where(bad, 0.0, err) if error is not None else np.where(bad, 0.0, rms)
    cat = SourceCatalog(sub, found.segm, error=noise, mask=bad)
    edge = ndimage.binary_dilation(~np.pad(~bad, 1, constant_values=False),
                                   structure=np.ones((3, 3), bool))[1:-1, 1:-1]
    labels = found.labels
    truncated = np.isin(np.asarray(cat.label), np.unique(labels[edge & (labels > 0)]))
    keep = ~truncated if drop_truncated else np.ones(truncated.size, dtype=bool)
    if peakmax is not None:
        keep &= np.asarray(cat.max_value, dtype=np.float64) <= peakmax
    flux = np.asarray(cat.segment_flux, dtype=np.float64)
    order = np.flatnonzero(keep)[np.argsort(-flux[keep], kind="stable")]
    if brightest is not None:
        order = order[:brightest]
    if order.size == 0:
        return np.zeros(0, dtype=SOURCE_DTYPE)
    cat = cat[order]
    out = np.zeros(len(order), dtype=SOURCE_DTYPE)
    out["label"] = cat.label
    out["x"], out["y"] = source_positions(cat)
    out["flux"] = np.asarray(cat.segment_flux, dtype=np.float64)
    out["peak"] = np.asarray(cat.max_value, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["snr"] = out["flux"] / np.asarray(cat.segment_flux_err, dtype=np.float64)
    out["truncated"] = truncated[order]
    return out[np.argsort(-out["flux"], kind="stable")]
