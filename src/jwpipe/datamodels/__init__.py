"""FITS-backed JWST data models, reference-file models and DQ flags.

``open(path_or_model)`` picks the model class from the file (DATAMODL, then REFTYPE, then the
extensions); class constructors accept a path, a shape, an array or another model.

Each name is imported from its module when first used: the models need astropy and asdf, which
``jwpipe make-workflow`` and a job of a step that only reads DQ flags should not pay for.
"""

from __future__ import annotations

from jwpipe._lazy import lazy_getattr
from jwpipe.datamodels import dqflags as dqflags  # the flags are cheap: always here

#: name -> module under jwpipe.datamodels (``module:attribute`` where the names differ)
_MODULES = {
    "ModelContainer": "container",
    "ArraySpec": "model_base",
    "DataModel": "model_base",
    "PlaneStack": "model_base",
    "model_class_for": "opening",
    "open_asdf_reference": "opening",
    "read_crds_parameters": "opening",
    "open": "opening:open_model",
    **dict.fromkeys(
        ["ABVegaOffsetModel", "ApcorrModel", "AsdfReferenceModel", "DarkModel",
         "DistortionModel", "FilteroffsetModel", "FlatModel", "GainModel", "LinearityModel",
         "MaskModel", "PhotomModel", "PixelAreaModel", "ReadnoiseModel", "ReferenceFileModel",
         "SaturationModel", "SuperBiasModel"], "reference"),
    **dict.fromkeys(["CubeModel", "ImageModel", "RampModel"], "science"),
}

__all__ = sorted([*_MODULES, "dqflags"])

__getattr__ = lazy_getattr("jwpipe.datamodels", _MODULES)
