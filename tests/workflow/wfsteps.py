"""Small real steps for workflow tests: FITS ImageModels through three stages.

Stage 1 (exposures, from ``_uncal``): inc (+amount, uses a 'gain' reference), dbl (x factor).
Stage 2 (exposures, from ``_rate``): scl (x factor).
Stage 3 (association products, from ``_cal``): align (subtract each member's median),
stack (mean of the members -> ``_i2d``).
"""

from __future__ import annotations

import os
import time

import numpy as np

from jwpipe import datamodels
from jwpipe.stpipe import Pipeline, Step
from jwpipe.stpipe.outputs import Output


class IncStep(Step):
    """Add a constant (and the reference's value)."""

    class_alias = "inc"
    spec = "amount = float(default=1.0)  # added"
    reference_file_types = ["gain"]

    def process(self, x):
        time.sleep(float(os.environ.get("WFSTEPS_DELAY", "0")))  # widens kill windows in tests
        model = self.prepare_input(x)
        ref = self.get_reference_file(model, "gain")
        offset = 0.0
        if ref != "N/A":
            with open(ref) as fh:
                offset = float(fh.read().strip() or 0.0)
        model.data += np.float32(self.amount + offset)
        return model


class DblStep(Step):
    """Multiply."""

    class_alias = "dbl"
    spec = "factor = float(default=2.0)  # multiplier"

    def process(self, x):
        model = self.prepare_input(x)
        model.data *= np.float32(self.factor)
        return model


class SclStep(DblStep):
    """Multiply (stage 2)."""

    class_alias = "scl"
    spec = "factor = float(default=3.0)  # multiplier"


class AlignStep(Step):
    """Subtract each member's median (product scope, member to member)."""

    class_alias = "align"
    workflow_scope = "product"

    def process(self, container):
        for i in range(len(container)):
            model = container[i]
            model.data -= np.float32(np.median(model.data))
            container[i] = model  # lazily opened members are stored back explicitly
        return container


class StackStep(Step):
    """Mean of the members."""

    class_alias = "stack"
    workflow_scope = "product"
    outputs = (Output("i2d", "ImageModel", per="product", stage_product=True),)
    spec = "offset = float(default=0.0)  # added to the mean"

    def process(self, container):
        data = np.mean([m.data for m in container], axis=0) + self.offset
        out = datamodels.ImageModel(data=data.astype(np.float32))
        out.meta.instrument.name = container[0].meta.instrument.name
        return out


class WfDetStage(Pipeline):
    class_alias = "wf_det"
    step_defs = {"inc": IncStep, "dbl": DblStep}
    workflow_input_suffix = "uncal"
    workflow_product_suffixes = ("rate",)


class WfImgStage(Pipeline):
    class_alias = "wf_img"
    step_defs = {"scl": SclStep}
    workflow_input_suffix = "rate"
    workflow_product_suffixes = ("cal",)


class WfMosaicStage(Pipeline):
    class_alias = "wf_mosaic"
    step_defs = {"align": AlignStep, "stack": StackStep}
    workflow_input_suffix = "cal"
    workflow_stage_scope = "product"


STAGES = [WfDetStage, WfImgStage, WfMosaicStage]
