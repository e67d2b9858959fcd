"""The pipelines: ``from jwpipe.pipeline import Detector1Pipeline`` (imported on first use)."""

from __future__ import annotations

import importlib
from typing import Any

_MODULES = {
    "Detector1Pipeline": "detector1",
    "Image2Pipeline": "image2",
    "Image3Pipeline": "image3",
}

__all__ = sorted(_MODULES)


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module 'jwpipe.pipeline' has no attribute {name!r}")
    return getattr(importlib.import_module(f"jwpipe.pipeline.{module}"), name)
