"""Helpers shared by the Image2/Image3 step classes.

* WCS: :func:`model_wcs` gives the model's gWCS (``meta.wcs``, wrapped to answer astropy-WCS
  calls) or else the celestial astropy WCS of the SCI header (TAN, optionally SIP);
  :func:`set_model_wcs` stores either back (so it round-trips through FITS) with ``S_REGION``.
  The geometry itself (footprints, grids, pixel maps) is in
  :mod:`jwpipe.algorithms.image_geometry`.
* Per-member inputs of the drizzling steps: bad-pixel mask, weights, unsubtracted sky, the
  output grid from jwst's grid options.
* Opening and streaming the members of a product is in :mod:`jwpipe.steps._members`.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import numpy as np
from numpy.typing import NDArray

from jwpipe.algorithms.image_geometry import (
    footprint_region,
    make_output_wcs,
    pixel_scale_deg,
    sky_footprint,
    y_axis_angle,
)
from jwpipe.datamodels import dqflags
from jwpipe.errors import StepInputError

__all__ = [
    "affine_wcs",
    "bad_pixel_mask",
    "label",
    "member_weight",
    "model_wcs",
    "output_grid",
    "prepare_image",
    "rotate_shift_wcs",
    "set_model_wcs",
    "sky_offset",
]

#: Pixels with any of these DQ bits carry no usable signal in stage 3 (jwst ``GOOD_BITS`` is
#: ``~DO_NOT_USE+NON_SCIENCE``; reference pixels are added because simulated and real NIRCam
#: rate files hold no light there).
BAD_BITS = int(dqflags.pixel["DO_NOT_USE"] | dqflags.pixel["NON_SCIENCE"]
               | dqflags.pixel["REFERENCE_PIXEL"])

_WCS_KEY = re.compile(
    r"^(WCSAXES|CRPIX\d|CRVAL\d|CDELT\d|CTYPE\d|CUNIT\d|PC\d_\d|CD\d_\d|LONPOLE|LATPOLE|"
    r"RADESYS|EQUINOX|[AB]P?_ORDER|[AB]P?_\d+_\d+|A_DMAX|B_DMAX)$"
)


def label(model: Any) -> str:
    """A model's file name for messages."""
    return getattr(model.meta, "filename", None) or type(model).__name__


def prepare_image(step: Any, input: Any) -> Any:
    """The rate/rateints image a calibration step works on (StepInputError otherwise)."""
    from jwpipe import datamodels

    model = step.prepare_input(input)
    if not isinstance(model, datamodels.ImageModel | datamodels.CubeModel):
        raise StepInputError(
            f"{step.qualified_name}: {label(model)} is a {type(model).__name__}; "
            f"{step.class_alias} needs a rate/rateints image")
    from jwpipe.steps._common import check_produced_arrays

    check_produced_arrays(model, step.qualified_name)
    return model


def bad_pixel_mask(dq: NDArray | None, shape: tuple[int, ...]) -> NDArray[np.bool_]:
    """True where DQ has DO_NOT_USE, NON_SCIENCE or REFERENCE_PIXEL set."""
    if dq is None:
        return np.zeros(shape, dtype=bool)
    return (np.asarray(dq).astype(np.uint32, copy=False) & np.uint32(BAD_BITS)) != 0


# ----------------------------------------------------------------------------- WCS


def model_wcs(model: Any, step: str = "") -> Any:
    """The celestial WCS of a model: its gWCS (``meta.wcs``) if it has one, else the header's.

    A gWCS comes wrapped in a :class:`~jwpipe.algorithms.imaging_wcs.GwcsAdapter`, which
    answers the same pixel <-> world calls as the astropy ``WCS`` read from the SCI header
    (TAN, optionally SIP) otherwise.

    Raises
    ------
    StepInputError
        Neither a gWCS nor a celestial (RA/Dec) header WCS.
    """
    from astropy.wcs import WCS, FITSFixedWarning

    gwcs = model.meta.wcs
    if gwcs is not None:
        from jwpipe.algorithms.imaging_wcs import GwcsAdapter

        return GwcsAdapter(gwcs, model.shape)
    header = model.header("SCI")
    ctype1 = str(header.get("CTYPE1", ""))
    if not ctype1.startswith("RA--") or "CRVAL1" not in header:
        raise StepInputError(
            f"{step}: {label(model)} has no celestial WCS in its SCI header "
            f"(CTYPE1={ctype1!r}); run assign_wcs first")
    wanted = {k: header[k] for k in header if _WCS_KEY.match(k)}
    from astropy.io import fits

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        wcs = WCS(fits.Header(wanted), naxis=2)
    shape = model.shape
    if shape is not None:
        wcs.pixel_shape = (shape[-1], shape[-2])
    return wcs


