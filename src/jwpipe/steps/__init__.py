"""The calibration steps: ``from jwpipe.steps import SaturationStep``.

One module per step; each is imported only when its class is first used, so importing this
package (and running ``jwpipe run-step`` for one step) stays cheap.
"""

from __future__ import annotations

from jwpipe._lazy import lazy_getattr

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


__getattr__ = lazy_getattr("jwpipe.steps", _MODULES)
