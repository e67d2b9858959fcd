"""``datamodels.open``: choose the model class for a file and open it."""

from __future__ import annotations

import os
from typing import Any

from astropy.io import fits

from jwpipe.datamodels import _fitsio
from jwpipe.datamodels._asdf_file import AsdfReferenceModel, read_asdf_tree
from jwpipe.datamodels.container import ModelContainer, is_sequence_of_members
from jwpipe.datamodels.keywords import CRDS_KEYWORDS
from jwpipe.datamodels.model_base import DataModel
from jwpipe.datamodels.reference import (
    ABVegaOffsetModel,
    ApcorrModel,
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
    SaturationModel,
    SuperBiasModel,
)
from jwpipe.datamodels.science import CubeModel, ImageModel, RampModel
from jwpipe.errors import DataModelError

__all__ = ["model_class_for", "open_asdf_reference", "open_model", "read_crds_parameters"]

_CLASSES: tuple[type[DataModel], ...] = (
    RampModel,
    ImageModel,
    CubeModel,
    MaskModel,
    SaturationModel,
    SuperBiasModel,
    LinearityModel,
    DarkModel,
    GainModel,
    ReadnoiseModel,
    FlatModel,
    PhotomModel,
    PixelAreaModel,
    ApcorrModel,
)

#: Reference types CRDS serves as ASDF files, by REFTYPE.
ASDF_BY_REFTYPE: dict[str, type[AsdfReferenceModel]] = {
    cls.reftype: cls for cls in (DistortionModel, FilteroffsetModel, ABVegaOffsetModel)
}

BY_DATAMODL: dict[str, type[DataModel]] = {cls.__name__: cls for cls in _CLASSES}
BY_DATAMODL.update({name: cls for cls in _CLASSES for name in cls._model_types})
BY_DATAMODL["Level1bModel"] = RampModel

BY_REFTYPE: dict[str, type[DataModel]] = {
    cls.reftype: cls for cls in _CLASSES if getattr(cls, "reftype", "")
}

_BY_SCI_NDIM = {4: RampModel, 3: CubeModel, 2: ImageModel}


def model_class_for(path: str) -> type[DataModel]:
    """The model class for a FITS file: DATAMODL, then REFTYPE, then its extensions."""
    hdul, handle = _fitsio.scan(path)
    handle.close()
    try:
        return _class_of(path, hdul)
    finally:
        hdul.close()


def _class_of(path: str, hdul: fits.HDUList) -> type[DataModel]:
    header = hdul[0].header
    datamodl = str(header.get("DATAMODL", "")).strip()
    if datamodl in BY_DATAMODL:
        return BY_DATAMODL[datamodl]
    reftype = str(header.get("REFTYPE", "")).strip().upper()
    if reftype in BY_REFTYPE:
        return BY_REFTYPE[reftype]
    images = {h.name.upper(): h for h in hdul[1:] if type(h) is fits.ImageHDU}
    tables = {h.name.upper() for h in hdul[1:] if isinstance(h, fits.BinTableHDU)}
    if "SCI" in images:
        ndim = images["SCI"].header.get("NAXIS", 0)
        if ndim not in _BY_SCI_NDIM:
            raise DataModelError(
                f"{path}: SCI has {ndim} dimensions; expected 2 (image), 3 (cube) or 4 (ramp)"
            )
        return _BY_SCI_NDIM[ndim]
    if "COEFFS" in images:
        return LinearityModel
    if "PHOTOM" in tables:
        return PhotomModel
    if "APCORR" in tables:
        return ApcorrModel
    if "DQ" in images:
        return MaskModel
    raise DataModelError(f"{path}: lacks a SCI extension; cannot tell which model it is")


def open_model(init: Any, **kwargs: Any) -> DataModel | ModelContainer:
    """Open a model from a path, or return a model/container passed in unchanged.

    Parameters
    ----------
    init : str, os.PathLike, DataModel, ModelContainer, list of paths/models
        A FITS file (class picked by :func:`model_class_for`), an association ``.json``
        (gives a ModelContainer), a list (gives a ModelContainer) or a model (returned as is).
    **kwargs
        Passed to the model class (or to ModelContainer for lists/associations).

    Returns
    -------
    DataModel or ModelContainer
    """
    if isinstance(init, DataModel | ModelContainer):
        return init
    if is_sequence_of_members(init):
        return ModelContainer(init, **kwargs)
    if not isinstance(init, str | os.PathLike):
        raise DataModelError(f"cannot open a data model from {type(init).__name__}")
    path = os.fspath(init)
    if path.lower().endswith(".json"):
        return ModelContainer(path, **kwargs)
    if path.lower().endswith(".asdf"):
        return open_asdf_reference(path)
    scanned = _fitsio.scan(path)
    with _fitsio.handing_over(path, scanned):  # the model parses no header twice
        return _class_of(path, scanned[0])(path, **kwargs)


def open_asdf_reference(path: str | os.PathLike) -> AsdfReferenceModel:
    """Open an ASDF reference file (distortion, filteroffset, abvegaoffset) by its REFTYPE."""
    path = os.fspath(path)
    tree = read_asdf_tree(path)
    meta = tree.get("meta") or {}
    reftype = str(meta.get("reftype", "")).strip().upper() if isinstance(meta, dict) else ""
    cls = ASDF_BY_REFTYPE.get(reftype)
    if cls is None:
        raise DataModelError(
            f"{path}: ASDF file with REFTYPE {reftype or '(none)'!r}; jwpipe reads "
            f"{', '.join(sorted(ASDF_BY_REFTYPE))} reference files in ASDF")
    return cls(path, tree=tree)


def read_crds_parameters(path: str | os.PathLike) -> dict[str, Any]:
    """Reference-selection parameters of a FITS file, read from its headers only.

    Same result as ``open_model(path).get_crds_parameters()`` without reading any array.
    """
    path = os.fspath(path)
    hdul, handle = _fitsio.scan(path)
    handle.close()
    try:
        headers = [hdul[0].header]
        if "SCI" in hdul:
            headers.append(hdul["SCI"].header)
        keys = [*CRDS_KEYWORDS]
        if "REFTYPE" in headers[0]:
            keys.append("REFTYPE")
        out: dict[str, Any] = {}
        for key in keys:
            for header in headers:
                if key in header:
                    value = header[key]
                    if not isinstance(value, fits.card.Undefined):
                        out[key] = value
                    break
        return out
    finally:
        hdul.close()
