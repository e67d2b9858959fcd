"""``PhotomStep``: convert an imaging exposure from DN/s to MJy/sr (jwst ``photom``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from jwpipe.algorithms.image_calib import Calibrated, apply_photom
from jwpipe.errors import ReferenceFileError, StepInputError
from jwpipe.steps._image_common import label, prepare_image
from jwpipe.steps.flat_field import store_calibrated
from jwpipe.stpipe import Step

__all__ = ["PhotomStep"]

#: MJy/sr -> microJy/arcsec^2.
MJYSR_TO_UJYA2 = 1e12 * (np.pi / (180.0 * 3600.0)) ** 2


class PhotomStep(Step):
    """Multiply SCI/ERR by PHOTMJSR (and variances by its square); attach the pixel area.

    The PHOTOM row is the one matching FILTER (and PUPIL when the table has that column).
    Writes BUNIT = MJy/sr, PHOTMJSR, PHOTUJA2, PIXAR_SR, PIXAR_A2 (from the AREA reference,
    else the PHOTOM reference) and the AREA extension (relative pixel area).
    """

    class_alias = "photom"
    spec = """
    inverse = boolean(default=False)  # Divide by the conversion instead (undo photom)
    """
    reference_file_types = ["photom", "area"]
    workflow_memory = (3.0, 150.0)

    def process(self, input: Any) -> Any:
        from jwpipe import datamodels

        model = prepare_image(self, input)
        bunit = (model.meta.bunit_data or "").strip()
        if not self.inverse and bunit.upper() == "MJY/SR":
            raise StepInputError(
                f"{self.qualified_name}: {label(model)} is already in MJy/sr (BUNIT); "
                "photom would apply the conversion twice")
        source = self.get_reference_file(model, "photom")
        if isinstance(source, str) and source in ("N/A", ""):
            self.log.warning("No photom reference applies: step skipped")
            self.record_step_status(model, "SKIPPED")
            return model
        phot = source if hasattr(source, "meta") else datamodels.PhotomModel(source)
        name = getattr(phot.meta, "filename", None) or str(source)
        inst = model.meta.instrument
        row = phot.find_row(inst.filter, inst.pupil)
        if row is None:
            raise ReferenceFileError(
                f"photom reference {name} has no row for FILTER={inst.filter} "
                f"PUPIL={inst.pupil}")
        conv = float(row["photmjsr"])
        if not np.isfinite(conv) or conv <= 0:
            raise ReferenceFileError(
                f"photom reference {name}: PHOTMJSR={conv} for FILTER={inst.filter} is not a "
                "positive number")
        pixar_sr = phot.meta.photometry.pixelarea_steradians
        pixar_a2 = phot.meta.photometry.pixelarea_arcsecsq
        area = self._area(model)
        if area is not None:
            pixar_sr = area[1] if area[1] is not None else pixar_sr
            pixar_a2 = area[2] if area[2] is not None else pixar_a2
            model.area = area[0]
        cal = Calibrated(model.data, model.err, model.dq, model.var_poisson, model.var_rnoise,
                         model.var_flat)
        store_calibrated(model, apply_photom(cal, conv, inverse=self.inverse))
        ph = model.meta.photometry
        if self.inverse:
            model.meta.bunit_data = model.meta.bunit_err = "DN/s"
        else:
            model.meta.bunit_data = model.meta.bunit_err = "MJy/sr"
            ph.conversion_megajanskys = conv
            ph.conversion_microjanskys = conv * MJYSR_TO_UJYA2
        if pixar_sr is not None:
            ph.pixelarea_steradians = float(pixar_sr)
        if pixar_a2 is not None:
            ph.pixelarea_arcsecsq = float(pixar_a2)
        self.log.info("PHOTMJSR = %g MJy/sr per DN/s (FILTER=%s PUPIL=%s)", conv, inst.filter,
                      inst.pupil)
        return model

    def _area(self, model: Any) -> tuple[np.ndarray, float | None, float | None] | None:
        from jwpipe import datamodels
        from jwpipe.references import check_reference_matches

        source = self.get_reference_file(model, "area")
        if isinstance(source, str) and source in ("N/A", ""):
            return None
        ref = source if hasattr(source, "meta") else datamodels.PixelAreaModel(source)
        try:
            name = getattr(ref.meta, "filename", None) or "area"
            ys, xs = check_reference_matches(ref.header("PRIMARY"), model.get_crds_parameters(),
                                             ref.data.shape, model.shape, name=name)
            ph = ref.meta.photometry
            return (np.array(ref.data[ys, xs], dtype=np.float32), ph.pixelarea_steradians,
                    ph.pixelarea_arcsecsq)
        finally:
            if ref is not source:
                ref.close()
