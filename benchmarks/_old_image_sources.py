"""jwpipe's former source detector (``src/jwpipe/algorithms/image_sources.py`` at 4a82395^,
removed when the catalogue moved to photutils), kept verbatim as the anchor of
``bench_catalog_completeness.py``.

Source detection on a 2-D image: background, matched filter, segmentation, centroids.

Algorithm (:func:`detect_sources`):

1. Background level and noise: sigma-clipped median and standard deviation of the unmasked
   pixels (a scalar), or a mesh estimate (:func:`background_mesh`), or values given by the
   caller. A per-pixel ``error`` map may replace the scalar noise.
2. Matched filter: the background-subtracted image is convolved with a normalised Gaussian of
   the given FWHM. Bad pixels contribute nothing and the filter is renormalised by the covered
   kernel weight, so masks and image edges do not create dips. The exact noise of the filtered
   image is propagated (``sqrt(sum k^2 var) / sum k``), giving a per-pixel detection S/N.
3. Segmentation: connected regions (8-connected by default) with S/N above ``snr_threshold``
   and at least ``npixels`` pixels. Regions are not deblended.
4. Measurements per region: isophotal flux (sum of background-subtracted pixels), peak,
   pixel count, flux-weighted isophotal centroid, and a Gaussian-windowed centroid (the
   SExtractor ``XWIN`` iteration, vectorised over all sources), which is the reported ``x, y``.

Coordinates are 0-based pixel indices: pixel ``(row j, column i)`` has its centre at
``x = i, y = j``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage

from jwpipe.algorithms.image_stats import clipped_mean_along_axis, sigma_clipped_stats
from jwpipe.errors import StepInputError

FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))

#: dtype of the source table returned by :func:`detect_sources`.
SOURCE_DTYPE = np.dtype(
    [
        ("id", np.int32),
        ("x", np.float64),
        ("y", np.float64),
        ("x_iso", np.float64),
        ("y_iso", np.float64),
        ("flux", np.float64),
        ("peak", np.float64),
        ("npix", np.int32),
        ("snr", np.float64),
        ("flags", np.int16),
    ]
)

#: ``flags`` bit: the windowed centroid did not converge; ``x, y`` are the isophotal centroid.
FLAG_WINDOW_FAILED = 1
#: ``flags`` bit: the region touches a bad pixel or the image edge.
FLAG_TRUNCATED = 2


def _check_image(data: ArrayLike, mask: ArrayLike | None) -> tuple[NDArray, NDArray]:
    image = np.asarray(data)
    if image.ndim != 2:
        raise StepInputError(f"source detection needs a 2-D image, got shape {image.shape}")
    good = np.isfinite(image)
    if mask is not None:
        bad = np.asarray(mask, dtype=bool)
        if bad.shape != image.shape:
            raise StepInputError(f"mask shape {bad.shape} does not match image {image.shape}")
        good &= ~bad
    if not good.any():
        raise StepInputError("source detection: every pixel is masked or not finite")
    return image, good


def background_mesh(
    data: ArrayLike,
    mask: ArrayLike | None = None,
    box_size: int = 64,
    sigma: float = 3.0,
    filter_size: int = 1,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Smooth background and noise maps from sigma-clipped statistics in boxes.

    The image is cut into ``box_size`` square boxes (the last ones may be partial); in each
    box the sigma-clipped mean and std of good pixels are computed; boxes with fewer than
    half their pixels left are filled from the median of the other boxes; the coarse maps
    are optionally median-filtered (``filter_size`` boxes, to suppress boxes spoiled by large
    sources) and interpolated bilinearly between box centres to full resolution.

    Parameters
    ----------
    data : array_like, shape (ny, nx)
    mask : array_like of bool, optional
        True for bad pixels.
    box_size : int
        Box size in pixels.
    sigma : float
        Clipping limit.
    filter_size : int
        Size of the median filter applied to the box grid (1: none). Filtering flattens a
        gradient in the outermost boxes, so use it only when large sources spoil boxes.

    Returns
    -------
    background, rms : ndarray, shape (ny, nx), float64
    """
    image, good = _check_image(data, mask)
    ny, nx = image.shape
    by, bx = -(-ny // box_size), -(-nx // box_size)
    padded = np.full((by * box_size, bx * box_size), np.nan)
    padded[:ny, :nx] = np.where(good, image, np.nan)
    boxes = padded.reshape(by, box_size, bx, box_size).swapaxes(1, 2).reshape(by, bx, -1)
    mean, std, count = clipped_mean_along_axis(boxes, sigma=sigma)
    full = (
        np.minimum(box_size, ny - np.arange(by) * box_size)[:, None]
        * np.minimum(box_size, nx - np.arange(bx) * box_size)[None, :]
    )
    poor = count < 0.5 * full
    if poor.all():
        stats = sigma_clipped_stats(image, ~good, sigma, sigma)
        return np.full(image.shape, stats.median), np.full(image.shape, stats.std)
    mean[poor] = np.median(mean[~poor])
    std[poor] = np.median(std[~poor])
    if filter_size > 1:
        mean = ndimage.median_filter(mean, size=filter_size, mode="nearest")
        std = ndimage.median_filter(std, size=filter_size, mode="nearest")
    # box centres in pixel coordinates -> fractional box index of every pixel
    yy = (np.arange(ny) + 0.5) / box_size - 0.5
    xx = (np.arange(nx) + 0.5) / box_size - 0.5
    yi = np.clip(yy, 0, by - 1)[:, None] * np.ones((1, nx))
    xi = np.clip(xx, 0, bx - 1)[None, :] * np.ones((ny, 1))
    bkg = ndimage.map_coordinates(mean, [yi, xi], order=1, mode="nearest")
    rms = ndimage.map_coordinates(std, [yi, xi], order=1, mode="nearest")
    return bkg, rms


def matched_filter_snr(
    image: NDArray,
    good: NDArray[np.bool_],
    fwhm: float,
    noise: float | NDArray,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Gaussian matched filter of a background-subtracted image and its per-pixel S/N.

    Parameters
    ----------
    image : ndarray
        Background-subtracted image (values at bad pixels are ignored).
    good : ndarray of bool
        True for pixels to use.
    fwhm : float
        FWHM of the Gaussian kernel in pixels.
    noise : float or ndarray
        Per-pixel noise standard deviation (scalar or image).

    Returns
    -------
    filtered, snr : ndarray
        Filtered image (renormalised over good pixels) and its signal-to-noise ratio.
    """
    sig = fwhm * FWHM_TO_SIGMA
    g = good.astype(np.float64)
    d = np.where(good, image, 0.0).astype(np.float64)
    var = np.broadcast_to(np.asarray(noise, dtype=np.float64) ** 2, image.shape)
    num = ndimage.gaussian_filter(d, sig, mode="constant", cval=0.0)
    cover = ndimage.gaussian_filter(g, sig, mode="constant", cval=0.0)
    # k^2 of a unit-sum Gaussian of width s is a unit-sum Gaussian of width s/sqrt(2)
    # scaled by 1/(4 pi s^2)
    var_num = ndimage.gaussian_filter(np.where(good, var, 0.0), sig / np.sqrt(2.0), mode="constant")
    var_num /= 4.0 * np.pi * sig**2
    with np.errstate(invalid="ignore", divide="ignore"):
        filtered = np.where(cover > 0.05, num / cover, 0.0)
        snr = np.where(cover > 0.05, num / np.sqrt(var_num), 0.0)
    snr[~np.isfinite(snr)] = 0.0
    return filtered, snr


def windowed_centroids(
    image: NDArray,
    good: NDArray[np.bool_],
    x0: NDArray[np.float64],
    y0: NDArray[np.float64],
    sigma_window: float,
    max_iter: int = 20,
    tol: float = 1e-4,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """Gaussian-windowed centroids (SExtractor ``XWIN``/``YWIN``), all sources at once.

    Iterates ``x <- x + 2 * sum(w I (x_i - x)) / sum(w I)`` with
    ``w = exp(-r^2 / (2 sigma_window^2))`` over a box of half-size ``ceil(4 sigma_window)``.

    Parameters
    ----------
    image : ndarray
        Background-subtracted image.
    good : ndarray of bool
        True for usable pixels (others get zero weight).
    x0, y0 : ndarray
        Starting positions.
    sigma_window : float
        Window width in pixels (the PSF sigma is a good choice).
    max_iter : int
        Maximum iterations.
    tol : float
        Convergence tolerance on the position change, pixels.

    Returns
    -------
    x, y : ndarray
        Centroids (the starting position where the iteration failed).
    ok : ndarray of bool
        False where the iteration diverged or the weighted flux was not positive.
    """
    half = max(2, int(np.ceil(4.0 * sigma_window)))
    pad = half + 2
    img = np.pad(np.where(good, image, 0.0), pad)
    ok_pix = np.pad(good, pad)
    offs = np.arange(-half, half + 1)
    x = np.asarray(x0, dtype=np.float64).copy()
    y = np.asarray(y0, dtype=np.float64).copy()
    ok = np.ones(x.shape, dtype=bool)
    active = ok.copy()
    inv2s2 = 0.5 / sigma_window**2
    for _ in range(max_iter):
        if not active.any():
            break
        idx = np.flatnonzero(active)
        cx = np.rint(x[idx]).astype(np.intp)
        cy = np.rint(y[idx]).astype(np.intp)
        rows = cy[:, None, None] + offs[None, :, None]
        cols = cx[:, None, None] + offs[None, None, :]
        cut = img[rows + pad, cols + pad]
        use = ok_pix[rows + pad, cols + pad]
        dx = cols - x[idx, None, None]
        dy = rows - y[idx, None, None]
        w = np.exp(-(dx**2 + dy**2) * inv2s2) * use
        wi = w * cut
        norm = wi.sum(axis=(1, 2))
        with np.errstate(invalid="ignore", divide="ignore"):
            step_x = 2.0 * (wi * dx).sum(axis=(1, 2)) / norm
            step_y = 2.0 * (wi * dy).sum(axis=(1, 2)) / norm
        bad = ~(norm > 0) | ~np.isfinite(step_x) | ~np.isfinite(step_y)
        bad |= (np.abs(step_x) > half / 2) | (np.abs(step_y) > half / 2)
        step_x[bad] = 0.0
        step_y[bad] = 0.0
        x[idx] += step_x
        y[idx] += step_y
        ok[idx[bad]] = False
        done = bad | ((np.abs(step_x) < tol) & (np.abs(step_y) < tol))
        active[idx[done]] = False
    moved = np.hypot(x - x0, y - y0) > 2.0 * sigma_window + 1.0
    ok &= ~moved
    x[~ok] = np.asarray(x0)[~ok]
    y[~ok] = np.asarray(y0)[~ok]
    return x, y, ok


def segment_sources(
    snr: NDArray[np.float64],
    good: NDArray[np.bool_],
    snr_threshold: float,
    npixels: int,
    fwhm: float,
    structure: NDArray[np.bool_],
) -> NDArray[np.int32]:
    """Segmentation map with one label per source, touching sources split (deblended).

    Regions above threshold with at least ``npixels`` pixels are found first. Each local
    maximum of the S/N map (within a window of about one FWHM) inside a region seeds one
    source; a region with several seeds is split among them by a watershed on the S/N map.

    Returns
    -------
    ndarray of int32
        0 for background, 1..n for sources.
    """
    regions, nreg = ndimage.label((snr > snr_threshold) & good, structure=structure)
    if nreg == 0:
        return regions.astype(np.int32)
    sizes = np.bincount(regions.ravel(), minlength=nreg + 1)
    small = sizes < npixels
    small[0] = True
    regions[small[regions]] = 0
    if not regions.any():
        return regions.astype(np.int32)
    win = 2 * int(np.ceil(0.5 * fwhm)) + 1
    peaks = (snr == ndimage.maximum_filter(snr, size=win, mode="constant")) & (regions > 0)
    # a region without a strict peak (flat top) still gets its maximum as seed
    has_peak = np.zeros(regions.max() + 1, dtype=bool)
    has_peak[regions[peaks]] = True
    missing = np.flatnonzero(~has_peak[1:]) + 1
    missing = missing[np.isin(missing, regions)]
    if missing.size:
        pos = np.array(ndimage.maximum_position(snr, regions, missing), dtype=np.intp)
        peaks[pos[:, 0], pos[:, 1]] = True
    markers, _ = ndimage.label(peaks, structure=np.ones((3, 3), bool))
    is_seed = markers > 0
    pairs = np.unique(np.stack([regions[is_seed], markers[is_seed]]), axis=1)
    per_region = np.bincount(pairs[0], minlength=regions.max() + 1)
    multi = per_region > 1
    seg = np.zeros(regions.shape, dtype=np.int32)
    single = (regions > 0) & ~multi[regions]
    if single.any():
        # one seed: the region is the source; renumber later
        seg[single] = regions[single]
    if multi.any():
        # split among seeds: every pixel goes to its nearest seed pixel of the same region
        in_multi = (regions > 0) & multi[regions]
        seed_px = is_seed & in_multi
        _, (iy, ix) = ndimage.distance_transform_edt(~seed_px, return_indices=True)
        owner = markers[iy, ix]
        same = regions[iy, ix] == regions
        # a pixel whose nearest seed lies in another region keeps its region's first seed
        first_seed = np.zeros(regions.max() + 1, dtype=np.int64)
        first_seed[pairs[0][::-1]] = pairs[1][::-1]
        owner = np.where(same, owner, first_seed[regions])
        seg[in_multi] = owner[in_multi] + regions.max()
    # consecutive labels
    used = np.unique(seg)
    used = used[used > 0]
    lut = np.zeros(seg.max() + 1, dtype=np.int32)
    lut[used] = np.arange(1, used.size + 1, dtype=np.int32)
    return lut[seg]


def detect_sources(
    data: ArrayLike,
    mask: ArrayLike | None = None,
    fwhm: float = 2.5,
    snr_threshold: float = 5.0,
    npixels: int = 5,
    connectivity: int = 8,
    background: float | ArrayLike | None = None,
    noise: float | ArrayLike | None = None,
    error: ArrayLike | None = None,
    sigma_window: float | None = None,
) -> NDArray:
    """Detect sources and measure positions and fluxes.

    Parameters
    ----------
    data : array_like, shape (ny, nx)
        Image (any float dtype; NaN pixels are ignored).
    mask : array_like of bool, optional
        True for pixels to ignore (bad DQ).
    fwhm : float
        FWHM of the Gaussian matched filter, pixels (about the PSF FWHM).
    snr_threshold : float
        Detection threshold on the matched-filter S/N.
    npixels : int
        Minimum number of connected pixels above threshold.
    connectivity : {4, 8}
        Pixel connectivity of a region.
    background : float or array_like, optional
        Background to subtract; default: sigma-clipped median of good pixels.
    noise : float or array_like, optional
        Per-pixel noise sigma; default: sigma-clipped std of good pixels. Ignored if
        ``error`` is given.
    error : array_like, optional
        Per-pixel 1-sigma error map (the ERR extension).
    sigma_window : float, optional
        Width of the centroid window; default ``fwhm / 2.3548``.

    Returns
    -------
    ndarray of :data:`SOURCE_DTYPE`
        One row per source, brightest (largest ``flux``) first, ``id`` from 1.
    """
    image, good = _check_image(data, mask)
    if connectivity not in (4, 8):
        raise StepInputError(f"connectivity must be 4 or 8, got {connectivity}")
    if fwhm <= 0:
        raise StepInputError(f"fwhm must be positive, got {fwhm}")
    if background is None or (noise is None and error is None):
        stats = sigma_clipped_stats(image, ~good)
        bkg = stats.median if background is None else background
        rms = stats.std if noise is None else noise
    else:
        bkg, rms = background, noise
    if error is not None:
        err = np.asarray(error, dtype=np.float64)
        if err.shape != image.shape:
            raise StepInputError(f"error shape {err.shape} does not match image {image.shape}")
        good = good & np.isfinite(err) & (err > 0)
        rms = err
    sub = image.astype(np.float64) - np.asarray(bkg, dtype=np.float64)
    _, snr = matched_filter_snr(sub, good, fwhm, rms)

    structure = ndimage.generate_binary_structure(2, 2 if connectivity == 8 else 1)
    labels = segment_sources(snr, good, snr_threshold, npixels, fwhm, structure)
    nlab = int(labels.max())
    empty = np.zeros(0, dtype=SOURCE_DTYPE)
    if nlab == 0:
        return empty
    keep = np.arange(1, nlab + 1)
    sizes = np.bincount(labels.ravel(), minlength=nlab + 1)
    sub_good = np.where(good, sub, 0.0)
    flux = ndimage.sum_labels(sub_good, labels, keep)
    peak = ndimage.maximum(sub_good, labels, keep)
    snr_peak = ndimage.maximum(snr, labels, keep)
    positive = np.clip(sub_good, 0.0, None)
    wsum = ndimage.sum_labels(positive, labels, keep)
    yy, xx = np.indices(image.shape, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        x_iso = ndimage.sum_labels(positive * xx, labels, keep) / wsum
        y_iso = ndimage.sum_labels(positive * yy, labels, keep) / wsum
    bad_iso = ~np.isfinite(x_iso) | ~np.isfinite(y_iso)
    if bad_iso.any():
        peak_pos = np.array(ndimage.maximum_position(sub_good, labels, keep[bad_iso]), float)
        y_iso[bad_iso], x_iso[bad_iso] = peak_pos[:, 0], peak_pos[:, 1]

    # regions touching bad pixels or the edge: dilate the bad-pixel map and look up labels
    edge_bad = ~np.pad(good, 1, constant_values=False)
    touch = ndimage.binary_dilation(edge_bad, structure=structure)[1:-1, 1:-1]
    truncated = np.zeros(nlab + 1, dtype=bool)
    truncated[np.unique(labels[touch & (labels > 0)])] = True

    sw = fwhm * FWHM_TO_SIGMA if sigma_window is None else sigma_window
    x, y, ok = windowed_centroids(sub, good, x_iso, y_iso, sw)

    out = np.zeros(keep.size, dtype=SOURCE_DTYPE)
    out["x"], out["y"] = x, y
    out["x_iso"], out["y_iso"] = x_iso, y_iso
    out["flux"], out["peak"] = flux, peak
    out["npix"] = sizes[keep]
    out["snr"] = snr_peak
    out["flags"] = np.where(ok, 0, FLAG_WINDOW_FAILED) | np.where(
        truncated[keep], FLAG_TRUNCATED, 0
    )
    out = out[np.argsort(-out["flux"], kind="stable")]
    out["id"] = np.arange(1, out.size + 1)
    return out
