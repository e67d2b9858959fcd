"""``FlatFieldStep``: divide an imaging exposure by its flat field (jwst ``flat_field``)."""

from __future__ import annotations

from typing import Any

from jwpipe.algorithms.image_calib import apply_flat
from jwpipe.errors import ReferenceFileError
from jwpipe.steps._image_common import prepare_image
from jwpipe.stpipe import Step

__all__ = ["FlatFieldStep", "store_calibrated"]


def store_calibrated(model: Any, cal: Any) -> None:
    """Put the arrays of a :class:`~jwpipe.algorithms.image_calib.Calibrated` into a model."""
    model.data = cal.sci
    model.err = cal.err
    model.dq = cal.dq
    model.var_poisson = cal.var_poisson
    model.var_rnoise = cal.var_rnoise
    model.var_flat = cal.var_flat


class FlatFieldStep(Step):
    """Flat-field an imaging exposure.

    SCI is divided by the FLAT reference (cut to the subarray); VAR_POISSON and VAR_RNOISE by
    its square; VAR_FLAT = SCI² (flat ERR / flat)²; ERR is recomputed from the variances.
    Flat pixels that are NaN, zero or NO_FLAT_FIELD are not applied and flag the data
    DO_NOT_USE | NO_FLAT_FIELD; the flat's DQ is OR'd into the data's.
    """

    class_alias = "flat_field"
    spec = """
    user_supplied_flat = string(default=None)  # A flat file to use instead of the reference
    inverse = boolean(default=False)  # Multiply by the flat instead (undo a flat field)
    """
    reference_file_types = ["flat"]
    workflow_memory = (3.0, 150.0)

    def process(self, input: Any) -> Any:
        from jwpipe import datamodels

        model = prepare_image(self, input)
        if self.user_supplied_flat:
            source: Any = self.make_input_path(self.user_supplied_flat)
            self._reference_files_used.append(("flat", source))
        else:
            source = self.get_reference_file(model, "flat")
        if isinstance(source, str) and source in ("N/A", ""):
            self.log.warning("No flat reference applies: step skipped")
            self.record_step_status(model, "SKIPPED")
            return model
        flat = source if hasattr(source, "meta") else datamodels.FlatModel(source)
        try:
            ys, xs = self._cut(flat, model)
            cal = apply_flat(model.data, model.err, model.dq, model.var_poisson,
                             model.var_rnoise, flat.data[ys, xs], flat.err[ys, xs],
                             flat.dq[ys, xs], inverse=self.inverse)
        finally:
            if flat is not source:
                flat.close()
        store_calibrated(model, cal)
        return model

    def _cut(self, flat: Any, model: Any) -> tuple[slice, slice]:
        from jwpipe.references import check_reference_matches

        name = getattr(flat.meta, "filename", None) or "flat"
        ys, xs = check_reference_matches(flat.header("PRIMARY"), model.get_crds_parameters(),
                                         flat.data.shape, model.shape, name=name)
        inst = model.meta.instrument
        for key, value in (("FILTER", inst.filter), ("PUPIL", inst.pupil)):
            ref_value = flat.header("PRIMARY").get(key)
            if ref_value not in (None, "", "ANY", "N/A") and value is not None and \
                    str(ref_value).strip().upper() != str(value).strip().upper():
                raise ReferenceFileError(
                    f"flat {name}: {key}={ref_value} does not match the data's {key}={value}")
        return ys, xs
