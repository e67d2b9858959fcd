"""``LinearityStep``: classical polynomial non-linearity correction."""

from __future__ import annotations

from typing import Any

from jwpipe.algorithms.linearity import correct_linearity
from jwpipe.steps._common import check_ramp, cut, load_reference
from jwpipe.stpipe import Step

__all__ = ["LinearityStep"]


class LinearityStep(Step):
    """Apply ``sum_k COEFFS[k] * DN**k`` to every unsaturated group.

    Pixels with NO_LIN_CORR, a NaN coefficient or a zero linear term are left uncorrected and
    flagged NO_LIN_CORR. The read-level correction jwst uses with INV_COEFFS for NFRAMES > 1
    is not implemented: the classical group-level correction is applied in all cases.
    """

    class_alias = "linearity"
    spec = """
    """
    reference_file_types = ["linearity"]
    workflow_memory = (2.3, 150.0)

    def process(self, input: Any) -> Any:
        from jwpipe.datamodels import LinearityModel

        model = self.prepare_input(input)
        check_ramp(model, self.qualified_name)
        loaded = load_reference(self, model, "linearity", LinearityModel, "coeffs")
        if loaded is None:
            self.log.warning("No linearity reference applies: step skipped")
            self.record_step_status(model, "SKIPPED")
            return model
        ref, slices = loaded
        lin_dq = cut(ref.dq, slices) if ref.has_array("dq") else None
        correct_linearity(model.data, model.groupdq, model.pixeldq, cut(ref.coeffs, slices),
                          lin_dq)
        return model
