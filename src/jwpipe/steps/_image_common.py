"""Helpers shared by the Image2/Image3 step classes.

* WCS in the SCI header: :func:`model_wcs` reads a celestial astropy WCS (TAN, optionally SIP)
  from the SCI header; :func:`set_model_wcs` writes one back (so it round-trips through FITS)
  together with ``S_REGION``.
* Members of a stage-3 product: :func:`load_members` turns an association, a list of files, a
  single file or a model into a lazy :class:`ModelContainer` of the science members and checks
  that they belong together (:func:`check_members`).
* :class:`Workspace`: member-to-member steps write each modified member to a temporary file
  and return a container of those paths, so N members never sit in memory at once.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import warnings
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from jwpipe.datamodels import ModelContainer, dqflags
from jwpipe.errors import AssociationError, DataModelError, StepInputError

__all__ = [
    "Workspace",
    "affine_wcs",
    "bad_pixel_mask",
    "check_members",
    "footprints_overlap",
    "group_ids",
    "label",
    "load_members",
    "map_members",
    "member_wcs_list",
    "member_weight",
    "model_wcs",
    "open_member",
    "output_grid",
    "product_name",
    "rotate_shift_wcs",
    "set_model_wcs",
    "sky_offset",
    "wcs_footprint_region",
    "y_axis_angle",
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
    return model


def bad_pixel_mask(dq: NDArray | None, shape: tuple[int, ...]) -> NDArray[np.bool_]:
    """True where DQ has DO_NOT_USE, NON_SCIENCE or REFERENCE_PIXEL set."""
    if dq is None:
        return np.zeros(shape, dtype=bool)
    return (np.asarray(dq).astype(np.uint32, copy=False) & np.uint32(BAD_BITS)) != 0


# ----------------------------------------------------------------------------- WCS


def model_wcs(model: Any, step: str = "") -> Any:
    """The celestial WCS stored in a model's SCI header (astropy ``WCS``).

    Raises
    ------
    StepInputError
        The header holds no celestial (RA/Dec) WCS.
    """
    from astropy.wcs import WCS, FITSFixedWarning

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


def set_model_wcs(model: Any, wcs: Any) -> None:
    """Write ``wcs`` (astropy WCS) into the model's SCI header, replacing any old WCS cards."""
    header = model.header("SCI")
    for key in [k for k in header if _WCS_KEY.match(k)]:
        del header[key]
    new = wcs.to_header(relax=True)
    for card in new.cards:
        if _WCS_KEY.match(card.keyword):
            header[card.keyword] = (card.value, card.comment)
    header["RADESYS"] = "ICRS"
    shape = model.shape
    if shape is not None:
        model.meta.wcsinfo.s_region = wcs_footprint_region(wcs, shape[-2:])


def wcs_footprint_region(wcs: Any, shape: tuple[int, int] | tuple[int, ...]) -> str:
    """``S_REGION`` polygon (ICRS degrees) of the outer pixel corners."""
    ny, nx = int(shape[-2]), int(shape[-1])
    xs = np.array([-0.5, nx - 0.5, nx - 0.5, -0.5])
    ys = np.array([-0.5, -0.5, ny - 0.5, ny - 0.5])
    ra, dec = wcs.all_pix2world(xs, ys, 0)
    return "POLYGON ICRS " + " ".join(f"{a:.9f} {d:.9f}" for a, d in zip(ra, dec, strict=True))


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
    north, arcsec; :func:`jwpipe.algorithms.image_align.tangent_plane`). The reference point
    moves with it and the linear matrix rotates by the same angle; SIP terms (pixel domain)
    are unchanged.
    """
    th = np.radians(rotation_deg)
    rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    return affine_wcs(wcs, rot, shift_arcsec, tangent_point)


def affine_wcs(wcs: Any, matrix: NDArray, shift_arcsec: NDArray,
               tangent_point: tuple[float, float]) -> Any:
    """Apply a tangent-plane correction ``p -> A p + shift`` (``fitgeometry='general'``) to a
    WCS: the reference point moves by it and the CD matrix becomes ``A @ CD`` (the correction
    is linear on the tangent plane, so its linear part multiplies the pixel-to-plane one);
    SIP terms (pixel domain) are unchanged.
    """
    from jwpipe.algorithms.image_align import tangent_plane

    new = wcs.deepcopy()
    ra0, dec0 = tangent_point
    xi, eta = tangent_plane(new.wcs.crval[0], new.wcs.crval[1], ra0, dec0)
    a = np.asarray(matrix, dtype=np.float64)
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


# ----------------------------------------------------------------------------- members


def load_members(input: Any, step: str) -> ModelContainer:
    """The science members of a stage-3 input as a lazy container.

    Parameters
    ----------
    input : str, os.PathLike, list, ModelContainer or DataModel
        An association ``.json`` (science members of its products), a FITS file, a list of
        files/models, a container or a model.
    step : str
        Step name for messages.

    Raises
    ------
    AssociationError
        The association has no science members, or member files are missing.
    """
    from jwpipe.datamodels.model_base import DataModel

    if isinstance(input, ModelContainer):
        container = input
    elif isinstance(input, DataModel):
        container = ModelContainer([input])
    elif isinstance(input, str | os.PathLike):
        path = os.fspath(input)
        if path.lower().endswith(".json"):
            from jwpipe.associations import load_asn

            asn = load_asn(path)
            missing = asn.missing_members()
            if missing:
                raise AssociationError(
                    f"{path}: member file(s) not found: "
                    + ", ".join(str(p) for p in missing[:5])
                    + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))
            container = ModelContainer(path, exptypes=["science"])
        else:
            container = ModelContainer([path])
    elif isinstance(input, list | tuple):
        try:
            container = ModelContainer(list(input))
        except DataModelError as exc:
            raise AssociationError(f"{step}: {exc}") from None
    else:
        raise StepInputError(f"{step}: cannot use a {type(input).__name__} as input")
    if len(container) == 0:
        raise AssociationError(f"{step}: the input has no science members")
    return container


def product_name(container: ModelContainer, default: str | None = None) -> str | None:
    """``products[0].name`` of the container's association, else ``default``."""
    asn = container.asn_table
    if asn:
        try:
            return str(asn["products"][0]["name"])
        except (KeyError, IndexError, TypeError):
            pass
    return default


