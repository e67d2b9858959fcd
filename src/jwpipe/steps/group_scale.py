"""``GroupScaleStep``: rescale ramps averaged on board with a power-of-two divisor."""

from __future__ import annotations

from typing import Any

from jwpipe.algorithms.group_scale import group_scale, group_scale_needed
from jwpipe.steps._common import check_ramp
from jwpipe.stpipe import Step

__all__ = ["GroupScaleStep"]


class GroupScaleStep(Step):
    """Multiply the ramp by FRMDIVSR/NFRAMES when the on-board divisor differs from NFRAMES.

    SKIPPED when NFRAMES is missing, when FRMDIVSR is missing and NFRAMES is a power of two,
    or when FRMDIVSR equals NFRAMES (the usual case).
    """

    class_alias = "group_scale"
    spec = """
    """
    reference_file_types: list[str] = []
    workflow_memory = (2.2, 150.0)

    def process(self, input: Any) -> Any:
        model = self.prepare_input(input)
        check_ramp(model, self.qualified_name)
        exp = model.meta.exposure
        nframes, divisor = exp.nframes, exp.frame_divisor
        if not group_scale_needed(nframes, divisor):
            self.log.info("NFRAMES=%s, FRMDIVSR=%s: no rescaling needed", nframes, divisor)
            self.record_step_status(model, "SKIPPED")
            return model
        factor = group_scale(model.data, int(nframes), None if divisor is None else int(divisor))
        self.log.info("Rescaled the ramp by FRMDIVSR/NFRAMES = %.6g", factor)
        return model
