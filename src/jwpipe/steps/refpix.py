"""``RefPixStep``: near-IR reference-pixel correction ("median" algorithm)."""

from __future__ import annotations

from typing import Any

from jwpipe.algorithms.refpix import correct_refpix
from jwpipe.errors import StepInputError, ValidationError
from jwpipe.steps._common import check_ramp
from jwpipe.stpipe import Step

__all__ = ["RefPixStep"]


class RefPixStep(Step):
    """Subtract bias drifts measured in the reference rows and columns from every group.

    Near-IR, non-IRS2 data with the "median" algorithm: per amplifier and column parity the
    sigma-clipped mean of the top and bottom reference rows, then a running median of the side
    reference columns. The IRS2 and SIRS variants, and MIRI reference pixels, are not
    implemented (their parameters are accepted for parameter-file compatibility). SKIPPED when
    the data have no reference pixels.
    """

    class_alias = "refpix"
    spec = """
    odd_even_columns = boolean(default=True)  # Separate even/odd columns
    use_side_ref_pixels = boolean(default=True)  # Use side reference pixels
    side_smoothing_length = integer(default=11)  # Side running-median rows
    side_gain = float(default=1.0)  # Side correction factor
    odd_even_rows = boolean(default=True)  # MIRI only (not implemented): separate odd and even rows
    ovr_corr_mitigation_ftr = float(default=3.0)  # IRS2 only (not implemented)
    preserve_irs2_refpix = boolean(default=False)  # IRS2 only (not implemented)
    irs2_mean_subtraction = boolean(default=False)  # IRS2 only (not implemented)
    refpix_algorithm = option("median", "sirs", default="median")  # Only median exists
    sigreject = float(default=4.0)  # SIRS only (not implemented)
    gaussmooth = float(default=1.0)  # SIRS only (not implemented)
    halfwidth = integer(default=30)  # SIRS only (not implemented)
    """
    reference_file_types: list[str] = []
    workflow_memory = (2.4, 200.0)

    def process(self, input: Any) -> Any:
        model = self.prepare_input(input)
        check_ramp(model, self.qualified_name)
        if self.refpix_algorithm != "median":
            raise ValidationError(
                f"{self.qualified_name}: refpix_algorithm='{self.refpix_algorithm}' is not "
                "implemented in jwpipe; use 'median'"
            )
        instrument = (model.meta.instrument.name or "").upper()
        readpatt = (model.meta.exposure.readpatt or "").upper()
        if instrument == "MIRI" or "IRS2" in readpatt:
            raise StepInputError(
                f"{self.qualified_name}: reference-pixel correction of {instrument or '?'} "
                f"{readpatt or ''} data is not implemented (near-IR, non-IRS2 only)"
            )
        sub = model.meta.subarray
        done = correct_refpix(
            model.data, model.pixeldq,
            odd_even_columns=self.odd_even_columns,
            use_side_ref_pixels=self.use_side_ref_pixels,
            side_smoothing_length=self.side_smoothing_length,
            side_gain=self.side_gain,
            noutputs=int(model.meta.exposure.noutputs or 1),
            fastaxis=int(sub.fastaxis or 1),
            slowaxis=int(sub.slowaxis or 2),
        )
        if not done:
            self.log.info("No reference pixels in the data: step skipped")
            self.record_step_status(model, "SKIPPED")
        return model
