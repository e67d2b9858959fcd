"""Header keywords of science and reference files (FITS primary header or ASDF ``meta``)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from jwpipe.errors import ReferenceFileError

__all__ = ["parameters_from_file", "read_reference_header"]

#: ASDF ``meta`` paths of parameter/reference files -> FITS keyword.
_ASDF_KEYS: dict[str, str] = {
    "reftype": "REFTYPE",
    "useafter": "USEAFTER",
    "instrument.name": "INSTRUME",
    "instrument.detector": "DETECTOR",
    "instrument.channel": "CHANNEL",
    "instrument.module": "MODULE",
    "instrument.filter": "FILTER",
    "instrument.pupil": "PUPIL",
    "instrument.band": "BAND",
    "exposure.type": "EXP_TYPE",
    "exposure.readpatt": "READPATT",
    "exposure.noutputs": "NOUTPUTS",
    "subarray.name": "SUBARRAY",
    "visit.tsovisit": "TSOVISIT",
}
_SELECTORS = frozenset(_ASDF_KEYS.values()) - {"REFTYPE", "USEAFTER"}


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(tree, dict):
        for key, value in tree.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    else:
        out[prefix] = tree
    return out


def _asdf_header(path: Path) -> dict[str, Any]:
    import asdf

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with asdf.open(path, lazy_load=True, memmap=False) as af:
                meta = _flatten(dict(af.tree.get("meta", {}) or {}))
    except Exception as exc:  # asdf raises many types for a damaged file
        raise ReferenceFileError(f"{path}: cannot read ASDF reference file ({exc})") from None
    header: dict[str, Any] = {}
    for dotted, value in meta.items():
        key = dotted.lower()
        if key in _ASDF_KEYS:
            header[_ASDF_KEYS[key]] = value
        leaf = key.rsplit(".", 1)[-1]
        if leaf == "p_exptype":  # the schemas' name for P_EXP_TY
            header["P_EXP_TY"] = value
        elif leaf.startswith("p_") and leaf[2:].upper() in _SELECTORS:
            header[("P_" + leaf[2:].upper())[:8]] = value
    return header


def read_reference_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The keywords of a FITS (primary header) or ASDF (``meta``) reference file.

    Raises
    ------
    ReferenceFileError
        If the file cannot be read.
    """
    path = Path(path)
    if path.name.lower().endswith(".asdf"):
        return _asdf_header(path)
    from astropy.io import fits

    try:
        header = fits.getheader(path, 0)
    except (OSError, ValueError) as exc:
        raise ReferenceFileError(f"{path}: cannot read FITS reference file ({exc})") from None
    return {key: header[key] for key in header if key and key not in ("COMMENT", "HISTORY")}


def parameters_from_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Selection parameters of a science FITS file: its primary keywords (keyword -> value).

    A stand-in for ``model.get_crds_parameters()`` when no datamodel is at hand.

    Raises
    ------
    ReferenceFileError
        If the file cannot be read as FITS.
    """
    from astropy.io import fits

    try:
        header = fits.getheader(path, 0)
    except (OSError, ValueError) as exc:
        raise ReferenceFileError(f"{path}: cannot read FITS header ({exc})") from None
    return {key: header[key] for key in header if key and key not in ("COMMENT", "HISTORY")}
