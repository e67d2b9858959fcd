"""FITS-backed JWST data models, reference-file models and DQ flags.

``open(path_or_model)`` picks the model class from the file (DATAMODL, then REFTYPE, then the
extensions); class constructors accept a path, a shape, an array or another model.
"""

from jwpipe.datamodels import dqflags
from jwpipe.datamodels.container import ModelContainer
from jwpipe.datamodels.model_base import ArraySpec, DataModel, PlaneStack
from jwpipe.datamodels.opening import model_class_for, read_crds_parameters
from jwpipe.datamodels.opening import open_model as open
from jwpipe.datamodels.reference import (
    DarkModel,
    FlatModel,
    GainModel,
    LinearityModel,
    MaskModel,
    PhotomModel,
    PixelAreaModel,
    ReadnoiseModel,
    ReferenceFileModel,
    SaturationModel,
    SuperBiasModel,
)
from jwpipe.datamodels.science import CubeModel, ImageModel, RampModel

__all__ = [
    "ArraySpec",
    "CubeModel",
    "DarkModel",
    "DataModel",
    "FlatModel",
    "GainModel",
    "ImageModel",
    "LinearityModel",
    "MaskModel",
    "ModelContainer",
    "PhotomModel",
    "PixelAreaModel",
    "PlaneStack",
    "RampModel",
    "ReadnoiseModel",
    "ReferenceFileModel",
    "SaturationModel",
    "SuperBiasModel",
    "dqflags",
    "model_class_for",
    "open",
    "read_crds_parameters",
]
