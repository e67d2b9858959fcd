"""``AssignWcsStep``: the WCS of each exposure from its distortion reference and pointing.

With an ASDF ``distortion`` reference (the format CRDS serves, written by ``stdatamodels``) the
WCS is a gWCS built as jwst builds the imaging WCS (:mod:`jwpipe.algorithms.imaging_wcs`):
detector -> ``v2v3`` through the reference's transform, preceded by the ``filteroffset`` shift
for the exposure's FILTER/PUPIL and by the subarray origin (SUBSTRT1/2); ``v2v3`` ->
``v2v3vacorr`` by the velocity-aberration scale VA_SCALE about (V2_REF, V3_REF); then to ICRS by
the pointing V2_REF, V3_REF, ROLL_REF, RA_REF, DEC_REF. The gWCS is stored as ``meta.wcs`` (the
ASDF extension, where jwst stores it) and, with ``sip_approx`` (default), a TAN-SIP fit to it
(jwst's ``sip_*`` parameters and defaults) is written into the SCI header for FITS readers.

``distortion`` ``N/A`` gives a distortion-free gnomonic (TAN) WCS instead: the reference pixel
(CRPIX1/2 of the SCI header, else the array centre) points at ``RA_REF, DEC_REF``; the +y axis
lies at ``ROLL_REF - VPARITY * V3I_YANG`` degrees east of north, x flipped for ``VPARITY = -1``;
the scale is CDELT1/2 of the header (else the instrument's nominal scale) times ``VA_SCALE``.
A FITS distortion reference carrying SIP polynomials (``A_ORDER``/``B_ORDER``, ``A_i_j``...
in its primary or first extension header) adds them to that TAN WCS (``RA---TAN-SIP``).

The header WCS (CTYPE, CRPIX, CRVAL, CDELT, PC, SIP) and ``S_REGION`` round-trip through the
file; later steps read the gWCS when there is one, else the header
(:func:`jwpipe.steps._image_common.model_wcs`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jwpipe.errors import ReferenceFileError, StepInputError
from jwpipe.steps._image_common import label, set_model_wcs
from jwpipe.stpipe import Step

__all__ = ["AssignWcsStep", "distortion_free_wcs"]

#: Nominal pixel scales (arcsec) used when the header has no CDELT.
NOMINAL_SCALE = {
    ("NIRCAM", "SHORT"): 0.031,
    ("NIRCAM", "LONG"): 0.063,
    ("NIRISS", None): 0.0656,
    ("MIRI", None): 0.11,
    ("FGS", None): 0.069,
}


def distortion_free_wcs(ra_ref: float, dec_ref: float, roll_ref: float, crpix: tuple[float, float],
                        scale_deg: float, vparity: int = -1, v3yangle: float = 0.0) -> Any:
    """The TAN WCS of an exposure from its pointing (angles in degrees, crpix 1-based)."""
    from astropy.wcs import WCS

    angle = np.radians(roll_ref - vparity * v3yangle)
    c, s = np.cos(angle), np.sin(angle)
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.cunit = ["deg", "deg"]
    wcs.wcs.crval = [float(ra_ref), float(dec_ref)]
    wcs.wcs.crpix = [float(crpix[0]), float(crpix[1])]
    wcs.wcs.cdelt = [scale_deg, scale_deg]
    wcs.wcs.pc = [[vparity * c, s], [-vparity * s, c]]
    wcs.wcs.radesys = "ICRS"
    wcs.wcs.set()
    return wcs


class AssignWcsStep(Step):
    """Attach the exposure's WCS: a gWCS from an ASDF distortion reference, else TAN(-SIP)."""

    class_alias = "assign_wcs"
    spec = """
    sip_approx = boolean(default=True)  # Write a TAN-SIP fit of the gWCS into the SCI header
    sip_max_pix_error = float(default=0.01)  # Largest forward error of the SIP fit (pixels)
    sip_degree = integer(max=6, default=None)  # Degree of the forward SIP fit; None: best
    sip_max_inv_pix_error = float(default=0.01)  # Largest inverse error of the SIP fit (pixels)
    sip_inv_degree = integer(max=6, default=None)  # Degree of the inverse SIP fit; None: best
    sip_npoints = integer(default=12)  # Fitting grid points per axis
    """
    reference_file_types = ["distortion", "filteroffset"]
    workflow_memory = (2.0, 150.0)

    def process(self, input: Any) -> Any:
        from jwpipe.datamodels import CubeModel, ImageModel

        model = self.prepare_input(input)
        if not isinstance(model, ImageModel | CubeModel):
            raise StepInputError(
                f"{self.qualified_name}: {label(model)} is a {type(model).__name__}; "
                "assign_wcs needs a rate/rateints image")
        ref = self.get_reference_file(model, "distortion")
        if _is_asdf_reference(ref):
            self._assign_gwcs(model, ref)
            return model
        wcs = self._pointing_wcs(model)
        if isinstance(ref, str) and ref not in ("N/A", ""):
            self._add_sip(wcs, ref)
        set_model_wcs(model, wcs)
        self.log.info("WCS at RA_REF=%.7f DEC_REF=%.7f, %s", wcs.wcs.crval[0],
                      wcs.wcs.crval[1], "TAN-SIP" if wcs.sip is not None else "TAN")
        return model

    def _assign_gwcs(self, model: Any, ref: Any) -> None:
        from jwpipe.algorithms import imaging_wcs
        from jwpipe.datamodels import DistortionModel, FilteroffsetModel
        from jwpipe.errors import DataModelError

        wi = model.meta.wcsinfo
        values = {"V2_REF": wi.v2_ref, "V3_REF": wi.v3_ref, "ROLL_REF": wi.roll_ref,
                  "RA_REF": wi.ra_ref, "DEC_REF": wi.dec_ref}
        missing = [k for k, v in values.items() if v is None]
        if missing:
            raise StepInputError(
                f"{self.qualified_name}: {label(model)} lacks the pointing keyword(s) "
                f"{', '.join(missing)} in its SCI header; cannot build a WCS")
        try:
            dist = ref if isinstance(ref, DistortionModel) else DistortionModel(ref)
        except DataModelError as exc:
            raise ReferenceFileError(f"distortion reference: {exc}") from None
        offset = None
        fo_ref = self.get_reference_file(model, "filteroffset")
        inst = model.meta.instrument
        if isinstance(fo_ref, FilteroffsetModel) or (isinstance(fo_ref, str)
                                                     and fo_ref not in ("N/A", "")):
            try:
                fo = fo_ref if isinstance(fo_ref, FilteroffsetModel) else FilteroffsetModel(fo_ref)
            except DataModelError as exc:
                raise ReferenceFileError(f"filteroffset reference: {exc}") from None
            offset = fo.find_offset(inst.filter, inst.pupil)
            self.log.info("Filter offset for %s/%s: %s", inst.filter, inst.pupil,
                          "none" if offset is None else f"column {offset[0]}, row {offset[1]}")
        sub = model.meta.subarray
        origin = (int(sub.xstart or 1), int(sub.ystart or 1))
        va = model.meta.velocity_aberration.scale_factor
        shape = model.shape[-2:]
        gwcs = imaging_wcs.imaging_gwcs(
            imaging_wcs.detector_to_v2v3(dist.model, offset, origin),
            imaging_wcs.velocity_aberration(va, wi.v2_ref, wi.v3_ref),
            imaging_wcs.v2v3_to_sky(wi.v2_ref, wi.v3_ref, wi.roll_ref, wi.ra_ref, wi.dec_ref),
            shape)
        set_model_wcs(model, imaging_wcs.GwcsAdapter(gwcs, shape), sip=self._sip_options())
        self.log.info("gWCS detector -> v2v3 -> v2v3vacorr -> world at V2_REF=%.3f V3_REF=%.3f "
                      "-> RA_REF=%.7f DEC_REF=%.7f%s", wi.v2_ref, wi.v3_ref, wi.ra_ref,
                      wi.dec_ref, ", TAN-SIP header" if self.sip_approx else "")

    def _sip_options(self) -> dict[str, Any] | None:
        if not self.sip_approx:
            return None
        return {"max_pix_error": self.sip_max_pix_error, "degree": self.sip_degree,
                "max_inv_pix_error": self.sip_max_inv_pix_error,
                "inv_degree": self.sip_inv_degree, "npoints": self.sip_npoints}

    def _pointing_wcs(self, model: Any) -> Any:
        wi = model.meta.wcsinfo
        values = {"RA_REF": wi.ra_ref, "DEC_REF": wi.dec_ref, "ROLL_REF": wi.roll_ref}
        missing = [k for k, v in values.items() if v is None]
        if missing:
            raise StepInputError(
                f"{self.qualified_name}: {label(model)} lacks the pointing keyword(s) "
                f"{', '.join(missing)} in its SCI header; cannot build a WCS")
        ny, nx = model.shape[-2:]
        crpix = (wi.crpix1 if wi.crpix1 is not None else (nx + 1) / 2.0,
                 wi.crpix2 if wi.crpix2 is not None else (ny + 1) / 2.0)
        scale = self._scale_deg(model)
        va = model.header("SCI").get("VA_SCALE", 1.0)
        try:
            va = float(va)
        except (TypeError, ValueError):
            va = 1.0
        vparity = int(wi.vparity) if wi.vparity is not None else -1
        return distortion_free_wcs(wi.ra_ref, wi.dec_ref, wi.roll_ref, crpix, scale * va,
                                   vparity, float(wi.v3yangle or 0.0))

    def _scale_deg(self, model: Any) -> float:
        wi = model.meta.wcsinfo
        if wi.cdelt1 is not None and wi.cdelt2 is not None:
            return float(np.sqrt(abs(wi.cdelt1 * wi.cdelt2)))
        inst = (model.meta.instrument.name or "").upper()
        channel = (model.meta.instrument.channel or "").upper() or None
        scale = NOMINAL_SCALE.get((inst, channel)) or NOMINAL_SCALE.get((inst, None))
        if scale is None:
            raise StepInputError(
                f"{self.qualified_name}: {label(model)} has no CDELT1/2 and instrument "
                f"{inst or '?'} has no nominal pixel scale")
        return scale / 3600.0

    def _add_sip(self, wcs: Any, path: str) -> None:
        from astropy.io import fits
        from astropy.wcs import Sip

        try:
            with fits.open(path) as hdul:
                headers = [h.header for h in hdul[:2]]
        except OSError as exc:
            raise ReferenceFileError(f"distortion reference {path}: cannot read ({exc})") from None
        header = next((h for h in headers if "A_ORDER" in h and "B_ORDER" in h), None)
        if header is None:
            raise ReferenceFileError(
                f"distortion reference {path}: no SIP polynomial (A_ORDER/B_ORDER); jwpipe "
                "reads ASDF distortion references (CRDS format) or FITS SIP headers; "
                "use override_distortion='N/A' for a distortion-free WCS")
        if not self.sip_approx:
            return

        def coeffs(prefix: str) -> np.ndarray | None:
            key = f"{prefix}_ORDER"
            if key not in header:
                return None
            order = int(header[key])
            out = np.zeros((order + 1, order + 1))
            for i in range(order + 1):
                for j in range(order + 1 - i):
                    out[i, j] = float(header.get(f"{prefix}_{i}_{j}", 0.0))
            return out

        a, b = coeffs("A"), coeffs("B")
        wcs.sip = Sip(a, b, coeffs("AP"), coeffs("BP"), wcs.wcs.crpix)
        wcs.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"]
        wcs.wcs.set()


def _is_asdf_reference(ref: Any) -> bool:
    from jwpipe.datamodels import DistortionModel

    if isinstance(ref, DistortionModel):
        return True
    return isinstance(ref, str) and ref.lower().endswith(".asdf")
