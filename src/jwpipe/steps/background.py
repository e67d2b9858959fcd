"""``BackgroundStep``: subtract background exposures from an imaging exposure (jwst
``bkg_subtract``, imaging mode).

The background is the pixel-by-pixel sigma-clipped mean of the background exposures (bad
pixels excluded); it is subtracted from SCI and its DQ (DO_NOT_USE where no background
exposure had a good value) OR'd into the data's. ERR is left unchanged, as jwst does.
"""

from __future__ import annotations

import os
from typing import Any

from jwpipe.algorithms.image_calib import combine_backgrounds, subtract_background
from jwpipe.errors import StepInputError
from jwpipe.steps._image_common import bad_pixel_mask, label
from jwpipe.stpipe import Step

__all__ = ["BackgroundStep"]


class BackgroundStep(Step):
    """Subtract the combined background exposures (given as a second argument or bkg_list)."""

    class_alias = "bkg_subtract"
    spec = """
    bkg_list = list(default=None)  # Background exposures (files) when not given as arguments
    save_combined_background = boolean(default=False)  # Save the combined background image
    sigma = float(default=3.0)  # Clipping limit for combining background exposures
    maxiters = integer(default=None)  # Clipping iterations (None: 5)
    """
    workflow_memory = (4.0, 200.0)
    # Only meaningful for association products with background members.
    workflow_member_role = "background"

    def process(self, input: Any, *backgrounds: Any) -> Any:
        from jwpipe import datamodels

        model = self.prepare_input(input)
        if not isinstance(model, datamodels.ImageModel | datamodels.CubeModel):
            raise StepInputError(
                f"{self.qualified_name}: {label(model)} is a {type(model).__name__}; "
                "background subtraction needs a rate/rateints image")
        items: list[Any] = []
        for b in backgrounds:
            items += list(b) if isinstance(b, list | tuple) else [b]
        if not items:
            items = list(self.bkg_list or [])
        if not items:
            self.log.warning("No background exposures given: step skipped")
            self.record_step_status(model, "SKIPPED")
            return model
        scis, errs, bads = [], [], []
        for item in items:
            if isinstance(item, str | os.PathLike) and not os.path.exists(
                    self.make_input_path(item)):
                raise StepInputError(
                    f"{self.qualified_name}: background exposure {item} does not exist")
            bkg = self.open_model(item)
            if not isinstance(bkg, datamodels.ImageModel | datamodels.CubeModel):
                raise StepInputError(
                    f"{self.qualified_name}: background {label(bkg)} is a "
                    f"{type(bkg).__name__}, not an image")
            data = bkg.data if bkg.data.ndim == 2 else bkg.data.mean(axis=0)
            err = bkg.err if bkg.err.ndim == 2 else (bkg.err**2).sum(axis=0) ** 0.5 / len(
                bkg.err)
            dq = bkg.dq if bkg.dq.ndim == 2 else bkg.dq[0]
            if data.shape != model.shape[-2:]:
                raise StepInputError(
                    f"{self.qualified_name}: background {label(bkg)} has shape {data.shape}, "
                    f"the science exposure {model.shape[-2:]}")
            scis.append(data)
            errs.append(err)
            bads.append(bad_pixel_mask(dq, data.shape))
        combined = combine_backgrounds(scis, errs, bads, sigma=self.sigma,
                                       maxiters=self.maxiters)
        model.data, model.dq = subtract_background(model.data, model.dq, combined)
        if self.save_combined_background:
            out = datamodels.ImageModel(data=combined.sci, err=combined.err, dq=combined.dq)
            self.save_model(out, suffix="combinedbackground", force=True)
        self.log.info("Subtracted the mean of %d background exposure(s)", len(items))
        return model
