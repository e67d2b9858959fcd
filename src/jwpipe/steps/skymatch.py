"""``SkyMatchStep``: sky levels that make overlapping exposures agree (jwst ``skymatch``).

Each member is drizzled (bad pixels excluded) onto one common grid ``binning`` times coarser
than the mosaic, so N members cost N small images, not N full ones. On that grid
:func:`jwpipe.algorithms.image_skymatch.match_sky` computes the levels: ``local`` (each
member's own clipped sky), ``global`` (the lowest local sky for all), ``match`` (pairwise
clipped differences over the overlaps, solved jointly, lowest level 0) or ``global+match``.
Each member gets ``BKGLEVEL`` (the level, in the data's units), ``BKGMETH`` and ``BKGSUB``;
the level is subtracted from SCI only if ``subtract`` is True.

Members of one exposure group (the detectors of one exposure: the association's ``group_id``,
else the exposure's identity in the headers, as jwst's ``group_id``) share one sky level and are
measured together. For the matching methods, groups are matched within each set of mutually
overlapping groups; a group that overlaps no other keeps level 0 (``global+match``: the global
level), with a warning, and every member records what happened in ``extra['skymatch']``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jwpipe.algorithms.image_geometry import pixel_map
from jwpipe.algorithms.image_resample import drizzle_one
from jwpipe.algorithms.image_skymatch import match_sky_groups
from jwpipe.datamodels import dqflags
from jwpipe.errors import StepInputError
from jwpipe.steps._image_common import bad_pixel_mask, label, output_grid
from jwpipe.steps._members import check_members, group_ids, load_members, map_members
from jwpipe.stpipe import Step

__all__ = ["SkyMatchStep"]


class SkyMatchStep(Step):
    """Measure (and optionally subtract) each exposure's sky so that overlaps agree."""

    class_alias = "skymatch"
    spec = """
    skymethod = option('local', 'global', 'match', 'global+match', default='match')  # Method
    match_down = boolean(default=True)  # Match to the lowest sky level (only True is supported)
    subtract = boolean(default=False)  # Subtract the sky levels from the data
    skystat = option('median', 'mode', 'mean', default='mode')  # Sky statistic
    dqbits = string(default='~DO_NOT_USE+NON_SCIENCE')  # DQ bits that are good (astropy style)
    lower = float(default=None)  # Ignore pixel values below this
    upper = float(default=None)  # Ignore pixel values above this
    nclip = integer(min=0, default=5)  # Clipping iterations
    lsigma = float(min=0.0, default=4.0)  # Lower clipping limit (sigma)
    usigma = float(min=0.0, default=4.0)  # Upper clipping limit (sigma)
    binning = integer(min=1, default=4)  # jwpipe: measure on a grid binned by this factor
    """
    workflow_scope = "product"
    workflow_memory = (0.05, 300.0)

    def process(self, input: Any) -> Any:
        container = load_members(input, self.qualified_name)
        shapes, wcss = check_members(container, self.qualified_name, wcs=True)
        if not self.match_down:
            raise StepInputError(f"{self.qualified_name}: match_down=False is not supported")
        grid, gshape = output_grid(wcss, shapes, pixel_scale_ratio=float(self.binning))
        coarse = []
        for i in range(len(container)):
            model = container[i]
            data = np.asarray(model.data, dtype=np.float32)
            bad = bad_pixel_mask(model.dq, data.shape) | dqflags.dq_to_boolean_mask(
                model.dq, good_bits=self.dqbits) | ~np.isfinite(data)
            if self.lower is not None:
                bad |= data < self.lower
            if self.upper is not None:
                bad |= data > self.upper
            if bad.all():
                raise StepInputError(f"{self.qualified_name}: {label(model)} has no good pixels")
            pixmap = pixel_map(wcss[i], grid, data.shape)
            res = drizzle_one(data, pixmap, gshape, weight=(~bad).astype(np.float32))
            coarse.append(res.sci)
            del model, data, pixmap, res
        groups = group_ids(container)
        try:
            sky = match_sky_groups(coarse, groups, skymethod=self.skymethod,
                                   skystat=self.skystat, nclip=self.nclip, lsigma=self.lsigma,
                                   usigma=self.usigma,
                                   min_overlap=max(10, min(100, gshape[0] * gshape[1] // 100)))
        except StepInputError as exc:
            names = ", ".join(f"{k}={p}" for k, p in enumerate(container.paths))
            raise StepInputError(f"{self.qualified_name}: {exc} (members {names})") from None
        del coarse
        lonely = sorted({groups[k] for k in np.flatnonzero(sky.isolated)})
        if lonely:
            self.log.warning("exposure group(s) %s overlap no other group: their sky is not "
                             "matched (level %s)", ", ".join(lonely),
                             "0" if self.skymethod == "match" else "global")
        if "match" in self.skymethod and int(sky.component.max()) > 0:
            self.log.warning("the exposures form %d sets that do not overlap each other: sky "
                             "levels are matched within each set", int(sky.component.max()) + 1)

        def record(i: int, model: Any) -> None:
            level = float(sky.levels[i])
            model.extra["skymatch"] = {"group": groups[i], "set": int(sky.component[i]),
                                       "overlaps_other_groups": not bool(sky.isolated[i])}
            bg = model.meta.background
            bg.level = level
            bg.method = self.skymethod
            bg.subtracted = bool(self.subtract)
            if self.subtract:
                model.data = (model.data - np.float32(level)).astype(np.float32)
            self.record_step_status(model, "COMPLETE")
            self.log.info("%s: sky %s %.6g", label(model),
                          "subtracted" if self.subtract else "measured", level)

        return map_members(self, container, record)