#: SIP fit of a gWCS written into the header when set_model_wcs is not told otherwise
#: (jwst's assign_wcs/tweakreg defaults).
DEFAULT_SIP: dict[str, Any] = {"max_pix_error": 0.01, "degree": None,
                               "max_inv_pix_error": 0.01, "inv_degree": None, "npoints": 12}


def set_model_wcs(model: Any, wcs: Any, sip: dict[str, Any] | None = DEFAULT_SIP) -> None:
    """Store ``wcs`` in a model, replacing its WCS, and update ``S_REGION``.

    An astropy ``WCS`` goes into the SCI header (and any gWCS is dropped: it no longer
    describes the data). A :class:`~jwpipe.algorithms.imaging_wcs.GwcsAdapter` becomes
    ``meta.wcs``; with ``sip`` options (:func:`jwpipe.algorithms.imaging_wcs.sip_header`) a
    TAN-SIP fit to it replaces the header WCS, with ``sip=None`` the header is left alone.
    """
    from jwpipe.algorithms.imaging_wcs import GwcsAdapter, sip_header

    header = model.header("SCI")
    shape = model.shape
    if isinstance(wcs, GwcsAdapter):
        model.meta.wcs = wcs.gwcs
        new = None
        if sip is not None and shape is not None:
            try:
                new = sip_header(wcs.gwcs, shape[-2:], **sip)
            except (ValueError, RuntimeError) as exc:
                warnings.warn(f"{label(model)}: no TAN-SIP approximation of the gWCS written "
                              f"to the header ({exc})", RuntimeWarning, stacklevel=2)
    else:
        model.meta.wcs = None
        new = wcs.to_header(relax=True)
    if new is not None:
        for key in [k for k in header if _WCS_KEY.match(k)]:
            del header[key]
        for card in new.cards:
            if _WCS_KEY.match(card.keyword):
                header[card.keyword] = (card.value, card.comment)
        header["RADESYS"] = "ICRS"
    if shape is not None:
        model.meta.wcsinfo.s_region = footprint_region(wcs, shape[-2:])


def _deproject(xi: NDArray, eta: NDArray, ra0: float, dec0: float) -> tuple[NDArray, NDArray]:
    """Inverse gnomonic projection (xi, eta in arcsec) about (ra0, dec0), degrees out."""
    k = np.radians(1.0 / 3600.0)
    x, y = np.asarray(xi) * k, np.asarray(eta) * k
    d0 = np.radians(dec0)
    rho = np.hypot(x, y)
    c = np.arctan(rho)
    with np.errstate(invalid="ignore", divide="ignore"):
        dec = np.where(rho > 0, np.arcsin(np.cos(c) * np.sin(d0) + y * np.sin(c) * np.cos(d0)
                                          / np.where(rho > 0, rho, 1.0)), d0)
    ra = np.radians(ra0) + np.arctan2(x * np.sin(c), rho * np.cos(d0) * np.cos(c)
                                      - y * np.sin(d0) * np.sin(c))
    return np.degrees(ra) % 360.0, np.degrees(dec)


def rotate_shift_wcs(wcs: Any, shift_arcsec: NDArray, rotation_deg: float,
                     tangent_point: tuple[float, float]) -> Any:
    """Apply a tangent-plane correction ``p -> R(rotation) p + shift`` to a WCS.

    The correction is defined on the tangent plane about ``tangent_point`` (xi east, eta
    north, arcsec; :func:`jwpipe.algorithms.image_align.tangent_plane`). For an astropy WCS
    the reference point moves with it and the linear matrix rotates by the same angle; SIP
    terms (pixel domain) are unchanged. A gWCS gets the correction appended to its transform
    to ``world`` (exact on the whole image).
    """
    th = np.radians(rotation_deg)
    rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    return affine_wcs(wcs, rot, shift_arcsec, tangent_point)


