"""The sky: a source catalogue in world coordinates and its rendering onto a detector.

Fluxes are in microjansky; surface brightness in MJy/sr. With the photometric conversion
``photmjsr`` (MJy/sr per DN/s) and the pixel solid angle ``pixar_sr``, a source of flux F
yields ``F * 1e-12 / (photmjsr * pixar_sr)`` DN/s in total (before the flat field).
Stars are Gaussian PSFs integrated exactly over each pixel; galaxies are elliptical Sersic
profiles sampled 3x3 per pixel and normalised to their catalogue flux within a radius of
5 effective radii (nothing is rendered beyond).
"""

from __future__ import annotations

import numpy as np
from astropy.wcs import WCS
from scipy.special import erf

__all__ = ["CATALOG_DTYPE", "make_catalog", "render_scene"]

CATALOG_DTYPE = np.dtype(
    [("id", "i4"), ("kind", "U6"), ("ra", "f8"), ("dec", "f8"), ("flux_ujy", "f8"),
     ("fwhm_pix", "f4"), ("r_eff_pix", "f4"), ("sersic_n", "f4"), ("axis_ratio", "f4"),
     ("pa_deg", "f4")]
)


def make_catalog(
    rng: np.random.Generator,
    field_wcs: WCS,
    extent: tuple[float, float, float, float],
    *,
    n_stars: int,
    n_galaxies: int,
    star_flux_range: tuple[float, float],
    galaxy_flux_range: tuple[float, float],
    psf_fwhm: float,
) -> np.ndarray:
    """Draw stars and galaxies uniformly over a region of a field WCS.

    Parameters
    ----------
    rng : numpy.random.Generator
    field_wcs : astropy.wcs.WCS
        Defines the field's pixel grid (0-based pixel coordinates).
    extent : (xmin, xmax, ymin, ymax)
        Region of the field grid to fill.
    n_stars, n_galaxies : int
    star_flux_range, galaxy_flux_range : (float, float)
        Log-uniform flux ranges in microjansky.
    psf_fwhm : float
        Star FWHM in pixels.

    Returns
    -------
    structured array of CATALOG_DTYPE
    """
    n = n_stars + n_galaxies
    cat = np.zeros(n, dtype=CATALOG_DTYPE)
    cat["id"] = np.arange(1, n + 1)
    cat["kind"][:n_stars] = "star"
    cat["kind"][n_stars:] = "galaxy"
    x = rng.uniform(extent[0], extent[1], n)
    y = rng.uniform(extent[2], extent[3], n)
    ra, dec = field_wcs.wcs_pix2world(x, y, 0)
    cat["ra"], cat["dec"] = ra, dec

    def loguniform(lo: float, hi: float, size: int) -> np.ndarray:
        return np.exp(rng.uniform(np.log(lo), np.log(hi), size))

    cat["flux_ujy"][:n_stars] = loguniform(*star_flux_range, n_stars)
    cat["flux_ujy"][n_stars:] = loguniform(*galaxy_flux_range, n_galaxies)
    cat["fwhm_pix"][:n_stars] = psf_fwhm
    cat["r_eff_pix"][n_stars:] = rng.uniform(1.5, 6.0, n_galaxies)
    cat["sersic_n"][n_stars:] = rng.uniform(0.7, 4.0, n_galaxies)
    cat["axis_ratio"][:n_stars] = 1.0
    cat["axis_ratio"][n_stars:] = rng.uniform(0.35, 1.0, n_galaxies)
    cat["pa_deg"][n_stars:] = rng.uniform(0.0, 180.0, n_galaxies)
    return cat


def _pixel_integrated_gaussian(centre: float, sigma: float, lo: int, hi: int) -> np.ndarray:
    edges = (np.arange(lo, hi + 1) - 0.5 - centre) / (np.sqrt(2.0) * sigma)
    return 0.5 * np.diff(erf(edges))


def _sersic_b(n: float) -> float:
    return 2.0 * n - 1.0 / 3.0 + 4.0 / (405.0 * n) + 46.0 / (25515.0 * n * n)


def _sersic_stamp(x0: float, y0: float, src: np.void, xs: slice, ys: slice) -> np.ndarray:
    sub = 3
    off = (np.arange(sub) + 0.5) / sub - 0.5
    yy = (np.arange(ys.start, ys.stop)[:, None] + off[None, :]).ravel()
    xx = (np.arange(xs.start, xs.stop)[:, None] + off[None, :]).ravel()
    dy, dx = np.meshgrid(yy - y0, xx - x0, indexing="ij")
    pa = np.deg2rad(src["pa_deg"])
    u = dx * np.cos(pa) + dy * np.sin(pa)
    v = -dx * np.sin(pa) + dy * np.cos(pa)
    r = np.hypot(u, v / src["axis_ratio"])
    n = float(src["sersic_n"])
    prof = np.exp(-_sersic_b(n) * ((r / src["r_eff_pix"]) ** (1.0 / n) - 1.0))
    prof[r > 5.0 * src["r_eff_pix"]] = 0.0
    ny, nx = ys.stop - ys.start, xs.stop - xs.start
    return prof.reshape(ny, sub, nx, sub).sum(axis=(1, 3))


def render_scene(
    catalog: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    shape: tuple[int, int],
    rate_per_ujy: float,
    background: float | np.ndarray,
) -> np.ndarray:
    """Render the catalogue onto a detector (DN/s, before flat field).

    Parameters
    ----------
    catalog : structured array of CATALOG_DTYPE
    x, y : (nsources,) float64
        0-based pixel positions of the sources on the detector (its *true* WCS).
    shape : (ny, nx)
    rate_per_ujy : float
        Total DN/s per microjansky.
    background : float or (ny, nx) array
        Sky in DN/s per pixel (a map where pixels differ in solid angle).

    Returns
    -------
    image : (ny, nx) float32
        Sky plus sources in DN/s.
    """
    ny, nx = shape
    image = np.empty(shape, dtype=np.float64)
    image[...] = background
    for src, x0, y0 in zip(catalog, x, y):
        total = src["flux_ujy"] * rate_per_ujy
        if src["kind"] == "star":
            sigma = src["fwhm_pix"] / 2.3548
            half = int(np.ceil(6 * sigma)) + 1
        else:
            half = int(np.ceil(5 * src["r_eff_pix"])) + 1
        x_lo, x_hi = max(int(np.floor(x0)) - half, 0), min(int(np.floor(x0)) + half + 1, nx)
        y_lo, y_hi = max(int(np.floor(y0)) - half, 0), min(int(np.floor(y0)) + half + 1, ny)
        if x_lo >= x_hi or y_lo >= y_hi:
            continue
        if src["kind"] == "star":
            # exact pixel integrals of a unit-flux Gaussian: the truth flux is the rendered flux
            px = _pixel_integrated_gaussian(x0, sigma, x_lo, x_hi)
            py = _pixel_integrated_gaussian(y0, sigma, y_lo, y_hi)
            image[y_lo:y_hi, x_lo:x_hi] += total * np.outer(py, px)
        else:
            # normalise over the full (untruncated by the detector edge) stamp
            fx0, fy0 = int(np.floor(x0)) - half, int(np.floor(y0)) - half
            full = _sersic_stamp(x0, y0, src, slice(fx0, fx0 + 2 * half + 1),
                                 slice(fy0, fy0 + 2 * half + 1))
            norm = full.sum()
            if norm > 0:
                cut = full[y_lo - fy0 : y_hi - fy0, x_lo - fx0 : x_hi - fx0]
                image[y_lo:y_hi, x_lo:x_hi] += total * cut / norm
    return image.astype(np.float32)