def _observation_group(model: Any) -> str:
    obs = model.meta.observation
    parts = [obs.program_number, obs.observation_number, obs.visit_number,
             obs.visit_group, obs.sequence_id, obs.activity_id, obs.exposure_number]
    if all(p is None for p in parts):
        return label(model)
    return "jw{}{}{}_{}{}{}_{}".format(*["" if p is None else p for p in parts])


def group_ids(container: ModelContainer) -> list[str]:
    """Exposure group of each member: the association's ``group_id``, else from the headers.

    Members of one exposure (several detectors) share a group and are aligned as one unit.
    """
    explicit: list[str | None] = []
    asn = container.asn_table
    if asn:
        for product in asn.get("products", []):
            for member in product.get("members", []):
                if str(member.get("exptype", "science")).lower() == "science":
                    explicit.append(member.get("group_id"))
    if len(explicit) != len(container):
        explicit = [None] * len(container)
    out = []
    for i, gid in enumerate(explicit):
        if gid:
            out.append(str(gid))
            continue
        # headers only: arrays are read lazily, and the file closes when the model is freed
        out.append(_observation_group(container[i]))
    return out


def open_member(container: ModelContainer, index: int) -> Any:
    """Member ``index`` as a model this step may modify (a copy if the caller holds it).

    A lazy (path) member is opened fresh from its file; a model the caller put in the
    container is copied, so a step never changes the caller's objects.
    """
    model = container[index]
    # a path member is opened afresh on every access; a model member is the caller's object
    if not isinstance(container._members[index], str):
        return model.copy()
    return model


def check_members(container: ModelContainer, step: str, wcs: bool = False) -> Any:
    """Raise unless every member is a 2-D image of one instrument and filter.

    Headers only are read (one member at a time).

    Returns
    -------
    list of (ny, nx)
        The shape of each member; with ``wcs=True`` a tuple ``(shapes, wcs_list)``.
    """
    from jwpipe.datamodels import ImageModel

    keys: tuple[Any, ...] | None = None
    first = ""
    shapes: list[tuple[int, int]] = []
    wcss: list[Any] = []
    for i in range(len(container)):
        model = container[i]  # headers only; arrays are not read
        if not isinstance(model, ImageModel):
            raise StepInputError(
                f"{step}: member {label(model)} is a {type(model).__name__}; stage 3 "
                "needs 2-D calibrated images (ImageModel, _cal files)")
        inst = model.meta.instrument
        these = (inst.name, inst.filter, inst.pupil)
        if keys is None:
            keys, first = these, label(model)
        elif these != keys:
            raise StepInputError(
                f"{step}: member {label(model)} has INSTRUME/FILTER/PUPIL "
                f"{'/'.join(map(str, these))} but {first} has "
                f"{'/'.join(map(str, keys))}; one product must combine one instrument "
                "and filter")
        shape = model.shape
        if shape is None or len(shape) != 2:
            raise StepInputError(f"{step}: member {label(model)} has no 2-D SCI array")
        shapes.append((int(shape[0]), int(shape[1])))
        if wcs:
            wcss.append(model_wcs(model, step))
    return (shapes, wcss) if wcs else shapes


