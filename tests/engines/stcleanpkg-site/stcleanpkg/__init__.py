"""A user's stpipe step for jwst-engine insertion tests: a column-median 1/f-noise cleaner.

jwst 3.0 exports its ``JwstStep`` as ``jwst.stpipe.Step``.
"""

from __future__ import annotations

import numpy as np
from jwst.stpipe import Step as JwstStep
from stdatamodels.jwst import datamodels

__all__ = ["ColumnMedianCleanStep"]


class ColumnMedianCleanStep(JwstStep):
    """Subtract ``fraction`` times each column's median (over rows) from every group."""

    class_alias = "column_median_clean"
    spec = """
        fraction = float(default=1.0)  # share of the column median removed
    """

    def process(self, input):
        with datamodels.RampModel(input) as model:
            result = model.copy()
        median = np.median(result.data, axis=-2, keepdims=True)
        result.data = (result.data - np.float32(self.fraction) * median).astype(np.float32)
        return result
