"""``DarkCurrentStep``: subtract the dark reference matched to the readout pattern."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from jwpipe.algorithms.dark_current import subtract_dark
from jwpipe.errors import ReferenceFileError
from jwpipe.steps._common import check_ramp, cut, load_reference, reference_name
from jwpipe.stpipe import Step

__all__ = ["DarkCurrentStep"]


class DarkCurrentStep(Step):
    """Subtract the DARK reference group by group (averaging dark frames into groups when the
    readout patterns differ) and OR its DQ into PIXELDQ.

    Also sets the ramp's ``average_dark_current`` (e-/s, used by ramp fitting for the Poisson
    variance): the ``average_dark_current`` parameter, else the reference's AVDRKCUR array,
    else 0. SKIPPED when the dark averages more frames, or drops more, than the science data.
    """

    class_alias = "dark_current"
    cal_step_name = "dark_sub"
    spec = """
    dark_output = output_file(default=None)  # Name of the file to save the dark (as subtracted) to
    average_dark_current = float(default=None)  # Dark current (e-/s) for the variance
    """
    reference_file_types = ["dark"]
    workflow_memory = (2.4, 200.0)

    def process(self, input: Any) -> Any:
        from jwpipe.datamodels import DarkModel

        model = self.prepare_input(input)
        check_ramp(model, self.qualified_name)
        loaded = load_reference(self, model, "dark", DarkModel, "data")
        if loaded is None:
            self.log.warning("No dark reference applies: step skipped")
            self.record_step_status(model, "SKIPPED")
            return model
        ref, slices = loaded
        exp, rexp = model.meta.exposure, ref.meta.exposure
        if rexp.nframes is None or rexp.groupgap is None:
            raise ReferenceFileError(
                f"{self.qualified_name}: dark reference {reference_name(ref)} lacks NFRAMES or "
                "GROUPGAP"
            )
        pattern = {
            "nframes": int(exp.nframes or 1), "groupgap": int(exp.groupgap or 0),
            "dark_nframes": int(rexp.nframes), "dark_groupgap": int(rexp.groupgap),
        }
        dark = cut(ref.planes("data"), slices)  # planes read as used, never the whole cube
        dark_dq = cut(ref.dq, slices) if ref.has_array("dq") else None
        if not subtract_dark(model.data, model.pixeldq, dark, dark_dq, **pattern):
            self.log.warning("Dark NFRAMES/GROUPGAP (%d/%d) exceed the science data's (%d/%d): "
                             "step skipped", pattern["dark_nframes"], pattern["dark_groupgap"],
                             pattern["nframes"], pattern["groupgap"])
            self.record_step_status(model, "SKIPPED")
            return model
        self._set_average_dark(model, ref, slices)
        if self.dark_output:
            self._save_dark(model, dark, pattern)
        return model

    def _set_average_dark(self, model: Any, ref: Any, slices: tuple[slice, slice]) -> None:
        shape = model.shape[2:]
        if self.average_dark_current is not None:
            value = np.full(shape, self.average_dark_current, np.float32)
        elif ref.average_dark_current is not None:
            value = np.asarray(cut(ref.average_dark_current, slices), np.float32)
        else:
            value = np.zeros(shape, np.float32)
        model.average_dark_current = value

    def _save_dark(self, model: Any, dark: np.ndarray, pattern: dict[str, int]) -> None:
        """Write the dark exactly as subtracted (one plane per science group)."""
        from jwpipe.datamodels import DarkModel

        ngroups = model.shape[1]
        matched = np.zeros((1, ngroups, *model.shape[2:]), np.float32)
        subtract_dark(matched, np.zeros(model.shape[2:], np.uint32), dark, None, **pattern)
        out = DarkModel(data=-matched[0])
        out.meta.exposure.nframes = pattern["nframes"]
        out.meta.exposure.groupgap = pattern["groupgap"]
        out.meta.exposure.ngroups = ngroups
        out.meta.instrument.name = model.meta.instrument.name
        out.meta.instrument.detector = model.meta.instrument.detector
        path = os.path.expanduser(os.fspath(self.dark_output))
        out_dir = self.search_attr("output_dir")
        if out_dir and not os.path.isabs(path):
            path = os.path.join(os.path.expanduser(out_dir), os.path.basename(path))
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        out.save(path)
        self.log.info("Saved the subtracted dark in %s", path)
