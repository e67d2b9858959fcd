"""Drizzle resampling (square kernel) with exact polygon-overlap weights.

Each input pixel's footprint, shrunk about its centre by ``pixfrac``, is mapped to the
output grid as the quadrilateral of its four mapped corners (the mapping is taken as linear
inside one pixel, as drizzle does). The overlap area of that quadrilateral with every output
pixel it touches is computed exactly with Green's theorem: for an output pixel translated to
the unit square, ``area = |sum over edges of integral clip(y(x), 0, 1) dx|`` with ``x``
restricted to ``[0, 1]``; each edge integral is exact because the clipped edge is piecewise
linear between at most two breakpoints. All (input pixel, candidate output pixel) pairs of a
block of input rows are evaluated at once with numpy; no Python loop over pixels.

Data are treated as surface brightness (JWST ``_cal`` files are MJy/sr): an output pixel
is the weighted mean of the input pixels overlapping it, weights ``a * w`` with ``a`` the
overlap area and ``w`` the input pixel weight (``ivm`` = 1/VAR_RNOISE, or exposure time).
So ``sum(out * out_pixel_area) == sum(in * in_pixel_area)`` where the output is fully
covered (exact for ``pixfrac=1``). Variances propagate as
``var_out = sum((a w)^2 var) / (sum a w)^2``; ``ERR = sqrt(sum of the variance arrays)``.

Accumulation API: :class:`DrizzleAccumulator` adds one exposure at a time into running
``sum(a w d)``, ``sum(a w)``, ``sum((a w)^2 var)``, count and context arrays, so N exposures
need only one input exposure in memory at a time.

WCS objects: anything with ``pixel_to_world_values(x, y)`` and ``world_to_pixel_values(ra,
dec)`` in degrees and 0-based pixels (astropy ``WCS``, gwcs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from jwpipe.errors import StepInputError


class PixelWorldMapping(Protocol):
    """The two APE-14 methods the resampling code uses."""

    def pixel_to_world_values(self, *pixel: Any) -> Any:  # pragma: no cover - protocol
        """Map 0-based pixel coordinates to world (degrees)."""

    def world_to_pixel_values(self, *world: Any) -> Any:  # pragma: no cover - protocol
        """Map world coordinates (degrees) to 0-based pixels."""


# ----------------------------------------------------------------------------- geometry


def _edge_integral(x1: NDArray, y1: NDArray, x2: NDArray, y2: NDArray) -> NDArray:
    """Signed integral of clip(y, 0, 1) dx along segments, with x restricted to [0, 1]."""
    lo = np.clip(np.minimum(x1, x2), 0.0, 1.0)
    hi = np.clip(np.maximum(x1, x2), 0.0, 1.0)
    dx = x2 - x1
    vertical = dx == 0
    slope = np.where(vertical, 0.0, (y2 - y1) / np.where(vertical, 1.0, dx))
    flat = slope == 0
    safe = np.where(flat, 1.0, slope)
    b0 = np.where(flat, lo, x1 - y1 / safe)
    b1 = np.where(flat, lo, x1 + (1.0 - y1) / safe)
    pts = np.sort(np.stack([lo, np.clip(b0, lo, hi), np.clip(b1, lo, hi), hi], axis=-1), axis=-1)
    f = np.clip(y1[..., None] + slope[..., None] * (pts - x1[..., None]), 0.0, 1.0)
    integral = (0.5 * (f[..., 1:] + f[..., :-1]) * np.diff(pts, axis=-1)).sum(axis=-1)
    return np.where(vertical, 0.0, np.sign(dx) * integral)


def quad_unit_square_overlap(qx: NDArray, qy: NDArray) -> NDArray[np.float64]:
    """Exact overlap area of quadrilaterals with the unit square ``[0,1] x [0,1]``.

    Parameters
    ----------
    qx, qy : ndarray, shape (..., 4)
        Vertices in order (either orientation).

    Returns
    -------
    ndarray, shape (...)
    """
    x2 = np.roll(qx, -1, axis=-1)
    y2 = np.roll(qy, -1, axis=-1)
    return np.abs(_edge_integral(qx, qy, x2, y2).sum(axis=-1))


# ----------------------------------------------------------------------------- grids


def _sky_unit(ra: NDArray, dec: NDArray) -> NDArray:
    r, d = np.radians(ra), np.radians(dec)
    return np.stack([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)], axis=-1)


def pixel_scale_deg(wcs: PixelWorldMapping, shape: tuple[int, int]) -> float:
    """Geometric-mean pixel scale (degrees) at the centre of an image of ``shape``."""
    cy, cx = (shape[0] - 1) / 2.0, (shape[1] - 1) / 2.0
    ra, dec = wcs.pixel_to_world_values(np.array([cx, cx + 1, cx]), np.array([cy, cy, cy + 1]))
    u = _sky_unit(np.asarray(ra), np.asarray(dec))
    ex = u[1] - u[0]
    ey = u[2] - u[0]
    return float(np.degrees(np.sqrt(np.linalg.norm(np.cross(ex, ey)))))


def _footprint(wcs: PixelWorldMapping, shape: tuple[int, int], n: int = 9) -> NDArray:
    ny, nx = shape
    t = np.linspace(0.0, 1.0, n)
    xs = np.concatenate([t * nx, np.full(n, nx), (1 - t) * nx, np.zeros(n)]) - 0.5
    ys = np.concatenate([np.zeros(n), t * ny, np.full(n, ny), (1 - t) * ny]) - 0.5
    ra, dec = wcs.pixel_to_world_values(xs, ys)
    return np.stack([np.asarray(ra), np.asarray(dec)], axis=-1)


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
    points = np.concatenate([_footprint(w, s) for w, s in zip(wcs_list, shapes, strict=True)])
    if crval is None:
        mean = _sky_unit(points[:, 0], points[:, 1]).mean(axis=0)
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


def corner_map(
    in_wcs: PixelWorldMapping, out_wcs: PixelWorldMapping, shape: tuple[int, int]
) -> NDArray[np.float64]:
    """Output-pixel coordinates of the corners of every input pixel.

    Returns
    -------
    ndarray, shape (ny + 1, nx + 1, 2)
        ``[..., 0]`` = x, ``[..., 1]`` = y; corner ``(j, i)`` is input point ``(i-0.5, j-0.5)``.
    """
    ny, nx = shape
    yy, xx = np.mgrid[0 : ny + 1, 0 : nx + 1].astype(np.float64) - 0.5
    ra, dec = in_wcs.pixel_to_world_values(xx, yy)
    ox, oy = out_wcs.world_to_pixel_values(ra, dec)
    return np.stack([np.asarray(ox, dtype=np.float64), np.asarray(oy, dtype=np.float64)], -1)


def ivm_weights(var_rnoise: ArrayLike, bad: ArrayLike | None = None) -> NDArray[np.float64]:
    """Inverse-variance weights ``1/VAR_RNOISE``; 0 for bad, non-finite or non-positive var."""
    var = np.asarray(var_rnoise, dtype=np.float64)
    ok = np.isfinite(var) & (var > 0)
    if bad is not None:
        ok &= ~np.asarray(bad, dtype=bool)
    return np.where(ok, 1.0 / np.where(ok, var, 1.0), 0.0)


# ----------------------------------------------------------------------------- drizzle


@dataclass
class ResampleResult:
    """Final products of a drizzle combination.

    Attributes
    ----------
    sci : ndarray
        Weighted mean (``fillval`` where nothing contributed).
    err : ndarray
        ``sqrt`` of the summed propagated variances (NaN where nothing contributed).
    wht : ndarray
        Summed weights ``sum(a w)``.
    variances : dict of str to ndarray
        Each propagated variance array.
    count : ndarray of int32
        Number of exposures contributing to each output pixel.
    context : ndarray of uint32, shape (nplanes, ny, nx)
        Bit ``k % 32`` of plane ``k // 32`` set if exposure ``k`` contributed.
    """

    sci: NDArray[np.float32]
    err: NDArray[np.float32]
    wht: NDArray[np.float32]
    variances: dict[str, NDArray[np.float32]]
    count: NDArray[np.int32]
    context: NDArray[np.uint32]


@dataclass
class DrizzleAccumulator:
    """Running drizzle sums on an output grid of ``shape``; add exposures one at a time.

    Parameters
    ----------
    shape : (int, int)
        Output (ny, nx).
    rows_per_block : int
        Input rows processed together (bounds temporary memory).
    """

    shape: tuple[int, int]
    rows_per_block: int = 64
    _wd: NDArray[np.float64] = field(init=False, repr=False)
    _w: NDArray[np.float64] = field(init=False, repr=False)
    _var: dict[str, NDArray[np.float64]] = field(init=False, repr=False)
    _count: NDArray[np.int32] = field(init=False, repr=False)
    _context: list[NDArray[np.uint32]] = field(init=False, repr=False)
    n_added: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        size = self.shape[0] * self.shape[1]
        self._wd = np.zeros(size)
        self._w = np.zeros(size)
        self._var = {}
        self._count = np.zeros(size, dtype=np.int32)
        self._context = []

    def add(
        self,
        data: ArrayLike,
        corners: ArrayLike,
        weight: ArrayLike | float = 1.0,
        variances: dict[str, ArrayLike] | None = None,
        pixfrac: float = 1.0,
        exposure_index: int | None = None,
    ) -> None:
        """Drizzle one exposure into the running sums.

        Parameters
        ----------
        data : array_like, shape (ny, nx)
            Input surface brightness; NaN pixels are skipped.
        corners : array_like, shape (ny + 1, nx + 1, 2)
            Output coordinates of the input pixel corners (:func:`corner_map`).
        weight : array_like or float
            Per-pixel weight (0 = skip), e.g. :func:`ivm_weights` or the exposure time.
        variances : dict of str to array_like, optional
            Variance arrays to propagate (e.g. ``{"var_rnoise": ..., "var_poisson": ...}``);
            every call must give the same keys.
        pixfrac : float
            Linear shrink factor of the input pixel footprint, in (0, 1].
        exposure_index : int, optional
            Bit to set in the context image (default: the number of exposures added so far).
        """
        img = np.asarray(data)
        if img.ndim != 2:
            raise StepInputError(f"resample input must be 2-D, got shape {img.shape}")
        cg = np.asarray(corners, dtype=np.float64)
        if cg.shape != (img.shape[0] + 1, img.shape[1] + 1, 2):
            raise StepInputError(f"corner map shape {cg.shape} does not fit data shape {img.shape}")
        if not 0.0 < pixfrac <= 1.0:
            raise StepInputError(f"pixfrac must be in (0, 1], got {pixfrac}")
        w_all = np.broadcast_to(np.asarray(weight, dtype=np.float64), img.shape)
        variances = variances or {}
        if self.n_added and set(variances) != set(self._var):
            raise StepInputError(
                f"variance arrays {sorted(variances)} differ from earlier ones {sorted(self._var)}"
            )
        for key in variances:
            self._var.setdefault(key, np.zeros_like(self._wd))
        index = self.n_added if exposure_index is None else exposure_index
        while len(self._context) <= index // 32:
            self._context.append(np.zeros(self._wd.size, dtype=np.uint32))
        touched_total = np.zeros(self._wd.size, dtype=bool)

        ny_out, nx_out = self.shape
        for r0 in range(0, img.shape[0], self.rows_per_block):
            r1 = min(r0 + self.rows_per_block, img.shape[0])
            d = img[r0:r1].astype(np.float64).ravel()
            w = w_all[r0:r1].ravel()
            use = np.isfinite(d) & (w > 0)
            vblock = {
                k: np.asarray(v)[r0:r1].astype(np.float64).ravel() for k, v in variances.items()
            }
            for v in vblock.values():
                use &= np.isfinite(v)
            block = cg[r0 : r1 + 1]
            # quad vertices (counter-clockwise in input pixel space)
            qx = np.stack(
                [block[:-1, :-1, 0], block[:-1, 1:, 0], block[1:, 1:, 0], block[1:, :-1, 0]], -1
            ).reshape(-1, 4)[use]
            qy = np.stack(
                [block[:-1, :-1, 1], block[:-1, 1:, 1], block[1:, 1:, 1], block[1:, :-1, 1]], -1
            ).reshape(-1, 4)[use]
            if not qx.size:
                continue
            if pixfrac != 1.0:
                cx = qx.mean(axis=1, keepdims=True)
                cy = qy.mean(axis=1, keepdims=True)
                qx = cx + pixfrac * (qx - cx)
                qy = cy + pixfrac * (qy - cy)
            d, w = d[use], w[use]
            vblock = {k: v[use] for k, v in vblock.items()}
            ix0 = np.floor(qx.min(axis=1) + 0.5).astype(np.int64)
            iy0 = np.floor(qy.min(axis=1) + 0.5).astype(np.int64)
            kx = int((np.floor(qx.max(axis=1) + 0.5).astype(np.int64) - ix0).max()) + 1
            ky = int((np.floor(qy.max(axis=1) + 0.5).astype(np.int64) - iy0).max()) + 1
            ox = ix0[:, None] + np.tile(np.arange(kx), ky)[None, :]
            oy = iy0[:, None] + np.repeat(np.arange(ky), kx)[None, :]
            area = quad_unit_square_overlap(
                qx[:, None, :] - (ox[:, :, None] - 0.5), qy[:, None, :] - (oy[:, :, None] - 0.5)
            )
            inside = (area > 0) & (ox >= 0) & (ox < nx_out) & (oy >= 0) & (oy < ny_out)
            if not inside.any():
                continue
            src = np.nonzero(inside)[0]
            flat = (oy * nx_out + ox)[inside]
            aw = area[inside] * w[src]
            lo = int(flat.min())
            n = int(flat.max()) - lo + 1
            rel = flat - lo
            sl = slice(lo, lo + n)
            self._wd[sl] += np.bincount(rel, aw * d[src], minlength=n)
            self._w[sl] += np.bincount(rel, aw, minlength=n)
            for key, v in vblock.items():
                self._var[key][sl] += np.bincount(rel, aw * aw * v[src], minlength=n)
            touched_total[flat] = True
        self._count += touched_total
        self._context[index // 32][touched_total] |= np.uint32(1 << (index % 32))
        self.n_added += 1

    def finalize(self, fillval: float = np.nan) -> ResampleResult:
        """Return the combined products (the running sums are left unchanged)."""
        ny, nx = self.shape
        covered = self._w > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            sci = np.where(covered, self._wd / self._w, fillval)
            var = {k: np.where(covered, v / self._w**2, np.nan) for k, v in self._var.items()}
        if var:
            err = np.sqrt(np.sum(list(var.values()), axis=0))
        else:
            err = np.full(sci.shape, np.nan)
        ctx = np.stack(self._context) if self._context else np.zeros((1, ny * nx), np.uint32)
        return ResampleResult(
            sci=sci.reshape(ny, nx).astype(np.float32),
            err=err.reshape(ny, nx).astype(np.float32),
            wht=self._w.reshape(ny, nx).astype(np.float32),
            variances={k: v.reshape(ny, nx).astype(np.float32) for k, v in var.items()},
            count=self._count.reshape(ny, nx).copy(),
            context=ctx.reshape(-1, ny, nx).copy(),
        )


def drizzle_one(
    data: ArrayLike,
    corners: ArrayLike,
    out_shape: tuple[int, int],
    weight: ArrayLike | float = 1.0,
    variances: dict[str, ArrayLike] | None = None,
    pixfrac: float = 1.0,
    fillval: float = np.nan,
) -> ResampleResult:
    """Resample a single exposure (the ``single=True`` / outlier-detection use)."""
    acc = DrizzleAccumulator(out_shape)
    acc.add(data, corners, weight, variances, pixfrac)
    return acc.finalize(fillval)


def blot(image: ArrayLike, corners: ArrayLike) -> NDArray[np.float64]:
    """Interpolate an output-grid image back onto an input frame (bilinear at pixel centres).

    Parameters
    ----------
    image : array_like, shape (ny_out, nx_out)
        E.g. the median of the resampled exposures (NaN allowed).
    corners : array_like, shape (ny + 1, nx + 1, 2)
        The input frame's corner map; pixel centres are the means of their 4 corners.

    Returns
    -------
    ndarray, shape (ny, nx)
        NaN where the centre falls outside the grid or next to a NaN.
    """
    from scipy import ndimage

    cg = np.asarray(corners, dtype=np.float64)
    centre = 0.25 * (cg[:-1, :-1] + cg[:-1, 1:] + cg[1:, 1:] + cg[1:, :-1])
    img = np.asarray(image, dtype=np.float64)
    nan = ~np.isfinite(img)
    values = ndimage.map_coordinates(
        np.where(nan, 0.0, img), [centre[..., 1], centre[..., 0]], order=1, cval=np.nan
    )
    near_nan = ndimage.map_coordinates(
        nan.astype(np.float64), [centre[..., 1], centre[..., 0]], order=1, cval=1.0
    )
    values[near_nan > 0] = np.nan
    return values
