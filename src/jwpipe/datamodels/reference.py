"""Reference-file models (MASK, SATURATION, SUPERBIAS, LINEARITY, DARK, GAIN, READNOISE,
FLAT, PHOTOM, AREA, APCORR as FITS; DISTORTION, FILTEROFFSET, ABVEGAOFFSET as ASDF).

A reference DQ array that comes with a ``DQ_DEF`` table is remapped to the standard JWST bit
values by flag name when it is read; on save a ``DQ_DEF`` table of the standard values is
written, so the file stays self-describing for STScI's tools.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np
from astropy.io import fits

from jwpipe.datamodels import _fitsio, dqflags
from jwpipe.datamodels._asdf_file import AsdfReferenceModel
from jwpipe.datamodels.model_base import ArraySpec, DataModel, _table_array
from jwpipe.errors import DataModelError

__all__ = [
    "ABVegaOffsetModel",
    "ApcorrModel",
    "AsdfReferenceModel",
    "DarkModel",
    "DistortionModel",
    "FilteroffsetModel",
    "FlatModel",
    "GainModel",
    "LinearityModel",
    "MaskModel",
    "PhotomModel",
    "PixelAreaModel",
    "ReadnoiseModel",
    "ReferenceFileModel",
    "SaturationModel",
    "SuperBiasModel",
    "match_rows",
    "remap_dq",
]

log = logging.getLogger(__name__)

DQ_DEF = "DQ_DEF"


def remap_dq(dq: np.ndarray, dq_def: np.ndarray, where: str = "") -> np.ndarray:
    """Translate a DQ array whose bits are defined by a ``DQ_DEF`` table to standard values.

    Parameters
    ----------
    dq : numpy.ndarray
        Integer DQ array in the file's own bit assignment.
    dq_def : numpy.ndarray
        Structured array with (case-insensitive) fields ``VALUE`` and ``NAME``.
    where : str
        File name for log messages.

    Returns
    -------
    numpy.ndarray
        uint32 array with the standard :data:`dqflags.pixel` values; bits named in the table
        with an unknown name are dropped (with a warning).
    """
    fields = {name.upper(): name for name in dq_def.dtype.names}
    values = dq_def[fields["VALUE"]].astype(np.int64) & 0xFFFFFFFF
    names = [_as_str(n).strip().upper() for n in dq_def[fields["NAME"]]]
    source = dq.astype(np.uint32, copy=False)
    known = [(int(v), dqflags.pixel.get(n)) for v, n in zip(values, names) if v != 0]
    if all(s is None or (s == v and v & (v - 1) == 0) for v, s in known):
        # the table uses the standard single-bit values (as stdatamodels writes it): keep the
        # bits it names, in one pass
        for value, name in zip(values, names):
            if value != 0 and dqflags.pixel.get(name) is None:
                log.warning("%s: DQ_DEF flag %r is not a JWST DQ flag name; ignored", where, name)
        keep = 0
        for v, s in known:
            keep |= v if s is not None else 0
        return np.bitwise_and(source, np.uint32(keep))
    out = np.zeros(dq.shape, dtype=np.uint32)
    for value, name in zip(values, names):
        if value == 0:
            continue
        standard = dqflags.pixel.get(name)
        if standard is None:
            log.warning("%s: DQ_DEF flag %r is not a JWST DQ flag name; ignored", where, name)
            continue
        np.bitwise_or(out, np.uint32(standard), out=out, where=(source & np.uint32(value)) != 0)
    return out


def _as_str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def standard_dq_def() -> np.ndarray:
    """The DQ_DEF table of the standard JWST pixel flags (BIT, VALUE, NAME, DESCRIPTION)."""
    names = [name for name, value in dqflags.pixel.items() if value]
    table = np.zeros(
        len(names), dtype=[("BIT", "i4"), ("VALUE", "u4"), ("NAME", "S40"), ("DESCRIPTION", "S80")]
    )
    table["VALUE"] = [dqflags.pixel[n] for n in names]
    table["BIT"] = [int(dqflags.pixel[n]).bit_length() - 1 for n in names]
    table["NAME"] = names
    table["DESCRIPTION"] = [dqflags.descriptions[n] for n in names]
    return table


class ReferenceFileModel(DataModel):
    """Base of reference models: REFTYPE in CRDS parameters, DQ_DEF remapping of ``dq``."""

    reftype: ClassVar[str] = ""

    def __init__(self, init: Any = None, **arrays: Any) -> None:
        super().__init__(init, **arrays)
        if self._source_path is None and self.meta.reftype is None and self.reftype:
            self.meta.reftype = self.reftype

    def _load(self, path: str) -> None:
        super()._load(path)
        if "dq" not in self._arrays:
            return
        for i, hdu in enumerate(self._other_hdus):
            if hdu.name.upper() == DQ_DEF and isinstance(hdu, fits.BinTableHDU):
                object.__setattr__(self, "_dq_def", _table_array(hdu))
                del self._other_hdus[i]
                break

    def _postprocess_array(self, name: str, array: np.ndarray) -> np.ndarray:
        dq_def = self.__dict__.get("_dq_def")
        if name == "dq" and dq_def is not None and len(dq_def):
            return remap_dq(array, dq_def, self._where())
        return array

    def _extra_hdus(self) -> list[fits.hdu.base._BaseHDU]:
        if "dq" not in self._arrays or not self.has_array("dq"):
            return []
        return [_fitsio.table_hdu(standard_dq_def(), DQ_DEF)]


def _dq(like: str = "image") -> ArraySpec:
    return ArraySpec("DQ", "uint32", (2,), 0, like)


class MaskModel(ReferenceFileModel):
    """Bad-pixel mask (REFTYPE MASK): ``dq`` (ny, nx) uint32."""

    reftype = "MASK"
    _primary = "dq"
    _arrays: ClassVar[dict[str, ArraySpec]] = {"dq": ArraySpec("DQ", "uint32", (2,))}


class SaturationModel(ReferenceFileModel):
    """Saturation thresholds in DN (REFTYPE SATURATION): ``data``, ``dq``."""

    reftype = "SATURATION"
    _arrays: ClassVar[dict[str, ArraySpec]] = {
        "data": ArraySpec("SCI", "float32", (2,)),
        "dq": _dq(),
    }


class SuperBiasModel(ReferenceFileModel):
    """Super bias (REFTYPE SUPERBIAS): ``data``, ``err``, ``dq``."""

    reftype = "SUPERBIAS"
    _arrays: ClassVar[dict[str, ArraySpec]] = {
        "data": ArraySpec("SCI", "float32", (2,)),
        "err": ArraySpec("ERR", "float32", (2,), 0.0),
        "dq": _dq(),
    }


class LinearityModel(ReferenceFileModel):
    """Linearity polynomial (REFTYPE LINEARITY): ``coeffs`` (ncoeffs, ny, nx), ``dq``."""

    reftype = "LINEARITY"
    _primary = "coeffs"
    _arrays: ClassVar[dict[str, ArraySpec]] = {
        "coeffs": ArraySpec("COEFFS", "float32", (3,)),
        "dq": _dq(),
        "inv_coeffs": ArraySpec("INV_COEFFS", "float32", (3,), None, "none"),
    }


class DarkModel(ReferenceFileModel):
    """NIR dark (REFTYPE DARK): ``data`` (ngroups, ny, nx) cumulative DN, ``err``, ``dq``.

    NFRAMES and GROUPGAP are required: the dark step averages dark frames with them.
    """

    reftype = "DARK"
    _arrays: ClassVar[dict[str, ArraySpec]] = {
        "data": ArraySpec("SCI", "float32", (3,)),
        "err": ArraySpec("ERR", "float32", (3,), 0.0),
        "dq": _dq(),
        "average_dark_current": ArraySpec("AVDRKCUR", "float32", (2,), None, "image"),
    }
    _required_keywords: ClassVar[tuple[str, ...]] = ("exposure.nframes", "exposure.groupgap")


class GainModel(ReferenceFileModel):
    """Gain in e-/DN (REFTYPE GAIN): ``data``."""

    reftype = "GAIN"
    _arrays: ClassVar[dict[str, ArraySpec]] = {"data": ArraySpec("SCI", "float32", (2,))}


class ReadnoiseModel(ReferenceFileModel):
    """CDS read noise in DN (REFTYPE READNOISE): ``data``."""

    reftype = "READNOISE"
    _arrays: ClassVar[dict[str, ArraySpec]] = {"data": ArraySpec("SCI", "float32", (2,))}


class FlatModel(ReferenceFileModel):
    """Imaging flat field (REFTYPE FLAT): ``data``, ``err``, ``dq``."""

    reftype = "FLAT"
    _arrays: ClassVar[dict[str, ArraySpec]] = {
        "data": ArraySpec("SCI", "float32", (2,)),
        "err": ArraySpec("ERR", "float32", (2,), 0.0),
        "dq": _dq(),
    }


class PixelAreaModel(ReferenceFileModel):
    """Relative pixel area (REFTYPE AREA): ``data``; PIXAR_SR/PIXAR_A2 in the primary header."""

    reftype = "AREA"
    _arrays: ClassVar[dict[str, ArraySpec]] = {"data": ArraySpec("SCI", "float32", (2,))}
    _keyword_hdu: ClassVar[dict[str, str]] = {"SCI": "PRIMARY"}


class PhotomModel(ReferenceFileModel):
    """Imaging photometric calibration (REFTYPE PHOTOM): ``phot_table`` (BINTABLE PHOTOM).

    Columns: ``filter``, ``pupil`` (NIRCam/NIRISS) or ``subarray`` (MIRI), ``photmjsr``
    [MJy/sr per DN/s], ``uncertainty``. PIXAR_SR/PIXAR_A2 are in the primary header.
    """

    reftype = "PHOTOM"
    _primary = None
    _arrays: ClassVar[dict[str, ArraySpec]] = {}
    _tables: ClassVar[dict[str, str]] = {"phot_table": "PHOTOM"}
    _required_tables: ClassVar[tuple[str, ...]] = ("phot_table",)
    _keyword_hdu: ClassVar[dict[str, str]] = {"SCI": "PRIMARY"}
    _model_types: ClassVar[tuple[str, ...]] = (
        "NrcImgPhotomModel",
        "NisImgPhotomModel",
        "MirImgPhotomModel",
        "FgsImgPhotomModel",
    )

    def find_row(self, filter: str | None, pupil: str | None = None) -> np.void | None:
        """The PHOTOM row matching ``filter`` (and ``pupil`` if the table has that column)."""
        table = self.phot_table
        names = {n.lower(): n for n in table.dtype.names}
        match = np.ones(len(table), dtype=bool)
        for column, value in (("filter", filter), ("pupil", pupil)):
            if column in names and value is not None:
                stored = np.char.strip(np.char.upper(table[names[column]].astype(str)))
                match &= stored == value.strip().upper()
        rows = np.flatnonzero(match)
        return table[rows[0]] if rows.size else None


def match_rows(table: Any, **selectors: str | None) -> np.ndarray:
    """Indices of the rows of ``table`` whose selector columns equal the given values.

    Column names and string values compare case-insensitively with blanks stripped; a
    selector whose column the table lacks, or whose value is None, does not restrict.
    ``table`` is a numpy structured array or an astropy ``Table``.
    """
    names = list(table.dtype.names if hasattr(table, "dtype") and table.dtype.names
                 else table.colnames)
    by_lower = {n.lower(): n for n in names}
    match = np.ones(len(table), dtype=bool)
    for column, value in selectors.items():
        if value is None or column.lower() not in by_lower:
            continue
        stored = np.asarray([_as_str(v).strip().upper() for v in table[by_lower[column.lower()]]])
        match &= stored == str(value).strip().upper()
    return np.flatnonzero(match)


class ApcorrModel(ReferenceFileModel):
    """Imaging aperture corrections (REFTYPE APCORR): ``apcorr_table`` (BINTABLE APCORR).

    Columns ``filter``, ``pupil`` (NIRCam/NIRISS) or ``subarray`` (MIRI), ``eefraction``,
    ``radius`` [pixels], ``apcorr``, ``skyin``, ``skyout`` (one row per encircled-energy
    fraction), as in the ``*img_apcorr`` schemas of ``stdatamodels``.
    """

    reftype = "APCORR"
    _primary = None
    _arrays: ClassVar[dict[str, ArraySpec]] = {}
    _tables: ClassVar[dict[str, str]] = {"apcorr_table": "APCORR"}
    _required_tables: ClassVar[tuple[str, ...]] = ("apcorr_table",)
    _model_types: ClassVar[tuple[str, ...]] = (
        "NrcImgApcorrModel",
        "NisImgApcorrModel",
        "MirImgApcorrModel",
        "FgsImgApcorrModel",
    )

    def find_rows(self, filter: str | None, pupil: str | None = None,
                  subarray: str | None = None) -> np.ndarray:
        """Rows for an exposure's filter and pupil (or MIRI subarray), by ``eefraction``."""
        table = self.apcorr_table
        rows = table[match_rows(table, filter=filter, pupil=pupil, subarray=subarray)]
        names = {n.lower(): n for n in table.dtype.names}
        if "eefraction" in names and len(rows):
            rows = rows[np.argsort(rows[names["eefraction"]], kind="stable")]
        return rows


