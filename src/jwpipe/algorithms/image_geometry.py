"""WCS geometry for stage-3 imaging: pixel corners, footprints, output grids, pixel maps.

WCS objects: anything with ``pixel_to_world_values(x, y)`` and ``world_to_pixel_values(ra,
dec)`` in degrees and 0-based pixels (astropy ``WCS``, gwcs).

Pixel maps (:func:`pixel_map`) are what drizzle and blot consume: the output-grid position of
every input pixel centre. Evaluating the full WCS chain (distortion, sky, projection) for every
pixel dominates mosaic time (jwst#9440), so the transform is evaluated exactly on a coarse
grid of nodes and interpolated with a bicubic spline; the interpolation error is measured at
the centres of the coarse cells (where it is largest) against the exact transform and the
grid refined until it is below ``tol`` pixels.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from jwpipe.errors import StepInputError

__all__ = [
    "PixelWorldMapping",
    "boxes_overlap",
    "exact_pixel_map",
    "footprint_region",
    "isolated_footprints",
    "make_output_wcs",
    "pixel_corners",
    "pixel_map",
    "pixel_scale_deg",
    "sky_footprint",
    "sky_unit",
    "y_axis_angle",
]


class PixelWorldMapping(Protocol):
    """The two APE-14 methods the geometry code uses."""

    def pixel_to_world_values(self, *pixel: Any) -> Any:  # pragma: no cover - protocol
        """Map 0-based pixel coordinates to world (degrees)."""

    def world_to_pixel_values(self, *world: Any) -> Any:  # pragma: no cover - protocol
        """Map world coordinates (degrees) to 0-based pixels."""


def pixel_corners(shape: tuple[int, ...], n_per_edge: int = 1) -> tuple[NDArray, NDArray]:
    """0-based pixel coordinates of the outer edge of an image, counter-clockwise.

    Parameters
    ----------
    shape : tuple
        Image shape; the last two entries are (ny, nx).
    n_per_edge : int
        Points per edge (1: the four outer corners of the corner pixels).

    Returns
    -------
    x, y : ndarray, shape (4 * n_per_edge,)
        Starting at the lower-left corner ``(-0.5, -0.5)``.
    """
    ny, nx = int(shape[-2]), int(shape[-1])
    t = np.arange(n_per_edge) / n_per_edge
    x = np.concatenate([t * nx, np.full(n_per_edge, nx), (1 - t) * nx, np.zeros(n_per_edge)])
    y = np.concatenate([np.zeros(n_per_edge), t * ny, np.full(n_per_edge, ny), (1 - t) * ny])
    return x - 0.5, y - 0.5


def sky_unit(ra: NDArray, dec: NDArray) -> NDArray:
    """Unit vectors (..., 3) of directions given in degrees."""
    r, d = np.radians(ra), np.radians(dec)
    return np.stack([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)], axis=-1)


def sky_footprint(wcs: PixelWorldMapping, shape: tuple[int, ...], n_per_edge: int = 1
                  ) -> NDArray[np.float64]:
    """(RA, Dec) in degrees, shape (4 * n_per_edge, 2), of an image's outer edge."""
    x, y = pixel_corners(shape, n_per_edge)
    ra, dec = wcs.pixel_to_world_values(x, y)
    return np.stack([np.asarray(ra, dtype=np.float64), np.asarray(dec, dtype=np.float64)], -1)


def footprint_region(wcs: PixelWorldMapping, shape: tuple[int, ...]) -> str:
    """``S_REGION`` polygon (ICRS degrees) of the outer pixel corners."""
    sky = sky_footprint(wcs, shape)
    return "POLYGON ICRS " + " ".join(f"{a % 360.0:.9f} {d:.9f}" for a, d in sky)


def pixel_scale_deg(wcs: PixelWorldMapping, shape: tuple[int, ...]) -> float:
    """Geometric-mean pixel scale (degrees) at the centre of an image of ``shape``."""
    cy, cx = (shape[-2] - 1) / 2.0, (shape[-1] - 1) / 2.0
    ra, dec = wcs.pixel_to_world_values(np.array([cx, cx + 1, cx]), np.array([cy, cy, cy + 1]))
    u = sky_unit(np.asarray(ra), np.asarray(dec))
    return float(np.degrees(np.sqrt(np.linalg.norm(np.cross(u[1] - u[0], u[2] - u[0])))))


