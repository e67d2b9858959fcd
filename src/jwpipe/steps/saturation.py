"""``SaturationStep``: flag saturated and A/D-floor groups (raw DN, before superbias)."""

from __future__ import annotations

from typing import Any

from jwpipe.algorithms.saturation import flag_saturation
from jwpipe.steps._common import check_ramp, cut, load_reference
from jwpipe.stpipe import Step

__all__ = ["SaturationStep"]


class SaturationStep(Step):
    """Flag groups at or above the SATURATION reference threshold (and all later groups).

    Saturation is grown by ``n_pix_grow_sat`` pixels; values <= 0 get AD_FLOOR|DO_NOT_USE;
    with frame-averaged groups (NFRAMES > 1) and ``use_readpatt`` the group before the first
    saturated one is flagged DO_NOT_USE when its last frames probably saturated.
    """

    class_alias = "saturation"
    spec = """
    n_pix_grow_sat = integer(default=1)  # Number of neighbouring pixels to also flag as saturated
    use_readpatt = boolean(default=True)  # Use the readout pattern
    """
    reference_file_types = ["saturation"]
    workflow_memory = (2.3, 150.0)

    def process(self, input: Any) -> Any:
        from jwpipe.datamodels import SaturationModel

        model = self.prepare_input(input)
        check_ramp(model, self.qualified_name)
        loaded = load_reference(self, model, "saturation", SaturationModel, "data")
        if loaded is None:
            self.log.warning("No saturation reference applies: step skipped")
            self.record_step_status(model, "SKIPPED")
            return model
        ref, slices = loaded
        exp = model.meta.exposure
        zeroframe = model.zeroframe if exp.zero_frame else None
        ref_dq = cut(ref.dq, slices) if ref.has_array("dq") else None
        n = flag_saturation(
            model.data, model.groupdq, model.pixeldq, cut(ref.data, slices), ref_dq,
            n_pix_grow_sat=self.n_pix_grow_sat, use_readpatt=self.use_readpatt,
            nframes=int(exp.nframes or 1), groupgap=int(exp.groupgap or 0), zeroframe=zeroframe,
        )
        self.log.info("%d pixels saturated in at least one group", n)
        return model
