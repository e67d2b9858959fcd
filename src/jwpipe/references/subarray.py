"""Check that a reference file fits the science data, and cut it to the science subarray.

Subarray keywords (SUBSTRT1/2 1-based, SUBSIZE1/2) follow the JWST convention: axis 1 is x
(numpy's last axis), axis 2 is y. A reference without them is taken to be full frame when its
shape is a full frame (2048x2048 near-IR, 1024x1032 MIRI), else to start at pixel (1, 1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from jwpipe.errors import ReferenceFileError

#: Pattern values that accept any dataset value.
WILDCARDS: frozenset[str] = frozenset({"ANY", "N/A", "GENERIC", "*"})


def normalize_value(value: Any) -> str:
    """Canonical string form of a keyword value: stripped, upper case; ``True`` -> ``T``,
    ``4.0`` -> ``4``."""
    if isinstance(value, bool):
        return "T" if value else "F"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip().upper()
    return text[0] if text in ("TRUE", "FALSE") else text


def parse_pattern(text: str) -> list[str]:
    """Split a CRDS pattern value ``"NIS | NISRAPID |"`` into ``["NIS", "NISRAPID"]``."""
    return [v for v in (normalize_value(part) for part in str(text).split("|")) if v]

__all__ = ["Region", "check_reference_matches", "region_of", "subarray_slices"]

Region = tuple[int, int, int, int]  # xstart, ystart (1-based), xsize, ysize


def _get(params: Any, key: str) -> Any:
    try:
        value = params.get(key)
    except AttributeError:
        return None
    if isinstance(value, str) and not value.strip():
        return None
    return value


def region_of(params: Any, shape: Sequence[int] | None, what: str) -> Region:
    """Return the (xstart, ystart, xsize, ysize) region of a dataset or reference.

    Parameters
    ----------
    params : mapping or astropy Header
        Keywords (SUBSTRT1/2, SUBSIZE1/2 are used when present).
    shape : sequence of int, optional
        Array shape; its last two axes are (ny, nx).
    what : str
        Name of the file/data for error messages.

    Raises
    ------
    ReferenceFileError
        If the keywords are incomplete, invalid or disagree with the array shape.
    """
    keys = ("SUBSTRT1", "SUBSTRT2", "SUBSIZE1", "SUBSIZE2")
    values = [_get(params, k) for k in keys]
    ny, nx = (int(shape[-2]), int(shape[-1])) if shape is not None and len(shape) >= 2 else (0, 0)
    if all(v is None for v in values):
        if not nx:
            raise ReferenceFileError(f"{what}: no SUBSTRT/SUBSIZE keywords and no array shape")
        return (1, 1, nx, ny)
    if any(v is None for v in values):
        missing = [k for k, v in zip(keys, values) if v is None]
        raise ReferenceFileError(f"{what}: incomplete subarray keywords, missing {missing}")
    try:
        x0, y0, xs, ys = (int(v) for v in values)
    except (TypeError, ValueError):
        raise ReferenceFileError(f"{what}: subarray keywords are not integers: {values}") from None
    if x0 < 1 or y0 < 1 or xs < 1 or ys < 1:
        raise ReferenceFileError(f"{what}: invalid subarray keywords {dict(zip(keys, values))}")
    if nx and (xs, ys) != (nx, ny):
        raise ReferenceFileError(
            f"{what}: SUBSIZE1/2 = {xs}x{ys} disagree with the array shape {ny}x{nx} (ny x nx)"
        )
    return (x0, y0, xs, ys)


def subarray_slices(
    ref_params: Any,
    sci_params: Any,
    ref_shape: Sequence[int] | None = None,
    sci_shape: Sequence[int] | None = None,
) -> tuple[slice, slice]:
    """Return the ``(y, x)`` slices that cut a reference down to the science subarray.

    ``ref_array[..., ys, xs]`` then has the science's (ny, nx).

    Raises
    ------
    ReferenceFileError
        If the reference region does not cover the science region.
    """
    rx0, ry0, rxs, rys = region_of(ref_params, ref_shape, "reference")
    sx0, sy0, sxs, sys_ = region_of(sci_params, sci_shape, "science data")
    x0, y0 = sx0 - rx0, sy0 - ry0
    if x0 < 0 or y0 < 0 or x0 + sxs > rxs or y0 + sys_ > rys:
        raise ReferenceFileError(
            f"reference region x {rx0}..{rx0 + rxs - 1}, y {ry0}..{ry0 + rys - 1} does not cover "
            f"the science subarray x {sx0}..{sx0 + sxs - 1}, y {sy0}..{sy0 + sys_ - 1} "
            "(1-based SUBSTRT/SUBSIZE)"
        )
    return slice(y0, y0 + sys_), slice(x0, x0 + sxs)


def _allowed(ref: Any, key: str, pattern_key: str) -> list[str] | None:
    pattern = _get(ref, pattern_key)
    if pattern is not None:
        values = parse_pattern(pattern)
    else:
        value = _get(ref, key)
        if value is None:
            return None
        values = [normalize_value(value)]
    if not values or set(values) & (WILDCARDS | {"MULTIPLE"}):
        return None
    return values


def check_reference_matches(
    ref: Mapping[str, Any] | Any,
    sci_params: Mapping[str, Any],
    ref_shape: Sequence[int] | None,
    sci_shape: Sequence[int] | None,
    *,
    name: str = "reference",
) -> tuple[slice, slice]:
    """Raise if a reference does not belong to the data; return the subarray slices.

    Parameters
    ----------
    ref : mapping or astropy Header
        The reference's keywords (INSTRUME, DETECTOR, P_DETECT, SUBSTRT1/2, SUBSIZE1/2).
    sci_params : mapping
        The science data's keywords (``get_crds_parameters()``).
    ref_shape, sci_shape : sequence of int
        Array shapes; the last two axes are (ny, nx).
    name : str
        File name used in messages.

    Returns
    -------
    tuple of slice
        ``(y, x)`` slices of the reference covering the science data.

    Raises
    ------
    ReferenceFileError
        If INSTRUME or DETECTOR differ, or the reference cannot cover the science subarray.
        A mismatched reference is always an error, never a silent no-op.
    """
    for key, pkey in (("INSTRUME", "P_INSTRU"), ("DETECTOR", "P_DETECT")):
        allowed = _allowed(ref, key, pkey)
        sci = _get(sci_params, key)
        if allowed is not None and sci is not None and normalize_value(sci) not in allowed:
            raise ReferenceFileError(
                f"{name}: {key} {'|'.join(allowed)} does not match the data's {key} "
                f"{normalize_value(sci)}"
            )
    try:
        return subarray_slices(ref, sci_params, ref_shape, sci_shape)
    except ReferenceFileError as exc:
        raise ReferenceFileError(f"{name}: {exc}") from None