def y_axis_angle(wcs: PixelWorldMapping, shape: tuple[int, ...]) -> float:
    """Position angle (degrees east of north) of an image's +y axis at its centre."""
    cy, cx = (shape[-2] - 1) / 2.0, (shape[-1] - 1) / 2.0
    ra, dec = wcs.pixel_to_world_values(np.array([cx, cx]), np.array([cy, cy + 1.0]))
    ra, dec = np.asarray(ra), np.asarray(dec)
    dra = np.radians(ra[1] - ra[0]) * np.cos(np.radians(dec[0]))
    return float(np.degrees(np.arctan2(dra, np.radians(dec[1] - dec[0]))))


def make_output_wcs(
    wcs_list: list[PixelWorldMapping],
    shapes: list[tuple[int, int]],
    pixel_scale: float | None = None,
    rotation: float = 0.0,
    crval: tuple[float, float] | None = None,
) -> tuple[Any, tuple[int, int]]:
    """Tangent-plane output grid covering all inputs.

    Parameters
    ----------
    wcs_list, shapes : list
        Input WCSs and their (ny, nx) shapes.
    pixel_scale : float, optional
        Output pixel scale in degrees; default: the first input's scale at its centre.
    rotation : float
        Angle of the output +y axis east of north, degrees (0 = north up, east left).
    crval : (ra, dec), optional
        Tangent point, degrees; default: the mean direction of all footprints.

    Returns
    -------
    wcs : astropy.wcs.WCS
        TAN projection with ``pixel_shape`` set.
    shape : (int, int)
        Output (ny, nx).
    """
    from astropy.wcs import WCS

    if not wcs_list or len(wcs_list) != len(shapes):
        raise StepInputError("make_output_wcs needs one shape per input WCS (at least one)")
    points = np.concatenate([sky_footprint(w, s, 8) for w, s in zip(wcs_list, shapes,
                                                                     strict=True)])
    if crval is None:
        mean = sky_unit(points[:, 0], points[:, 1]).mean(axis=0)
        ra0 = float(np.degrees(np.arctan2(mean[1], mean[0])) % 360.0)
        dec0 = float(np.degrees(np.arcsin(mean[2] / np.linalg.norm(mean))))
    else:
        ra0, dec0 = float(crval[0]), float(crval[1])
    scale = pixel_scale_deg(wcs_list[0], shapes[0]) if pixel_scale is None else pixel_scale
    th = np.radians(rotation)
    out = WCS(naxis=2)
    out.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    out.wcs.cunit = ["deg", "deg"]
    out.wcs.crval = [ra0, dec0]
    out.wcs.crpix = [1.0, 1.0]
    out.wcs.cd = scale * np.array([[-np.cos(th), np.sin(th)], [np.sin(th), np.cos(th)]])
    px, py = out.world_to_pixel_values(points[:, 0], points[:, 1])
    nx = int(np.ceil(px.max() - px.min() - 1e-9))
    ny = int(np.ceil(py.max() - py.min() - 1e-9))
    out.wcs.crpix = [1.0 - 0.5 - px.min(), 1.0 - 0.5 - py.min()]
    out.pixel_shape = (nx, ny)
    return out, (ny, nx)


def boxes_overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float],
                  margin: float = 0.0) -> bool:
    """Whether two boxes ``(xmin, xmax, ymin, ymax)`` overlap (grown by ``margin``)."""
    return (a[0] < b[1] + margin and b[0] < a[1] + margin
            and a[2] < b[3] + margin and b[2] < a[3] + margin)


