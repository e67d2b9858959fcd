"""FITS-backed JWST data models, reference-file models and DQ flags.

``open(path_or_model)`` picks the model class from the file (DATAMODL, then REFTYPE, then the
extensions); class constructors accept a path, a shape, an array or another model.
"""

from jwpipe.datamodels import dqflags
from jwpipe.datamodels.container import ModelContainer
from jwpipe.datamodels.model_base import ArraySpec, DataModel, PlaneStack
from jwpipe.datamodels.opening import model_class_for, open_asdf_reference, read_crds_parameters
from jwpipe.datamodels.opening import open_model as open
from jwpipe.datamodels.reference import (
    ABVegaOffsetModel,
    ApcorrModel,
    AsdfReferenceModel,
    DarkModel,
    DistortionModel,
    FilteroffsetModel,
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
    "ABVegaOffsetModel",
    "ApcorrModel",
    "ArraySpec",
    "AsdfReferenceModel",
    "CubeModel",
    "DarkModel",
    "DataModel",
    "DistortionModel",
    "FilteroffsetModel",
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
    "open_asdf_reference",
    "read_crds_parameters",
]
