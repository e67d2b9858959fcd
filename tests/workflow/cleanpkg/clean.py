"""Row-median ("1/f") cleaning, as survey teams add between jump and ramp fitting.

Each detector row of each group (of a ramp) or of an image (a rate) has its median over unflagged,
unclipped pixels taken away, less the median level of the whole group, so striping along rows is
removed and the sky level kept.
"""

from __future__ import annotations

import warnings

import numpy as np

from jwpipe.stpipe import Step


def row_offsets(data: np.ndarray, bad: np.ndarray, nsigma: float, min_good: int) -> np.ndarray:
    """Per-row offsets (shape ``data.shape[:-1] + (1,)``) of frames in the last two axes.

    Pixels flagged ``bad``, and pixels more than ``nsigma`` robust sigmas above their frame's
    median (sources), are left out; a row with fewer than ``min_good`` pixels left gets 0.
    """
    masked = np.where(bad, np.nan, data.astype(np.float64))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows and frames
        level = np.nanmedian(masked, axis=(-2, -1), keepdims=True)
        sigma = 1.4826 * np.nanmedian(np.abs(masked - level), axis=(-2, -1), keepdims=True)
        masked = np.where(masked > level + nsigma * sigma, np.nan, masked)
        rows = np.nanmedian(masked, axis=-1, keepdims=True)
    good = np.sum(np.isfinite(masked), axis=-1, keepdims=True)
    offsets = np.where((good >= min_good) & np.isfinite(rows - level), rows - level, 0.0)
    return offsets.astype(data.dtype)


def bad_pixels(model) -> np.ndarray:
    """Flagged pixels, broadcast to the data's shape (a ramp's GROUPDQ and PIXELDQ, or DQ)."""
    if getattr(model, "groupdq", None) is not None:
        bad = (model.groupdq != 0) | (model.pixeldq != 0)
    else:
        bad = model.dq != 0
    return np.broadcast_to(bad, model.data.shape)


class ColumnCleanStep(Step):
    """Subtract each row's median (1/f noise) from every group of a ramp, or from an image."""

    class_alias = "column_clean"
    spec = """
    nsigma = float(default=3.0)  # pixels this many robust sigmas above the median are sources
    min_good = integer(default=4)  # rows with fewer usable pixels are left alone
    """

    def process(self, input):
        model = self.prepare_input(input)
        model.data -= row_offsets(model.data, bad_pixels(model), self.nsigma, self.min_good)
        self.record_step_status(model, "COMPLETE")
        return model


class NotAStep:
    """Something that is not a Step (refused when named)."""
