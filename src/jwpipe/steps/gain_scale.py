"""``GainScaleStep``: scale rate products by the gain factor (GAINFACT)."""

from __future__ import annotations

from typing import Any

from jwpipe.algorithms.gain_scale import gain_scale
from jwpipe.steps._common import check_rate_product
from jwpipe.stpipe import Step

__all__ = ["GainScaleStep"]


class GainScaleStep(Step):
    """Multiply SCI and ERR by GAINFACT and the variances by its square.

    GAINFACT comes from ``meta.exposure.gain_factor`` (set by ramp_fit), else from the gain
    reference's header; SKIPPED when neither has one.
    """

    class_alias = "gain_scale"
    spec = """
    """
    reference_file_types = ["gain"]
    workflow_memory = (2.2, 150.0)

    def process(self, input: Any) -> Any:
        model = self.prepare_input(input)
        check_rate_product(model, self.qualified_name)
        factor = model.meta.exposure.gain_factor
        if factor is None:
            factor = self._factor_from_reference(model)
        if factor is None:
            self.log.info("No GAINFACT in the data or the gain reference: step skipped")
            self.record_step_status(model, "SKIPPED")
            return model
        model.meta.exposure.gain_factor = float(factor)
        gain_scale(model.data, model.err, model.var_poisson, model.var_rnoise, float(factor))
        self.log.info("Scaled by GAINFACT = %g", factor)
        return model

    def _factor_from_reference(self, model: Any) -> float | None:
        from jwpipe import datamodels
        from jwpipe.stpipe.step import is_datamodel

        source = self.get_reference_file(model, "gain")
        if isinstance(source, str) and source in ("N/A", ""):
            return None
        if is_datamodel(source):
            return source.meta.exposure.gain_factor
        with datamodels.open(source) as ref:
            return ref.meta.exposure.gain_factor
