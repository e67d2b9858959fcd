"""The pipelines: ``from jwpipe.pipeline import Detector1Pipeline`` (imported on first use)."""

from __future__ import annotations

from jwpipe._lazy import lazy_getattr

_MODULES = {
    "Detector1Pipeline": "detector1",
    "Image2Pipeline": "image2",
    "Image3Pipeline": "image3",
}

__all__ = sorted(_MODULES)


__getattr__ = lazy_getattr("jwpipe.pipeline", _MODULES)
