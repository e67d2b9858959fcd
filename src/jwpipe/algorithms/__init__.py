"""Pure numpy algorithms of the JWST calibration steps (no I/O, no datamodels).

Detector1 (ramp) algorithms, in pipeline order::

    group_scale -> dq_init -> flag_saturation -> subtract_superbias -> correct_refpix
    -> correct_linearity -> subtract_dark -> detect_jumps -> fit_ramps -> gain_scale

Functions that take a ramp modify it (and its DQ) in place and say so in their docstrings; the
caller owns copies. The names below are imported eagerly (numpy only) on purpose: three functions
share their module's name (``group_scale``, ``dq_init``, ``gain_scale``), and binding them here
keeps ``jwpipe.algorithms.gain_scale`` the function whatever was imported first.
"""

from __future__ import annotations

from jwpipe.algorithms.dark_current import subtract_dark
from jwpipe.algorithms.dq_init import dq_init
from jwpipe.algorithms.gain_scale import gain_scale
from jwpipe.algorithms.group_scale import group_scale, group_scale_needed
from jwpipe.algorithms.jump import JumpResult, detect_jumps
from jwpipe.algorithms.linearity import correct_linearity
from jwpipe.algorithms.ramp_fit import RampFitProducts, fit_ramps
from jwpipe.algorithms.refpix import correct_refpix
from jwpipe.algorithms.saturation import flag_saturation
from jwpipe.algorithms.superbias import subtract_superbias

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
