"""A user's stpipe steps for jwst-engine insertion tests: a column-median 1/f-noise cleaner
(any image or ramp model) and a member offset (an association's members, as jwst's Image3
steps receive them: a ``ModelLibrary``).

jwst 3.0 exports its ``JwstStep`` as ``jwst.stpipe.Step``.
"""

from __future__ import annotations

import numpy as np
from jwst.datamodels import ModelLibrary
from jwst.stpipe import Step as JwstStep
from stdatamodels.jwst import datamodels

__all__ = ["ColumnMedianCleanStep", "MemberOffsetStep"]


class ColumnMedianCleanStep(JwstStep):
    """Subtract ``fraction`` times each column's median (over rows) from the science data."""

    class_alias = "column_median_clean"
    spec = """
        fraction = float(default=1.0)  # share of the column median removed
    """

    def process(self, input):
        with datamodels.open(input) as model:
            result = model.copy()
        median = np.median(result.data, axis=-2, keepdims=True)
        result.data = (result.data - np.float32(self.fraction) * median).astype(np.float32)
        return result


class MemberOffsetStep(JwstStep):
    """Subtract ``offset`` from every member's science data (an association's members)."""

    class_alias = "member_offset"
    spec = """
        offset = float(default=0.5)  # subtracted from each member's SCI
    """

    def process(self, input):
        library = input if isinstance(input, ModelLibrary) else ModelLibrary(input)
        with library:
            for index, model in enumerate(library):
                model.data = (model.data - np.float32(self.offset)).astype(np.float32)
                library.shelve(model, index)
        return library
