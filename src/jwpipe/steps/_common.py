"""Helpers shared by the Detector1 step classes: input checks and reference loading.

Steps are thin: they check the input, open and cut the reference files, call a pure algorithm
from :mod:`jwpipe.algorithms` and return the model. These helpers keep those three chores in
one place so every step reports problems the same way.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from jwpipe.errors import ReferenceFileError, StepInputError

__all__ = [
    "check_produced_arrays",
    "check_ramp",
    "check_rate_product",
    "cut",
    "load_reference",
    "reference_name",
]


def _label(model: Any) -> str:
    return getattr(model.meta, "filename", None) or type(model).__name__


def check_ramp(model: Any, step: str) -> None:
    """Raise unless ``model`` is a ramp whose shape agrees with NINTS/NGROUPS.

    Parameters
    ----------
    model : RampModel
        The step's input.
    step : str
        Step name for messages.

    Raises
    ------
    StepInputError
        The input is not a RampModel, its SCI is not 4-D, or NGROUPS/NINTS (or
        INTSTART/INTEND for segmented exposures) disagree with the array shape.
    """
    from jwpipe.datamodels import RampModel

    if not isinstance(model, RampModel):
        raise StepInputError(
            f"{step}: {_label(model)} is a {type(model).__name__}; this step needs a ramp "
            "(RampModel: an _uncal or _ramp file)"
        )
    shape = model.shape
    if shape is None or len(shape) != 4:
        raise StepInputError(
            f"{step}: {_label(model)} SCI must be 4-D (nints, ngroups, ny, nx), got {shape}"
        )
    check_produced_arrays(model, step)
    nints, ngroups = shape[:2]
    exp = model.meta.exposure
    if exp.ngroups is not None and int(exp.ngroups) != ngroups:
        raise StepInputError(
            f"{step}: {_label(model)} has NGROUPS={exp.ngroups} but SCI holds {ngroups} groups"
        )
    start, end = exp.integration_start, exp.integration_end
    if start is not None and end is not None:
        expected = int(end) - int(start) + 1
        what = f"INTSTART={start}, INTEND={end}"
    else:
        expected = None if exp.nints is None else int(exp.nints)
        what = f"NINTS={exp.nints}"
    if expected is not None and expected != nints:
        raise StepInputError(
            f"{step}: {_label(model)} has {what} but SCI holds {nints} integrations"
        )


def check_rate_product(model: Any, step: str) -> None:
    """Raise unless ``model`` is a rate (ImageModel) or rateints (CubeModel) product."""
    from jwpipe.datamodels import CubeModel, ImageModel

    if not isinstance(model, ImageModel | CubeModel):
        raise StepInputError(
            f"{step}: {_label(model)} is a {type(model).__name__}; this step needs a rate "
            "(ImageModel) or rateints (CubeModel) product"
        )
    check_produced_arrays(model, step)


#: Arrays a completed step always leaves in its product (``meta.cal_step`` alias -> arrays by
#: model class name). A file whose status keywords say the step ran but which lacks one of
#: them was truncated or damaged; reading the missing array would silently give zeros.
PRODUCED_ARRAYS: dict[str, dict[str, tuple[str, ...]]] = {
    "dq_init": {"RampModel": ("pixeldq", "groupdq")},
    "ramp_fit": {"ImageModel": ("dq", "err", "var_poisson", "var_rnoise"),
                 "CubeModel": ("dq", "err", "var_poisson", "var_rnoise")},
}


def check_produced_arrays(model: Any, step: str) -> None:
    """Raise if a step recorded as complete in ``model`` left out an array it always writes.

    Raises
    ------
    StepInputError
        Naming the file, the missing extension and the step whose status says it ran.
    """
    from jwpipe.datamodels.keywords import CAL_STEP_KEYWORDS

    kind = type(model).__name__
    for producer, by_class in PRODUCED_ARRAYS.items():
        if getattr(model.meta.cal_step, producer, None) != "COMPLETE":
            continue
        for name in by_class.get(kind, ()):
            if not model.has_array(name):
                extname = model._arrays[name].extname
                where = getattr(model, "_source_path", None) or _label(model)
                raise StepInputError(
                    f"{step}: {where} has no {extname} extension although "
                    f"{CAL_STEP_KEYWORDS[producer]}=COMPLETE says {producer} wrote it: the file "
                    "is truncated or damaged; rebuild it rather than reading zeros")


def reference_name(ref: Any) -> str:
    """File name of a reference model, for messages."""
    name = getattr(ref.meta, "filename", None)
    return os.path.basename(name) if name else f"<{type(ref).__name__}>"


def _reference_keywords(ref: Any) -> dict[str, Any]:
    """Primary keywords of a reference (SCI-header values fill gaps, e.g. subarray keys)."""
    merged: dict[str, Any] = {}
    for ext in ("SCI", "PRIMARY"):
        header = ref.header(ext)
        for key in header:
            if key:
                merged[key] = header[key]
    return merged


def load_reference(
    step: Any, model: Any, reftype: str, model_class: type, array: str
) -> tuple[Any, tuple[slice, slice]] | None:
    """Open a step's reference of ``reftype`` and check it fits ``model``.

    Parameters
    ----------
    step : Step
        The running step (gives the override or the store's choice).
    model : DataModel
        The science data.
    reftype : str
        Reference type (``saturation``, ``dark``, ...).
    model_class : type
        Expected reference model class (``SaturationModel``, ...).
    array : str
        Name of the reference's main array, whose shape locates it on the detector.

    Returns
    -------
    (reference model, (yslice, xslice)) or None
        None when the reference is not applicable (``N/A``); the slices cut reference arrays to
        the science subarray.

    Raises
    ------
    ReferenceFileError
        The reference cannot be opened, is of the wrong kind, belongs to another
        instrument/detector, or does not cover the science subarray.
    """
    from jwpipe import datamodels
    from jwpipe.errors import DataModelError
    from jwpipe.references import check_reference_matches
    from jwpipe.stpipe.step import is_datamodel

    source = step.get_reference_file(model, reftype)
    if isinstance(source, str) and source in ("N/A", ""):
        return None
    if is_datamodel(source):
        ref = source
    else:
        try:
            ref = datamodels.open(source)
        except DataModelError as exc:
            raise ReferenceFileError(
                f"{step.qualified_name}: cannot open the {reftype} reference: {exc}"
            ) from None
    if not isinstance(ref, model_class):
        raise ReferenceFileError(
            f"{step.qualified_name}: {reftype} reference {reference_name(ref)} is a "
            f"{type(ref).__name__}, expected a {model_class.__name__}"
        )
    ref_shape = ref.array_shape(array)  # the array itself is read only when the step uses it
    if ref_shape is None:
        raise ReferenceFileError(
            f"{step.qualified_name}: {reftype} reference {reference_name(ref)} has no "
            f"{array} array"
        )
    slices = check_reference_matches(
        _reference_keywords(ref), model.get_crds_parameters(), ref_shape,
        model.shape, name=f"{step.qualified_name}: {reftype} reference {reference_name(ref)}",
    )
    return ref, slices


def cut(array: Any, slices: tuple[slice, slice]) -> Any:
    """``array[..., y, x]`` for an array or a plane stack (None passes through)."""
    if array is None:
        return None
    ys, xs = slices
    if hasattr(array, "cut"):
        return array.cut(ys, xs)
    return array[..., ys, xs]


def load_gain_readnoise(step: Any, model: Any) -> tuple[np.ndarray, np.ndarray, Any]:
    """Gain and read-noise arrays cut to the science region, and the gain model.

    Raises
    ------
    ReferenceFileError
        Either reference is N/A, or the gain has no positive value in the science region.
    """
    from jwpipe.datamodels import GainModel, ReadnoiseModel

    gain_ref = load_reference(step, model, "gain", GainModel, "data")
    rn_ref = load_reference(step, model, "readnoise", ReadnoiseModel, "data")
    if gain_ref is None or rn_ref is None:
        raise ReferenceFileError(
            f"{step.qualified_name}: gain and readnoise references are required (got N/A)")
    gain = cut(gain_ref[0].data, gain_ref[1])
    if not np.any(gain > 0):
        raise ReferenceFileError(
            f"{step.qualified_name}: gain reference {reference_name(gain_ref[0])} has no "
            "positive value in the science region")
    return gain, cut(rn_ref[0].data, rn_ref[1]), gain_ref[0]
