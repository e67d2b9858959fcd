"""The imaging WCS of a JWST exposure as a gWCS: detector -> V2V3 -> V2V3 (aberrated) -> ICRS.

The frames and their names are those of jwst's imaging WCS, so a gWCS built here is usable by
jwst's Image3 steps (tweakreg looks for the ``v2v3`` frame):

* ``detector`` -> ``v2v3``: the ``distortion`` reference's transform (full-frame 0-based pixels
  to V2/V3 arcsec), preceded by the ``filteroffset`` pixel shift and, for subarrays, the shift
  of the subarray origin (XSTART/YSTART, 1-based) to full-frame pixels.
* ``v2v3`` -> ``v2v3vacorr``: differential velocity aberration, a scale by ``VA_SCALE`` about
  (V2_REF, V3_REF).
* ``v2v3vacorr`` -> ``world``: the rotation of the celestial sphere that takes
  (V2_REF, V3_REF) to (RA_REF, DEC_REF) with V3 at ROLL_REF east of north.

:class:`GwcsAdapter` gives such a gWCS the astropy-``WCS`` calls the Image3 steps use.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "GwcsAdapter",
    "detector_to_v2v3",
    "imaging_gwcs",
    "sip_header",
    "sky_correction",
    "v2v3_to_sky",
    "velocity_aberration",
]


def v2v3_to_sky(v2_ref: float, v3_ref: float, roll_ref: float, ra_ref: float,
                dec_ref: float) -> Any:
    """V2, V3 (arcsec) -> RA, Dec (degrees, ICRS) from the pointing keywords.

    The telescope frame is turned onto the sky by Euler rotations of the unit sphere: about
    the V1 axis' pole by V2_REF and V3_REF to bring the reference point to the V1 axis, by
    ROLL_REF about it, then by DEC_REF and RA_REF to the reference position.
    """
    from astropy.modeling.models import RotationSequence3D, Scale
    from gwcs.geometry import CartesianToSpherical, SphericalToCartesian

    angles = [v2_ref / 3600.0, -v3_ref / 3600.0, roll_ref, dec_ref, -ra_ref]
    model = (Scale(1 / 3600.0) & Scale(1 / 3600.0)
             | SphericalToCartesian(wrap_lon_at=180)
             | RotationSequence3D(angles, axes_order="zyxyz")
             | CartesianToSpherical(wrap_lon_at=360))
    model.name = "v2v3_to_sky"
    return model


def velocity_aberration(va_scale: float | None, v2_ref: float, v3_ref: float) -> Any:
    """V2V3 -> aberrated V2V3: ``v -> ref + VA_SCALE (v - ref)`` (identity for no scale)."""
    from astropy.modeling.models import Identity, Scale, Shift

    if va_scale is None or va_scale == 1:
        return Identity(2)
    if not va_scale > 0:
        raise ValueError(f"VA_SCALE must be positive, got {va_scale}")
    model = ((Shift(-v2_ref) | Scale(va_scale) | Shift(v2_ref))
             & (Shift(-v3_ref) | Scale(va_scale) | Shift(v3_ref)))
    model.name = "velocity_aberration"
    return model


def detector_to_v2v3(distortion: Any, filter_offset: tuple[float, float] | None = None,
                     subarray_origin: tuple[int, int] = (1, 1)) -> Any:
    """Pixels of the (sub)array, 0-based -> V2/V3 arcsec.

    Parameters
    ----------
    distortion : astropy.modeling.Model
        The distortion reference's full-frame transform.
    filter_offset : (column_offset, row_offset) or None
        The filteroffset reference's pixel shift for the exposure's filter/pupil.
    subarray_origin : (XSTART, YSTART)
        1-based full-frame position of the array's first pixel.
    """
    from astropy.modeling.models import Shift

    dx = float(subarray_origin[0]) - 1.0
    dy = float(subarray_origin[1]) - 1.0
    if filter_offset is not None:
        dx += float(filter_offset[0])
        dy += float(filter_offset[1])
    if dx == 0.0 and dy == 0.0:
        return distortion
    return Shift(dx) & Shift(dy) | distortion


def imaging_gwcs(det2v2v3: Any, va: Any, v2v3_sky: Any, shape: tuple[int, int]) -> Any:
    """The gWCS ``detector -> v2v3 -> v2v3vacorr -> world`` of an image of ``shape`` (ny, nx)."""
    import astropy.units as u
    from astropy.coordinates import ICRS
    from gwcs import WCS
    from gwcs import coordinate_frames as cf

    detector = cf.Frame2D(name="detector", axes_order=(0, 1), unit=(u.pix, u.pix))
    v2v3 = cf.Frame2D(name="v2v3", axes_order=(0, 1), axes_names=("v2", "v3"),
                      unit=(u.arcsec, u.arcsec))
    v2v3va = cf.Frame2D(name="v2v3vacorr", axes_order=(0, 1), axes_names=("v2", "v3"),
                        unit=(u.arcsec, u.arcsec))
    world = cf.CelestialFrame(reference_frame=ICRS(), name="world")
    wcs = WCS([(detector, det2v2v3), (v2v3, va), (v2v3va, v2v3_sky), (world, None)])
    ny, nx = int(shape[0]), int(shape[1])
    wcs.bounding_box = ((-0.5, nx - 0.5), (-0.5, ny - 0.5))
    wcs.pixel_shape = (nx, ny)
    return wcs


def sip_header(wcs: Any, shape: tuple[int, int], *, max_pix_error: float = 0.01,
               degree: int | None = None, max_inv_pix_error: float = 0.01,
               inv_degree: int | None = None, npoints: int = 12) -> Any:
    """FITS TAN-SIP approximation of a gWCS over the image (astropy ``Header``).

    The fit (gwcs ``to_fits_sip``) stops at the lowest polynomial degree whose largest error
    on the fitting grid is below ``max_pix_error`` pixels (forward) and ``max_inv_pix_error``
    (inverse), at most degree 6.
    """
    ny, nx = int(shape[0]), int(shape[1])
    return wcs.to_fits_sip(bounding_box=((-0.5, nx - 0.5), (-0.5, ny - 0.5)),
                           max_pix_error=max_pix_error, degree=degree,
                           max_inv_pix_error=max_inv_pix_error, inv_degree=inv_degree,
                           npoints=npoints)


def sky_correction(shift_arcsec: ArrayLike, rotation_deg: float,
                   tangent_point: tuple[float, float], matrix: ArrayLike | None = None) -> Any:
    """RA, Dec -> RA, Dec: ``p -> R(rotation) p + shift`` on the tangent plane about
    ``tangent_point`` (xi east, eta north, arcsec), as :func:`image_align.apply_correction`;
    with ``matrix``, ``p -> matrix p + shift`` (a general affine correction)."""
    from astropy.modeling.models import (
        AffineTransformation2D,
        Pix2Sky_TAN,
        RotateCelestial2Native,
        RotateNative2Celestial,
        Sky2Pix_TAN,
    )

    ra0, dec0 = (float(v) for v in tangent_point)
    th = np.radians(rotation_deg)
    # with LONPOLE 180 the projection plane's (x, y) in degrees are (xi, eta)
    if matrix is None:
        matrix = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    matrix = np.asarray(matrix, dtype=np.float64)
    translation = np.asarray(shift_arcsec, dtype=np.float64) / 3600.0
    model = (RotateCelestial2Native(ra0, dec0, 180.0) | Sky2Pix_TAN()
             | AffineTransformation2D(matrix=matrix, translation=translation)
             | Pix2Sky_TAN() | RotateNative2Celestial(ra0, dec0, 180.0))
    model.name = "sky_correction"
    return model


class GwcsAdapter:
    """A gWCS with the astropy-``WCS`` calls the image steps use.

    ``all_pix2world``/``all_world2pix`` (with an origin), ``pixel_to_world_values``/
    ``world_to_pixel_values`` (0-based), ``pixel_shape``, ``deepcopy`` and ``wcs.crval`` (the
    sky position of the array centre, where a tangent-plane WCS would put its reference
    point). Evaluation ignores the bounding box, as an astropy WCS does.
    """

    def __init__(self, gwcs: Any, shape: tuple[int, int] | None = None) -> None:
        self.gwcs = gwcs
        if shape is not None:
            self.pixel_shape = (int(shape[-1]), int(shape[-2]))
        else:
            self.pixel_shape = gwcs.pixel_shape

    @property
    def array_shape(self) -> tuple[int, int] | None:
        """(ny, nx)."""
        return None if self.pixel_shape is None else (self.pixel_shape[1], self.pixel_shape[0])

    def pixel_to_world_values(self, x: ArrayLike, y: ArrayLike
                              ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """RA, Dec (degrees) of 0-based pixel positions."""
        ra, dec = self.gwcs(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64),
                            with_bounding_box=False)
        return np.asarray(ra), np.asarray(dec)

    def world_to_pixel_values(self, ra: ArrayLike, dec: ArrayLike
                              ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """0-based pixel positions of RA, Dec (degrees)."""
        x, y = self.gwcs.invert(np.asarray(ra, dtype=np.float64),
                                np.asarray(dec, dtype=np.float64), with_bounding_box=False)
        return np.asarray(x), np.asarray(y)

    def all_pix2world(self, x: ArrayLike, y: ArrayLike, origin: int
                      ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """RA, Dec of pixel positions counted from ``origin`` (0 or 1)."""
        return self.pixel_to_world_values(np.asarray(x, dtype=np.float64) - origin,
                                          np.asarray(y, dtype=np.float64) - origin)

    def all_world2pix(self, ra: ArrayLike, dec: ArrayLike, origin: int
                      ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Pixel positions (from ``origin``) of RA, Dec."""
        x, y = self.world_to_pixel_values(ra, dec)
        return x + origin, y + origin

    @property
    def wcs(self) -> SimpleNamespace:
        """``crval``: RA, Dec of the array centre."""
        nx, ny = self.pixel_shape if self.pixel_shape is not None else (1, 1)
        ra, dec = self.pixel_to_world_values((nx - 1) / 2.0, (ny - 1) / 2.0)
        return SimpleNamespace(crval=np.array([float(ra), float(dec)]))

    def deepcopy(self) -> GwcsAdapter:
        """An independent copy."""
        return GwcsAdapter(copy.deepcopy(self.gwcs), self.array_shape)

    def with_sky_correction(self, correction: Any) -> GwcsAdapter:
        """A copy whose last transform (to ``world``) is followed by ``correction``."""
        from gwcs import WCS

        steps = [(step.frame, step.transform) for step in self.gwcs.pipeline]
        frame, last = steps[-2]
        steps[-2] = (frame, last | correction)
        new = WCS(copy.deepcopy(steps))
        if self.gwcs.bounding_box is not None:
            new.bounding_box = self.gwcs.bounding_box.bounding_box(order="F")
        new.pixel_shape = self.gwcs.pixel_shape
        return GwcsAdapter(new, self.array_shape)
