"""Circular-aperture photometry with exact pixel overlap areas and a local background annulus.

Exact area of a circle inside a pixel
-------------------------------------
For a circle of radius ``r`` centred at the origin, ``F(x, y)`` is the area of the circle in
the quadrant ``{u <= x, v <= y}``. It has a closed form (:func:`_quadrant_area`) built from
``S(u) = (u sqrt(r^2 - u^2) + r^2 asin(u / r)) / 2``, the primitive of the half-chord. The
area in a pixel ``[x0, x1] x [y0, y1]`` is then ``F(x1,y1) - F(x0,y1) - F(x1,y0) + F(x0,y0)``,
exact to rounding, evaluated for all pixels of all apertures at once.

Errors
------
``var(flux) = sum(f_i^2 err_i^2) + A^2 var(bkg)`` with ``f_i`` the pixel's covered fraction,
``A = sum f_i`` the aperture area and ``var(bkg) = <err^2> / n`` where ``<err^2>`` is the
mean variance of the annulus pixels and ``n`` the number kept by sigma clipping (background =
their mean). Pixels flagged bad (mask, NaN
data or error) inside the aperture are left out; ``area`` then reports the good area and
``nbad`` how many pixels were lost, so the caller can reject or correct.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from jwpipe.algorithms.image_stats import clipped_mean_along_axis
from jwpipe.errors import StepInputError

#: dtype of the table returned by :func:`aperture_photometry`.
PHOT_DTYPE = np.dtype(
    [
        ("x", np.float64),
        ("y", np.float64),
        ("aperture_sum", np.float64),
        ("aperture_sum_err", np.float64),
        ("area", np.float64),
        ("nbad", np.int32),
        ("bkg", np.float64),
        ("bkg_err", np.float64),
        ("bkg_npix", np.int32),
        ("flux", np.float64),
        ("flux_err", np.float64),
    ]
)


def _half_chord_primitive(u: NDArray, r: float) -> NDArray:
    u = np.clip(u, -r, r)
    return 0.5 * (u * np.sqrt(np.maximum(r * r - u * u, 0.0)) + r * r * np.arcsin(u / r))


def _quadrant_area(x: NDArray, y: NDArray, r: float) -> NDArray:
    """Area of the disc ``u^2 + v^2 <= r^2`` with ``u <= x`` and ``v <= y`` (vectorised)."""
    xc = np.clip(x, -r, r)
    a = np.sqrt(np.maximum(r * r - y * y, 0.0))  # half-width of the chord at height y
    xm = np.clip(xc, -a, a)
    s = _half_chord_primitive
    # |u| < a: the column from -s(u) up to y has length y + s(u)
    middle = y * (xm + a) + s(xm, r) - s(-a, r)
    # |u| >= a: full column (2 s(u)) if y >= 0, nothing if y < 0
    outer = 2.0 * (s(np.minimum(xc, -a), r) - s(-r, r) + s(np.maximum(xc, a), r) - s(a, r))
    return middle + np.where(y >= 0, outer, 0.0)


def circle_pixel_overlap(
    dx0: NDArray, dx1: NDArray, dy0: NDArray, dy1: NDArray, r: float
) -> NDArray[np.float64]:
    """Exact area of the disc of radius ``r`` at the origin inside rectangles.

    Parameters
    ----------
    dx0, dx1, dy0, dy1 : ndarray
        Rectangle edges relative to the circle centre (broadcast together).
    r : float
        Radius.

    Returns
    -------
    ndarray
        Overlap areas (same units squared).
    """
    f = _quadrant_area
    area = f(dx1, dy1, r) - f(dx0, dy1, r) - f(dx1, dy0, r) + f(dx0, dy0, r)
    return np.clip(area, 0.0, None)


def aperture_photometry(
    data: ArrayLike,
    error: ArrayLike,
    x: ArrayLike,
    y: ArrayLike,
    radius: float,
    annulus: tuple[float, float] | None = None,
    mask: ArrayLike | None = None,
    bkg_sigma: float = 3.0,
) -> NDArray:
    """Circular-aperture photometry of many sources at once.

    Parameters
    ----------
    data : array_like, shape (ny, nx)
        Image.
    error : array_like, shape (ny, nx)
        1-sigma error of each pixel (the ERR extension).
    x, y : array_like
        Aperture centres in 0-based pixel coordinates (pixel centres at integers).
    radius : float
        Aperture radius, pixels.
    annulus : (float, float), optional
        Inner and outer radius of the local background annulus (pixels whose centre lies in
        ``r_in <= d < r_out``); no background subtraction if None.
    mask : array_like of bool, optional
        True for bad pixels.
    bkg_sigma : float
        Sigma-clipping limit for the annulus.

    Returns
    -------
    ndarray of :data:`PHOT_DTYPE`
        ``flux = aperture_sum - bkg * area`` and its error; ``bkg`` per pixel.
    """
    image = np.asarray(data)
    err = np.asarray(error)
    if image.ndim != 2 or err.shape != image.shape:
        raise StepInputError(
            f"photometry needs 2-D data and error of the same shape, got {image.shape} "
            f"and {err.shape}"
        )
    if radius <= 0:
        raise StepInputError(f"aperture radius must be positive, got {radius}")
    if annulus is not None and not (radius <= annulus[0] < annulus[1]):
        raise StepInputError(f"annulus {annulus} must satisfy radius <= r_in < r_out")
    xs = np.atleast_1d(np.asarray(x, dtype=np.float64))
    ys = np.atleast_1d(np.asarray(y, dtype=np.float64))
    good = np.isfinite(image) & np.isfinite(err)
    if mask is not None:
        good &= ~np.asarray(mask, dtype=bool)

    reach = annulus[1] if annulus is not None else radius
    half = int(np.ceil(reach)) + 1
    pad = half + 1
    img = np.pad(np.where(good, image, 0.0).astype(np.float64), pad)
    var = np.pad(np.where(good, err, 0.0).astype(np.float64) ** 2, pad)
    okp = np.pad(good, pad)
    offs = np.arange(-half, half + 1)
    cx = np.rint(xs).astype(np.intp)
    cy = np.rint(ys).astype(np.intp)
    rows = cy[:, None, None] + offs[None, :, None]
    cols = cx[:, None, None] + offs[None, None, :]
    inside_img = (rows >= 0) & (rows < image.shape[0]) & (cols >= 0) & (cols < image.shape[1])
    rows_p = np.clip(rows + pad, 0, img.shape[0] - 1)
    cols_p = np.clip(cols + pad, 0, img.shape[1] - 1)
    cut = img[rows_p, cols_p]
    cvar = var[rows_p, cols_p]
    cok = okp[rows_p, cols_p] & inside_img
    dx = cols - xs[:, None, None]
    dy = rows - ys[:, None, None]
    frac = circle_pixel_overlap(dx - 0.5, dx + 0.5, dy - 0.5, dy + 0.5, radius)

    used = frac * cok
    out = np.zeros(xs.size, dtype=PHOT_DTYPE)
    out["x"], out["y"] = xs, ys
    out["aperture_sum"] = (used * cut).sum(axis=(1, 2))
    out["aperture_sum_err"] = np.sqrt((used**2 * cvar).sum(axis=(1, 2)))
    out["area"] = used.sum(axis=(1, 2))
    out["nbad"] = ((frac > 0) & ~cok).sum(axis=(1, 2))

    if annulus is None:
        out["flux"] = out["aperture_sum"]
        out["flux_err"] = out["aperture_sum_err"]
        return out
    dist = np.hypot(dx, dy)
    in_ann = (dist >= annulus[0]) & (dist < annulus[1]) & cok
    n_src = xs.size
    vals = np.where(in_ann, cut, np.nan).reshape(n_src, -1)
    mean, _, count = clipped_mean_along_axis(vals, sigma=bkg_sigma)
    ann_var = np.where(in_ann, cvar, 0.0).reshape(n_src, -1).sum(axis=1)
    n_ann = in_ann.reshape(n_src, -1).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        # error of the mean of the kept pixels, from the mean pixel variance in the annulus
        bkg_err = np.sqrt(ann_var / n_ann / count)
    out["bkg"] = mean
    out["bkg_err"] = bkg_err
    out["bkg_npix"] = count
    out["flux"] = out["aperture_sum"] - mean * out["area"]
    out["flux_err"] = np.sqrt(out["aperture_sum_err"] ** 2 + (out["area"] * bkg_err) ** 2)
    return out