def affine_wcs(wcs: Any, matrix: NDArray, shift_arcsec: NDArray,
               tangent_point: tuple[float, float]) -> Any:
    """Apply a tangent-plane correction ``p -> A p + shift`` (``fitgeometry='general'``) to a
    WCS. An astropy WCS: the reference point moves by it and the CD matrix becomes ``A @ CD``
    (the correction is linear on the tangent plane, so its linear part multiplies the
    pixel-to-plane one); SIP terms (pixel domain) are unchanged. A gWCS gets the correction
    appended to its transform to ``world`` (exact on the whole image).
    """
    from jwpipe.algorithms.image_align import tangent_plane
    from jwpipe.algorithms.imaging_wcs import GwcsAdapter, sky_correction

    a = np.asarray(matrix, dtype=np.float64)
    if isinstance(wcs, GwcsAdapter):
        return wcs.with_sky_correction(sky_correction(shift_arcsec, 0.0, tangent_point,
                                                      matrix=a))
    new = wcs.deepcopy()
    ra0, dec0 = tangent_point
    xi, eta = tangent_plane(new.wcs.crval[0], new.wcs.crval[1], ra0, dec0)
    p = a @ np.array([float(xi), float(eta)]) + np.asarray(shift_arcsec, dtype=np.float64)
    ra, dec = _deproject(p[:1], p[1:], ra0, dec0)
    cd = a @ (np.diag(new.wcs.get_cdelt()) @ new.wcs.get_pc())
    cdelt = new.wcs.get_cdelt().copy()
    if new.wcs.has_cd():
        new.wcs.cd = cd
    else:
        new.wcs.pc = np.diag(1.0 / cdelt) @ cd
    new.wcs.crval = [float(ra[0]), float(dec[0])]
    new.wcs.set()
    return new


# ----------------------------------------------------------------------------- output grids


def output_grid(wcs_list: list[Any], shapes: list[tuple[int, int]], *,
                pixel_scale: float | None = None, pixel_scale_ratio: float = 1.0,
                rotation: float | None = None, crval: tuple[float, float] | None = None,
                output_shape: tuple[int, int] | None = None,
                crpix: tuple[float, float] | None = None) -> tuple[Any, tuple[int, int]]:
    """A tangent-plane grid covering every member (jwst resample's grid options).

    ``pixel_scale`` is in arcsec (default: the first member's scale times
    ``pixel_scale_ratio``); ``rotation`` is the +y axis angle east of north (None: the first
    member's orientation); ``output_shape`` is (nx, ny) as in jwst, centred on the mosaic;
    ``crpix`` is the 0-based (x, y) pixel of the tangent point ``crval``, as in jwst (the
    grid then starts at pixel 0 and, without ``output_shape``, ends where the members' last
    pixels fall: parts of members left of or below pixel 0 are cut, as in jwst).
    """
    if pixel_scale is not None:
        scale = pixel_scale / 3600.0
    else:
        scale = pixel_scale_deg(wcs_list[0], shapes[0]) * pixel_scale_ratio
    angle = y_axis_angle(wcs_list[0], shapes[0]) if rotation is None else rotation
    wcs, shape = make_output_wcs(wcs_list, shapes, pixel_scale=scale, rotation=angle,
                                 crval=crval)
    if crpix is not None:
        wcs.wcs.crpix = [float(crpix[0]) + 1.0, float(crpix[1]) + 1.0]
        # from pixel 0 to the pixel holding the members' farthest corner
        points = np.concatenate([sky_footprint(w, s, 8) for w, s in zip(wcs_list, shapes,
                                                                         strict=True)])
        px, py = wcs.world_to_pixel_values(points[:, 0], points[:, 1])
        shape = (max(1, int(np.ceil(float(np.max(py)) + 0.5 - 1e-9))),
                 max(1, int(np.ceil(float(np.max(px)) + 0.5 - 1e-9))))
        wcs.pixel_shape = (shape[1], shape[0])
    if output_shape is not None:
        nx, ny = int(output_shape[0]), int(output_shape[1])
        if crpix is None:
            wcs.wcs.crpix = [wcs.wcs.crpix[0] + (nx - shape[1]) / 2.0,
                             wcs.wcs.crpix[1] + (ny - shape[0]) / 2.0]
        wcs.pixel_shape = (nx, ny)
        shape = (ny, nx)
    return wcs, shape


def member_weight(model: Any, weight_type: str | None, bad: NDArray[np.bool_]) -> Any:
    """Per-pixel drizzle weight of a member: ``ivm`` (1/VAR_RNOISE), ``exptime`` or 1."""
    from jwpipe.algorithms.image_resample import ivm_weights

    if weight_type == "ivm":
        w = ivm_weights(model.var_rnoise, bad)
        if not (w > 0).any():
            raise StepInputError(
                f"{label(model)}: weight_type='ivm' but VAR_RNOISE has no positive value")
        return w.astype(np.float32)
    if weight_type == "exptime":
        t = model.meta.exposure.exposure_time or model.meta.exposure.effective_exposure_time
        if not t:
            raise StepInputError(
                f"{label(model)}: weight_type='exptime' but XPOSURE/EFFEXPTM are not set")
        return np.where(bad, 0.0, float(t)).astype(np.float32)
    return (~bad).astype(np.float32)


def sky_offset(model: Any) -> float:
    """The sky level measured by skymatch but not subtracted (0 if none)."""
    bg = model.meta.background
    if bg.level is not None and not bg.subtracted:
        return float(bg.level)
    return 0.0