class Workspace:
    """A temporary directory for the members a step writes (removed with the container).

    Parameters
    ----------
    directory : str or None
        Where to create it (the step's ``output_dir``); None: the system temporary directory.
    tag : str
        Step name, part of the directory name.
    """

    def __init__(self, directory: str | None, tag: str) -> None:
        if directory:
            os.makedirs(directory, exist_ok=True)
        self.path = tempfile.mkdtemp(prefix=f".jwpipe_{tag}_", dir=directory or None)
        self._cleanup = weakref.finalize(self, shutil.rmtree, self.path, True)

    def store(self, model: Any, index: int, name: str | None = None) -> str:
        """Save ``model`` under its own file name in a per-member sub-directory."""
        base = os.path.basename(name or getattr(model.meta, "filename", None)
                                or f"member{index:05d}.fits")
        sub = os.path.join(self.path, f"{index:05d}")
        os.makedirs(sub, exist_ok=True)
        return model.save(os.path.join(sub, base))

    def container(self, paths: list[str], like: ModelContainer) -> ModelContainer:
        """A lazy container of ``paths`` that keeps this workspace alive."""
        out = ModelContainer(paths)
        out.exptypes = list(like.exptypes)
        out.asn_table = like.asn_table
        out.asn_table_name = like.asn_table_name
        out._jwpipe_workspace = self  # type: ignore[attr-defined]
        return out


def workspace_dir(step: Any) -> str | None:
    """Directory for a step's temporary members: its output_dir, else the system default."""
    out = step.search_attr("output_dir")
    return os.path.expanduser(out) if out else None


def map_members(step: Any, container: ModelContainer,
                func: Callable[[int, Any], None]) -> ModelContainer:
    """Apply ``func(index, model)`` to every member, one at a time; return the new container.

    Each modified member is written to a temporary file (see :class:`Workspace`), so memory
    holds one member at a time whatever the number of members.
    """
    ws = Workspace(workspace_dir(step), step.name)
    paths = []
    for i in range(len(container)):
        model = open_member(container, i)
        try:
            func(i, model)
            paths.append(ws.store(model, i))
        finally:
            model.close()
    return ws.container(paths, container)


# ----------------------------------------------------------------------------- output grids


def y_axis_angle(wcs: Any, shape: tuple[int, int]) -> float:
    """Position angle (degrees east of north) of an image's +y axis at its centre."""
    cy, cx = (shape[0] - 1) / 2.0, (shape[1] - 1) / 2.0
    ra, dec = wcs.all_pix2world([cx, cx], [cy, cy + 1.0], 0)
    d0 = np.radians(dec[0])
    dra = np.radians(ra[1] - ra[0]) * np.cos(d0)
    ddec = np.radians(dec[1] - dec[0])
    return float(np.degrees(np.arctan2(dra, ddec)))


def member_wcs_list(container: ModelContainer, step: str) -> list[Any]:
    """The WCS of every member (read from the headers only)."""
    return [model_wcs(container[i], step) for i in range(len(container))]


def output_grid(wcs_list: list[Any], shapes: list[tuple[int, int]], *,
                pixel_scale: float | None = None, pixel_scale_ratio: float = 1.0,
                rotation: float | None = None, crval: tuple[float, float] | None = None,
                output_shape: tuple[int, int] | None = None) -> tuple[Any, tuple[int, int]]:
    """A tangent-plane grid covering every member (jwst resample's grid options).

    ``pixel_scale`` is in arcsec (default: the first member's scale times
    ``pixel_scale_ratio``); ``rotation`` is the +y axis angle east of north (None: the first
    member's orientation); ``output_shape`` is (nx, ny) as in jwst, centred on the mosaic.
    """
    from jwpipe.algorithms.image_resample import make_output_wcs, pixel_scale_deg

    if pixel_scale is not None:
        scale = pixel_scale / 3600.0
    else:
        scale = pixel_scale_deg(wcs_list[0], shapes[0]) * pixel_scale_ratio
    angle = y_axis_angle(wcs_list[0], shapes[0]) if rotation is None else rotation
    wcs, shape = make_output_wcs(wcs_list, shapes, pixel_scale=scale, rotation=angle,
                                 crval=crval)
    if output_shape is not None:
        nx, ny = int(output_shape[0]), int(output_shape[1])
        wcs.wcs.crpix = [wcs.wcs.crpix[0] + (nx - shape[1]) / 2.0,
                         wcs.wcs.crpix[1] + (ny - shape[0]) / 2.0]
        wcs.pixel_shape = (nx, ny)
        shape = (ny, nx)
    return wcs, shape


def footprints_overlap(wcs_list: list[Any], shapes: list[tuple[int, int]], out_wcs: Any,
                       groups: list[str] | None = None) -> list[int]:
    """Indices of members whose footprint overlaps no other member's (on ``out_wcs``); with
    ``groups``, only members of other exposure groups count (detectors of one exposure do not
    see the same sky)."""
    boxes = []
    for w, s in zip(wcs_list, shapes, strict=True):
        ny, nx = s
        ra, dec = w.all_pix2world([-0.5, nx - 0.5, nx - 0.5, -0.5],
                                  [-0.5, -0.5, ny - 0.5, ny - 0.5], 0)
        x, y = out_wcs.all_world2pix(ra, dec, 0)
        boxes.append((x.min(), x.max(), y.min(), y.max()))
    lonely = []
    for i, a in enumerate(boxes):
        if not any(j != i and (groups is None or groups[j] != groups[i])
                   and a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]
                   for j, b in enumerate(boxes)):
            lonely.append(i)
    return lonely


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
