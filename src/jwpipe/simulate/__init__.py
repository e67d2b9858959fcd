"""Synthetic NIRCam imaging exposures with known truth, matching references and associations.

``simulate_field(outdir, ...)`` is the entry point; see ``docs/simulate.md``.
"""

from jwpipe.simulate.config import READOUT_PATTERNS, SimulationConfig
from jwpipe.simulate.detector import DetectorProperties, apply_nonlinearity, make_detector
from jwpipe.simulate.field import SimulationResult, simulate_field
from jwpipe.simulate.ramps import Readout, simulate_ramps

__all__ = [
    "READOUT_PATTERNS",
    "DetectorProperties",
    "Readout",
    "SimulationConfig",
    "SimulationResult",
    "apply_nonlinearity",
    "make_detector",
    "simulate_field",
    "simulate_ramps",
]
