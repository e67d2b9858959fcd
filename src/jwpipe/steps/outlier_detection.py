"""``OutlierDetectionStep``: flag pixels that disagree with the other exposures (jwst
``outlier_detection``, imaging mode).

1. Every member is drizzled alone onto the common output grid with drizzle's C kernels (sky
   level measured by skymatch but not subtracted is removed first); each resampled image
   goes to a temporary ``.npy`` file, so memory holds one member plus the grid.
2. The median image: nan-median across members, ignoring resampled pixels whose weight is
   below ``maskpt`` times the member's sigma-clipped mean weight; computed a block of rows at
   a time from those files (at most 24 MB of stack, files mapped only while read).
3. The median is blotted back to each member's frame (drizzle's ``blot_image``, 5th-order
   polynomial as in jwst, plus the member's sky level) and
   :func:`jwpipe.algorithms.image_outliers.flag_outliers` applies the two thresholds
   (``snr``, ``scale``) with the member's ERR; flagged pixels get DQ DO_NOT_USE|OUTLIER and
   NaN in SCI, ERR and the variances.

Members that overlap no member of another exposure group (detectors of one exposure do not
count) are warned about and record ``overlaps_other_exposures: false``: their median is
themselves, so no outlier can be found in them.

``resample_data=False`` compares members directly pixel by pixel (same shape required):
``|sci - median| > snr1 * err``. Fewer than two members: SKIPPED, as in jwst.
The step returns the flagged members; ``Image3Pipeline`` writes them as ``_crf`` files.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from jwpipe.algorithms.image_geometry import isolated_footprints, pixel_map, pixel_scale_deg
from jwpipe.algorithms.image_outliers import (
    block_median,
    flag_outliers,
    parse_pair,
    weight_threshold_mask,
)
from jwpipe.algorithms.image_resample import blot, drizzle_one
from jwpipe.datamodels import dqflags
from jwpipe.errors import StepInputError
from jwpipe.steps._image_common import (
    bad_pixel_mask,
    label,
    member_weight,
    output_grid,
    sky_offset,
)
from jwpipe.steps._members import (
    Workspace,
    check_members,
    group_ids,
    load_members,
    map_members,
    workspace_dir,
)
from jwpipe.stpipe import Step
from jwpipe.stpipe.outputs import Output

__all__ = ["OutlierDetectionStep"]

_FLAG = np.uint32(dqflags.pixel["DO_NOT_USE"] | dqflags.pixel["OUTLIER"])


class OutlierDetectionStep(Step):
    """Flag cosmic rays and other outliers missed upstream, by comparison with the median."""

    class_alias = "outlier_detection"
    spec = """
    weight_type = option('ivm', 'exptime', None, default='ivm')  # Drizzle weighting
    pixfrac = float(default=1.0)  # Drizzle pixel shrink factor
    kernel = option('square', 'point', 'turbo', 'gaussian', 'lanczos3', default='square')
    fillval = string(default='NAN')  # Value of output pixels without data
    maskpt = float(default=0.7)  # Resampled pixels below maskpt x mean weight are ignored
    snr = string(default='5.0 4.0')  # The two S/N thresholds
    scale = string(default='1.2 0.7')  # The two derivative scale factors
    backg = float(default=0.0)  # Background added to the blotted median
    save_intermediate_results = boolean(default=False)  # Save the median image
    resample_data = boolean(default=True)  # Resample to a common grid (else compare pixels)
    good_bits = string(default='~DO_NOT_USE')  # DQ bits that are good (astropy style)
    """
    workflow_scope = "product"
    outputs = (Output("crf", stage_product=True),)
    workflow_memory = (0.05, 350.0)

    def process(self, input: Any) -> Any:
        container = load_members(input, self.qualified_name)
        shapes, wcss = check_members(container, self.qualified_name, wcs=True)
        parse_pair(self.snr, "snr")
        parse_pair(self.scale, "scale")
        if len(container) < 2:
            self.log.warning("outlier_detection needs at least two exposures: skipped")

            def skip(i: int, model: Any) -> None:
                self.record_step_status(model, "SKIPPED")

            return map_members(self, container, skip)
        if not self.resample_data:
            return self._direct(container, shapes)
        grid, gshape = output_grid(wcss, shapes)
        ratio = pixel_scale_deg(grid, gshape) / pixel_scale_deg(wcss[0], shapes[0])
        lonely = set(isolated_footprints(wcss, shapes, grid, group_ids(container)))
        if lonely:
            self.log.warning("member(s) %s overlap no other exposure: their outliers cannot be "
                             "found", ", ".join(str(container.paths[k]) for k in sorted(lonely)))
        scratch = Workspace(workspace_dir(self), f"{self.name}_grid")
        sci_files = []
        for i in range(len(container)):
            model = container[i]
            bad = self._bad(model)
            data = np.asarray(model.data, dtype=np.float32) - np.float32(sky_offset(model))
            res = drizzle_one(data, pixel_map(wcss[i], grid, data.shape), gshape,
                              weight=member_weight(model, self.weight_type, bad),
                              pixfrac=self.pixfrac, kernel=self.kernel,
                              pixel_scale_ratio=ratio)
            # resampled pixels of low weight (edges, bad pixels) do not enter the median
            low = weight_threshold_mask(res.wht, self.maskpt) if (res.wht > 0).any() \
                else np.ones(gshape, dtype=bool)
            sci_files.append(os.path.join(scratch.path, f"sci{i:05d}.npy"))
            np.save(sci_files[-1], np.where(low, np.float32(np.nan), res.sci))
            del model, bad, data, res, low
        median = block_median(sci_files, gshape)
        if self.save_intermediate_results:
            from jwpipe.datamodels import ImageModel

            med = ImageModel(data=median)
            self.save_model(med, suffix="median", force=True)

        def flag(i: int, model: Any) -> None:
            level = sky_offset(model)
            blotted = blot(median, pixel_map(wcss[i], grid, model.data.shape)) + level
            outliers = flag_outliers(model.data, model.err, blotted, self.snr, self.scale,
                                     self.backg)
            outliers &= ~self._bad(model)
            self._apply(model, outliers)
            if i in lonely:  # compared with itself only: nothing could be flagged
                model.extra["outlier_detection"]["overlaps_other_exposures"] = False

        result = map_members(self, container, flag)
        del scratch
        return result

    def _bad(self, model: Any) -> np.ndarray:
        return bad_pixel_mask(model.dq, model.data.shape) | dqflags.dq_to_boolean_mask(
            model.dq, good_bits=self.good_bits) | ~np.isfinite(model.data)

    def _apply(self, model: Any, outliers: np.ndarray) -> None:
        n = int(outliers.sum())
        dq = np.array(model.dq, dtype=np.uint32)
        dq[outliers] |= _FLAG
        model.dq = dq
        for name in ("data", "err", "var_poisson", "var_rnoise", "var_flat"):
            arr = np.array(getattr(model, name), dtype=np.float32)
            arr[outliers] = np.nan
            setattr(model, name, arr)
        model.extra["outlier_detection"] = {"n_outliers": n}
        self.record_step_status(model, "COMPLETE")
        self.log.info("%s: %d outlier pixels flagged", label(model), n)

    def _direct(self, container: Any, shapes: list[tuple[int, int]]) -> Any:
        if len(set(shapes)) != 1:
            raise StepInputError(
                f"{self.qualified_name}: resample_data=False needs members of one shape, got "
                f"{sorted(set(shapes))}")
        scratch = Workspace(workspace_dir(self), f"{self.name}_stack")
        files = []
        for i in range(len(container)):
            model = container[i]
            data = np.where(self._bad(model), np.nan, model.data - sky_offset(model))
            files.append(os.path.join(scratch.path, f"sci{i:05d}.npy"))
            np.save(files[-1], data.astype(np.float32))
            del model, data
        median = block_median(files, shapes[0])
        snr1 = parse_pair(self.snr, "snr")[0]

        def flag(i: int, model: Any) -> None:
            with np.errstate(invalid="ignore"):
                diff = np.abs(model.data - sky_offset(model) - median - self.backg)
                outliers = (diff > snr1 * model.err) & ~self._bad(model)
            self._apply(model, outliers)

        result = map_members(self, container, flag)
        del scratch
        return result