class DistortionModel(AsdfReferenceModel):
    """Imaging distortion (REFTYPE DISTORTION, ASDF): ``model`` maps detector pixels
    (0-based, full frame) to V2/V3 in arcsec; ``meta.input_units``/``output_units``."""

    reftype = "DISTORTION"
    _required = ("model",)

    def _validate(self) -> None:
        from astropy.modeling import Model

        model = self.tree["model"]
        if not isinstance(model, Model) or model.n_inputs != 2 or model.n_outputs != 2:
            raise DataModelError(
                f"{self._where()}: 'model' must be an astropy modeling transform with two "
                f"inputs and two outputs (detector x, y -> V2, V3); found {type(model).__name__}")
        out = str(self.tree["meta"].get("output_units", "arcsec")).strip().lower()
        if out not in ("arcsec", "arcsecond", "arcseconds"):
            raise DataModelError(
                f"{self._where()}: output_units {out!r}; jwpipe reads imaging distortion "
                "references whose model gives V2/V3 in arcsec")

    @property
    def model(self) -> Any:
        """The detector -> V2V3 transform (astropy ``Model``)."""
        return self.tree["model"]


class FilteroffsetModel(AsdfReferenceModel):
    """Filter-dependent pixel offsets (REFTYPE FILTEROFFSET, ASDF): ``filters``, a list of
    ``{filter, [pupil], column_offset, row_offset}``."""

    reftype = "FILTEROFFSET"
    _required = ("filters",)

    def _validate(self) -> None:
        filters = self.tree["filters"]
        if not isinstance(filters, list) or not all(isinstance(f, dict) for f in filters):
            raise DataModelError(f"{self._where()}: 'filters' must be a list of mappings")

    @property
    def filters(self) -> list[dict[str, Any]]:
        """The offset entries."""
        return self.tree["filters"]

    def find_offset(self, filter: str | None, pupil: str | None = None
                    ) -> tuple[float, float] | None:
        """``(column_offset, row_offset)`` in pixels for an exposure, None without a match.

        An entry matches when its ``filter`` equals the exposure's and its ``pupil`` (where the
        entry has one: NIRCam, NIRISS) equals the exposure's pupil.
        """
        def same(a: Any, b: Any) -> bool:
            return str(a).strip().upper() == str(b).strip().upper()

        for entry in self.filters:
            if not same(entry.get("filter"), filter):
                continue
            if "pupil" in entry and not same(entry["pupil"], pupil):
                continue
            col, row = entry.get("column_offset"), entry.get("row_offset")
            if col is None or row is None or "N/A" in (col, row):
                return None
            return float(col), float(row)
        return None


class ABVegaOffsetModel(AsdfReferenceModel):
    """AB - Vega magnitude offsets (REFTYPE ABVEGAOFFSET, ASDF): ``abvega_offset`` table with
    ``filter``/``pupil`` (NIRCam, NIRISS), ``filter`` (MIRI) or ``detector`` (FGS) columns."""

    reftype = "ABVEGAOFFSET"
    _required = ("abvega_offset",)

    def _validate(self) -> None:
        table = self.tree["abvega_offset"]
        names = getattr(table, "colnames", None) or getattr(
            getattr(table, "dtype", None), "names", None) or ()
        if "abvega_offset" not in names:
            raise DataModelError(
                f"{self._where()}: 'abvega_offset' must be a table with an abvega_offset column")

    @property
    def abvega_offset(self) -> Any:
        """The offsets table (astropy ``Table``)."""
        return self.tree["abvega_offset"]

    def find_offset(self, filter: str | None = None, pupil: str | None = None,
                    detector: str | None = None) -> float | None:
        """``m_AB - m_Vega`` for an exposure, None without a matching row."""
        table = self.abvega_offset
        rows = match_rows(table, filter=filter, pupil=pupil, detector=detector)
        return float(table["abvega_offset"][rows[0]]) if rows.size else None
