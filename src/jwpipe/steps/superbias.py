"""``SuperbiasStep``: subtract the superbias reference from every group."""

from __future__ import annotations

from typing import Any

from jwpipe.algorithms.superbias import subtract_superbias
from jwpipe.steps._common import check_ramp, cut, load_reference
from jwpipe.stpipe import Step

__all__ = ["SuperbiasStep"]


class SuperbiasStep(Step):
    """Subtract the SUPERBIAS reference (NaN counts as 0) and OR its DQ into PIXELDQ."""

    class_alias = "superbias"
    spec = """
    """
    reference_file_types = ["superbias"]
    workflow_memory = (2.2, 150.0)

    def process(self, input: Any) -> Any:
        from jwpipe.datamodels import SuperBiasModel

        model = self.prepare_input(input)
        check_ramp(model, self.qualified_name)
        loaded = load_reference(self, model, "superbias", SuperBiasModel, "data")
        if loaded is None:
            self.log.warning("No superbias reference applies: step skipped")
            self.record_step_status(model, "SKIPPED")
            return model
        ref, slices = loaded
        zeroframe = model.zeroframe if model.meta.exposure.zero_frame else None
        bias_dq = cut(ref.dq, slices) if ref.has_array("dq") else None
        subtract_superbias(model.data, model.pixeldq, cut(ref.data, slices), bias_dq, zeroframe)
        return model
