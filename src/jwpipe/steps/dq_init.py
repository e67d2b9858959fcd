"""``DQInitStep``: merge the bad-pixel mask into PIXELDQ and GROUPDQ."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from jwpipe.algorithms.dq_init import dq_init
from jwpipe.errors import StepInputError
from jwpipe.steps._common import check_ramp, cut, load_reference
from jwpipe.stpipe import Step

__all__ = ["DQInitStep"]


def _read_user_dq(path: str, step: str) -> np.ndarray:
    from astropy.io import fits

    if not os.path.isfile(path):
        raise StepInputError(f"{step}: user_supplied_dq file '{path}' does not exist")
    try:
        data = fits.getdata(path, ext=0)
    except (OSError, IndexError, TypeError) as exc:
        raise StepInputError(f"{step}: cannot read user_supplied_dq '{path}': {exc}") from None
    if data is None or not np.issubdtype(np.asarray(data).dtype, np.integer):
        raise StepInputError(
            f"{step}: user_supplied_dq '{path}' must hold an integer image in its primary HDU"
        )
    return np.asarray(data)


class DQInitStep(Step):
    """OR the MASK reference DQ into PIXELDQ and its DO_NOT_USE into every GROUPDQ plane."""

    class_alias = "dq_init"
    spec = """
    user_supplied_dq = string(default=None)  # FITS file of extra DQ to OR in
    """
    reference_file_types = ["mask"]
    workflow_memory = (2.2, 150.0)

    def process(self, input: Any) -> Any:
        from jwpipe.datamodels import MaskModel

        model = self.prepare_input(input)
        check_ramp(model, self.qualified_name)
        loaded = load_reference(self, model, "mask", MaskModel, "dq")
        if loaded is None:
            self.log.warning("No mask reference applies: step skipped")
            self.record_step_status(model, "SKIPPED")
            return model
        ref, slices = loaded
        user = None
        if self.user_supplied_dq:
            user = _read_user_dq(self.make_input_path(self.user_supplied_dq), self.qualified_name)
        dq_init(model.pixeldq, model.groupdq, cut(ref.dq, slices), user)
        return model
