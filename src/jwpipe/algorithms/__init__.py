"""Pure numpy algorithms of the JWST calibration steps (no I/O, no datamodels).

Detector1 (ramp) algorithms, in pipeline order::

    group_scale -> dq_init -> flag_saturation -> subtract_superbias -> correct_refpix
    -> correct_linearity -> subtract_dark -> detect_jumps -> fit_ramps -> gain_scale

Functions that take a ramp modify it (and its DQ) in place and say so in their docstrings; the
caller owns copies. Three functions share their module's name (``group_scale``, ``dq_init``,
``gain_scale``): they are imported eagerly (numpy only), which keeps
``jwpipe.algorithms.gain_scale`` the function whatever was imported first. The others are
imported on first use, so a workflow job running one step does not load every algorithm.
"""

from __future__ import annotations

from jwpipe._lazy import lazy_getattr
from jwpipe.algorithms.dq_init import dq_init
from jwpipe.algorithms.gain_scale import gain_scale
from jwpipe.algorithms.group_scale import group_scale, group_scale_needed

#: name -> module under jwpipe.algorithms, for the names imported on first use
_MODULES = {
    "subtract_dark": "dark_current",
    "JumpResult": "jump",
    "detect_jumps": "jump",
    "correct_linearity": "linearity",
    "RampFitProducts": "ramp_fit",
    "fit_ramps": "ramp_fit",
    "correct_refpix": "refpix",
    "flag_saturation": "saturation",
    "subtract_superbias": "superbias",
}

__all__ = [
    "JumpResult",
    "RampFitProducts",
    "correct_linearity",
    "correct_refpix",
    "detect_jumps",
    "dq_init",
    "fit_ramps",
    "flag_saturation",
    "gain_scale",
    "group_scale",
    "group_scale_needed",
    "subtract_dark",
    "subtract_superbias",
]

__getattr__ = lazy_getattr("jwpipe.algorithms", _MODULES)