def isolated_footprints(wcs_list: list[PixelWorldMapping], shapes: list[tuple[int, int]],
                        out_wcs: PixelWorldMapping, groups: list[str] | None = None
                        ) -> list[int]:
    """Indices of images whose footprint box on ``out_wcs`` overlaps no other image's; with
    ``groups``, only images of other exposure groups count (the detectors of one exposure do
    not see the same sky)."""
    boxes = []
    for w, s in zip(wcs_list, shapes, strict=True):
        sky = sky_footprint(w, s)
        x, y = out_wcs.world_to_pixel_values(sky[:, 0], sky[:, 1])
        boxes.append((float(np.min(x)), float(np.max(x)), float(np.min(y)), float(np.max(y))))
    return [i for i, a in enumerate(boxes)
            if not any(j != i and (groups is None or groups[j] != groups[i])
                       and boxes_overlap(a, b) for j, b in enumerate(boxes))]


# ----------------------------------------------------------------------------- pixel maps


def _transform(in_wcs: PixelWorldMapping, out_wcs: PixelWorldMapping, x: NDArray, y: NDArray
               ) -> tuple[NDArray, NDArray]:
    ra, dec = in_wcs.pixel_to_world_values(x, y)
    ox, oy = out_wcs.world_to_pixel_values(ra, dec)
    return np.asarray(ox, dtype=np.float64), np.asarray(oy, dtype=np.float64)


def exact_pixel_map(in_wcs: PixelWorldMapping, out_wcs: PixelWorldMapping,
                    shape: tuple[int, int]) -> NDArray[np.float64]:
    """Output-grid position of every input pixel centre, transform evaluated per pixel.

    Returns
    -------
    ndarray, shape (ny, nx, 2)
        ``[..., 0]`` = x, ``[..., 1]`` = y (0-based output pixels): drizzle's ``pixmap``.
    """
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    ox, oy = _transform(in_wcs, out_wcs, xx, yy)
    return np.stack([ox, oy], axis=-1)


def _nodes(n: int, step: int) -> NDArray[np.float64]:
    k = max(4, int(np.ceil((n - 1) / step)) + 1)  # a cubic spline needs 4 nodes
    return np.linspace(0.0, n - 1.0, k)


def pixel_map(in_wcs: PixelWorldMapping, out_wcs: PixelWorldMapping, shape: tuple[int, int],
              step: int = 64, tol: float = 0.01) -> NDArray[np.float64]:
    """Output-grid position of every input pixel centre, interpolated from a coarse grid.

    The transform is evaluated exactly on nodes about ``step`` pixels apart (both ends
    included) and interpolated with a bicubic spline. The error is then measured against the
    exact transform at the centre of every coarse cell; while it exceeds ``tol`` pixels the
    node spacing is halved (down to 4 pixels, below which the exact map is returned).

    Parameters
    ----------
    in_wcs, out_wcs : PixelWorldMapping
        Input image and output grid WCSs.
    shape : (int, int)
        Input (ny, nx).
    step : int
        Initial node spacing in pixels.
    tol : float
        Largest interpolation error accepted, output pixels.

    Returns
    -------
    ndarray of float64, shape (ny, nx, 2)
        As :func:`exact_pixel_map`; non-finite where the exact transform is.
    """
    from scipy.interpolate import RectBivariateSpline

    ny, nx = int(shape[0]), int(shape[1])
    while step >= 4 and min(ny, nx) >= 8:
        ys, xs = _nodes(ny, step), _nodes(nx, step)
        gx, gy = _transform(in_wcs, out_wcs, *np.meshgrid(xs, ys))
        if not (np.isfinite(gx).all() and np.isfinite(gy).all()):
            break
        splines = [RectBivariateSpline(ys, xs, g, kx=3, ky=3) for g in (gx, gy)]
        # worst case: the middle of each coarse cell
        my, mx = 0.5 * (ys[1:] + ys[:-1]), 0.5 * (xs[1:] + xs[:-1])
        tx, ty = _transform(in_wcs, out_wcs, *np.meshgrid(mx, my))
        err = np.hypot(splines[0](my, mx) - tx, splines[1](my, mx) - ty)
        if np.isfinite(err).all() and float(err.max()) <= tol:
            rows, cols = np.arange(ny, dtype=np.float64), np.arange(nx, dtype=np.float64)
            out = np.empty((ny, nx, 2), dtype=np.float64)
            out[..., 0] = splines[0](rows, cols)
            out[..., 1] = splines[1](rows, cols)
            return out
        step //= 2
    return exact_pixel_map(in_wcs, out_wcs, shape)
