"""Science-data models: ramps (uncal/ramp), images (rate/cal/i2d) and cubes (rateints/calints)."""

from __future__ import annotations

from typing import ClassVar

from jwpipe.datamodels.model_base import ArraySpec, DataModel

__all__ = ["CubeModel", "ImageModel", "RampModel"]


class RampModel(DataModel):
    """Up-the-ramp data (``_uncal``/``_ramp``): ``data`` (nints, ngroups, ny, nx) float32.

    A ``Level1bModel`` (``_uncal``) file opens as a RampModel: its uint16 SCI becomes float32
    and ``pixeldq``/``groupdq`` read as zeros until set.
    """

    _arrays: ClassVar[dict[str, ArraySpec]] = {
        "data": ArraySpec("SCI", "float32", (4,)),
        "pixeldq": ArraySpec("PIXELDQ", "uint32", (2,), 0, "image"),
        "groupdq": ArraySpec("GROUPDQ", "uint8", (4,), 0, "same"),
        "zeroframe": ArraySpec("ZEROFRAME", "float32", (3,), None, "zeroframe"),
        "refout": ArraySpec("REFOUT", "float32", (4,), None, "none"),
        "average_dark_current": ArraySpec("AVDRKCUR", "float32", (2,), None, "image"),
    }
    _tables: ClassVar[dict[str, str]] = {"group": "GROUP", "int_times": "INT_TIMES"}
    _model_types: ClassVar[tuple[str, ...]] = ()


_IMAGE_VARIANCES = ("var_poisson", "var_rnoise", "var_flat")


class ImageModel(DataModel):
    """A 2-D image (``_rate``, ``_cal``, ``_crf``, ``_i2d``) with DQ, ERR and variances."""

    _arrays: ClassVar[dict[str, ArraySpec]] = {
        "data": ArraySpec("SCI", "float32", (2,)),
        "dq": ArraySpec("DQ", "uint32", (2,), 0),
        "err": ArraySpec("ERR", "float32", (2,), 0.0),
        "var_poisson": ArraySpec("VAR_POISSON", "float32", (2,), 0.0),
        "var_rnoise": ArraySpec("VAR_RNOISE", "float32", (2,), 0.0),
        "var_flat": ArraySpec("VAR_FLAT", "float32", (2,), 0.0),
        "area": ArraySpec("AREA", "float32", (2,)),
        "zeroframe": ArraySpec("ZEROFRAME", "float32", (2,)),
        "con": ArraySpec("CON", "int32", (3,), None, "none"),
        "wht": ArraySpec("WHT", "float32", (2,)),
    }
    _tables: ClassVar[dict[str, str]] = {"int_times": "INT_TIMES"}
    _model_types: ClassVar[tuple[str, ...]] = ("ImageModel", "IFUImageModel")


class CubeModel(DataModel):
    """A stack of per-integration images (``_rateints``, ``_calints``): (nints, ny, nx)."""

    _arrays: ClassVar[dict[str, ArraySpec]] = {
        "data": ArraySpec("SCI", "float32", (3,)),
        "dq": ArraySpec("DQ", "uint32", (3,), 0),
        "err": ArraySpec("ERR", "float32", (3,), 0.0),
        "var_poisson": ArraySpec("VAR_POISSON", "float32", (3,), 0.0),
        "var_rnoise": ArraySpec("VAR_RNOISE", "float32", (3,), 0.0),
        "var_flat": ArraySpec("VAR_FLAT", "float32", (3,), 0.0),
        "area": ArraySpec("AREA", "float32", (2,), None, "image"),
        "zeroframe": ArraySpec("ZEROFRAME", "float32", (3,)),
    }
    _tables: ClassVar[dict[str, str]] = {"int_times": "INT_TIMES"}
    _model_types: ClassVar[tuple[str, ...]] = ("CubeModel",)
