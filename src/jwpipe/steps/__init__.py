"""The calibration steps: ``from jwpipe.steps import SaturationStep``.

One module per step; each is imported only when its class is first used, so importing this
package (and running ``jwpipe run-step`` for one step) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

#: class name -> module under jwpipe.steps
_MODULES = {
    "GroupScaleStep": "group_scale",
    "DQInitStep": "dq_init",
    "SaturationStep": "saturation",
    "SuperbiasStep": "superbias",
    "RefPixStep": "refpix",
    "LinearityStep": "linearity",
    "DarkCurrentStep": "dark_current",
    "JumpStep": "jump",
    "RampFitStep": "ramp_fit",
    "GainScaleStep": "gain_scale",
    "AssignWcsStep": "assign_wcs",
    "BackgroundStep": "background",
    "FlatFieldStep": "flat_field",
    "PhotomStep": "photom",
    "TweakRegStep": "tweakreg",
    "SkyMatchStep": "skymatch",
    "OutlierDetectionStep": "outlier_detection",
    "ResampleStep": "resample",
    "SourceCatalogStep": "source_catalog",
}

__all__ = sorted(_MODULES)


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module 'jwpipe.steps' has no attribute {name!r}")
    return getattr(importlib.import_module(f"jwpipe.steps.{module}"), name)
