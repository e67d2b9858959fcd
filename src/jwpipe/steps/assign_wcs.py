"""``AssignWcsStep``: a celestial WCS for each exposure from its pointing keywords.

The WCS is a gnomonic (TAN) projection: the reference pixel (CRPIX1/2 of the SCI header,
else the array centre) points at ``RA_REF, DEC_REF``; the detector +y axis lies at
``ROLL_REF - VPARITY * V3I_YANG`` degrees east of north, with x flipped for ``VPARITY = -1``
(the jwst distortion-free imaging WCS); the pixel scale is CDELT1/2 of the header (else the
instrument's nominal scale) times the velocity-aberration scale ``VA_SCALE``.

Distortion: the ``distortion`` reference. ``N/A`` gives the distortion-free WCS. A FITS
distortion reference carrying SIP polynomials (``A_ORDER``/``B_ORDER`` with ``A_i_j``,
``B_i_j`` and optionally ``AP_``/``BP_`` in its primary or first extension header) adds them
(``RA---TAN-SIP``). jwst's ASDF gWCS distortion models are not supported and are rejected
with an error rather than ignored.

The WCS is written into the SCI header (CTYPE, CRPIX, CRVAL, CDELT, PC, SIP, ``S_REGION``),
so it round-trips through the file and every later step reads it from there.
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
    """Attach a celestial WCS (TAN, optionally TAN-SIP) to an exposure's SCI header."""

    class_alias = "assign_wcs"
    spec = """
    sip_approx = boolean(default=True)  # Keep the SIP terms of a SIP distortion reference
    """
    reference_file_types = ["distortion"]
    workflow_memory = (2.0, 150.0)

    def process(self, input: Any) -> Any:
        from jwpipe.datamodels import CubeModel, ImageModel

        model = self.prepare_input(input)
        if not isinstance(model, ImageModel | CubeModel):
            raise StepInputError(
                f"{self.qualified_name}: {label(model)} is a {type(model).__name__}; "
                "assign_wcs needs a rate/rateints image")
        wcs = self._pointing_wcs(model)
        ref = self.get_reference_file(model, "distortion")
        if isinstance(ref, str) and ref not in ("N/A", ""):
            self._add_sip(wcs, ref)
        set_model_wcs(model, wcs)
        self.log.info("WCS at RA_REF=%.7f DEC_REF=%.7f, %s", wcs.wcs.crval[0],
                      wcs.wcs.crval[1], "TAN-SIP" if wcs.sip is not None else "TAN")
        return model

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
                "reads distortion only in FITS SIP form (ASDF gWCS models are not supported); "
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
