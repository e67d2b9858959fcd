"""``Detector1Pipeline`` (``calwebb_detector1``): uncalibrated ramps to count-rate images."""

from __future__ import annotations

from typing import Any

from jwpipe.errors import StepInputError
from jwpipe.steps.dark_current import DarkCurrentStep
from jwpipe.steps.dq_init import DQInitStep
from jwpipe.steps.gain_scale import GainScaleStep
from jwpipe.steps.group_scale import GroupScaleStep
from jwpipe.steps.jump import JumpStep
from jwpipe.steps.linearity import LinearityStep
from jwpipe.steps.ramp_fit import RampFitStep
from jwpipe.steps.refpix import RefPixStep
from jwpipe.steps.saturation import SaturationStep
from jwpipe.steps.superbias import SuperbiasStep
from jwpipe.stpipe import Pipeline
from jwpipe.stpipe.pipeline import EndStage

__all__ = ["Detector1Pipeline"]


class Detector1Pipeline(Pipeline):
    """Stage-1 processing of near-IR ramps: ``_uncal`` to ``_rate`` and ``_rateints``.

    Runs ``step_defs`` in order (the near-IR order jwst executes them): group_scale, dq_init,
    saturation, superbias, refpix, linearity, dark_current, jump, [save ``_ramp`` if
    ``save_calibrated_ramp``], ramp_fit, gain_scale (on the rate and on the rateints
    product). Returns the rate ImageModel (the ramp when ramp_fit is skipped); rateints is
    saved with suffix ``rateints`` whenever results are saved.
    """

    class_alias = "calwebb_detector1"
    spec = """
    save_calibrated_ramp = boolean(default=False)  # Save the calibrated ramp (_ramp)
    """
    step_defs = {
        "group_scale": GroupScaleStep,
        "dq_init": DQInitStep,
        "saturation": SaturationStep,
        "superbias": SuperbiasStep,
        "refpix": RefPixStep,
        "linearity": LinearityStep,
        "dark_current": DarkCurrentStep,
        "jump": JumpStep,
        "ramp_fit": RampFitStep,
        "gain_scale": GainScaleStep,
    }
    workflow_input_suffix = "uncal"
    workflow_product_suffixes = ("rate", "rateints")
    workflow_group = "detector1"

    def stage_input(self, input: Any) -> Any:
        from jwpipe._malloc import tune_allocator
        from jwpipe.datamodels import RampModel

        tune_allocator()
        model = self.prepare_input(input)
        if not isinstance(model, RampModel):
            raise StepInputError(
                f"{self.qualified_name}: {getattr(model.meta, 'filename', None) or input} is a "
                f"{type(model).__name__}; calwebb_detector1 needs an _uncal ramp (RampModel)")
        instrument = (model.meta.instrument.name or "").upper()
        if instrument == "MIRI":
            raise StepInputError(
                f"{self.qualified_name}: MIRI ramps are not supported (jwpipe implements the "
                "near-IR Detector1 chain)")
        return model

    def after_step(self, name: str, before: list[Any], after: list[Any]) -> list[Any]:
        if name == "jump" and self.save_calibrated_ramp:
            self.save_model(after[0], suffix="ramp", force=True)
        if name == "ramp_fit" and self.ramp_fit.skip:
            self.log.info("ramp_fit skipped: the result is the calibrated ramp")
            self._result_suffix = "ramp"
            return EndStage(after)
        return after
