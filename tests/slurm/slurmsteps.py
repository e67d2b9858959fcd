"""Real steps for the SLURM tests: one that takes a while, one that needs a lot of memory.

Both read and write FITS ImageModels like any jwpipe step, from ``_uncal`` to ``_rate``.
"""

from __future__ import annotations

import time

import numpy as np

from jwpipe.stpipe import Pipeline, Step


class NapStep(Step):
    """Wait, then multiply: long enough to still be running when the controller is killed."""

    class_alias = "nap"
    spec = """
    seconds = float(default=0.0)  # wall time to wait before working
    factor = float(default=2.0)  # multiplier
    """
    workflow_memory = (0.0, 600.0)

    def process(self, x):
        model = self.prepare_input(x)
        time.sleep(self.seconds)
        model.data *= np.float32(self.factor)
        return model


class HogStep(Step):
    """Touch ``megabytes`` x (the exposure's first pixel) of memory, then add 1.

    The first pixel picks each exposure's behaviour: 0 needs nothing, 1 needs ``megabytes``
    (more than its job is given: the scheduler kills it), a negative value is bad input
    (an ordinary failure).
    """

    class_alias = "hog"
    spec = "megabytes = integer(default=0)  # memory to touch per unit of the first pixel"
    workflow_memory = (0.0, 600.0)

    def process(self, x):
        model = self.prepare_input(x)
        scale = float(model.data.flat[0])
        if scale < 0:
            raise ValueError(f"{model.meta.filename}: first pixel {scale} < 0 (bad on purpose)")
        size = int(self.megabytes * scale) * 2**20 // 8
        block = np.ones(size, dtype=np.float64)  # np.ones writes every page: really resident
        if size:
            time.sleep(3.0)  # SLURM samples memory once a second
        model.data += np.float32(1.0 + 0.0 * block[:1].sum())
        return model


class NapStage(Pipeline):
    class_alias = "nap_stage"
    step_defs = {"nap": NapStep}
    workflow_input_suffix = "uncal"
    workflow_product_suffixes = ("rate",)


class HogStage(Pipeline):
    class_alias = "hog_stage"
    step_defs = {"hog": HogStep}
    workflow_input_suffix = "uncal"
    workflow_product_suffixes = ("rate",)
