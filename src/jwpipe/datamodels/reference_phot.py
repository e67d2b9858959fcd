"""Minimal readers of the two source-catalogue references, in the stdatamodels layouts.

* APCORR (imaging, e.g. ``NrcImgApcorrModel``): FITS with a binary table extension ``APCORR``,
  columns ``filter``, ``pupil``, ``eefraction``, ``radius`` (native detector pixels),
  ``apcorr``, ``skyin``, ``skyout`` (background annulus radii, native pixels).
* ABVEGAOFFSET (``ABVegaOffsetModel``): ASDF whose tree holds ``abvega_offset``, a table with
  columns ``filter``, ``pupil``, ``abvega_offset`` (AB minus Vega magnitude).

Rows are selected by FILTER and PUPIL (MIRI files have no pupil column: filter only).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from jwpipe.errors import ReferenceFileError

__all__ = ["ApertureCorrection", "read_abvega_offset", "read_apcorr"]


@dataclass(frozen=True)
class ApertureCorrection:
    """The APCORR rows of one filter/pupil, for chosen encircled-energy levels.

    Attributes
    ----------
    ee : tuple of int
        Encircled-energy levels in percent (increasing).
    radius : ndarray
        Aperture radius of each level, native detector pixels.
    apcorr : ndarray
        Multiplicative aperture correction of each level.
    skyin, skyout : float
        Background annulus of the largest level, native pixels.
    curve_radius, curve_ee : ndarray or None
        Every row of the filter/pupil: radius (native pixels) and encircled-energy fraction,
        by increasing radius (the encircled-energy curve).
    """

    ee: tuple[int, ...]
    radius: np.ndarray
    apcorr: np.ndarray
    skyin: float
    skyout: float
    curve_radius: np.ndarray | None = None
    curve_ee: np.ndarray | None = None


def _text(values: Any) -> np.ndarray:
    return np.array([(v.decode() if isinstance(v, bytes) else str(v)).strip().upper()
                     for v in values])


def _select(table: Any, filt: str | None, pupil: str | None, path: str) -> np.ndarray:
    names = {n.lower(): n for n in table.colnames}
    if "filter" not in names:
        raise ReferenceFileError(f"{path}: the table has no 'filter' column")
    rows = _text(table[names["filter"]]) == str(filt or "").upper()
    if "pupil" in names and pupil is not None:
        rows &= _text(table[names["pupil"]]) == str(pupil).upper()
    if not rows.any():
        raise ReferenceFileError(f"{path}: no row for FILTER={filt} PUPIL={pupil}")
    return rows


def read_apcorr(path: str | os.PathLike, filt: str | None, pupil: str | None,
                ee: tuple[int, ...] = (30, 50, 70)) -> ApertureCorrection:
    """The aperture radii and corrections of ``ee`` (percent) for one filter/pupil."""
    from astropy.table import Table

    path = os.fspath(path)
    try:
        table = Table.read(path, hdu="APCORR")
    except (OSError, KeyError, ValueError) as exc:
        raise ReferenceFileError(f"{path}: cannot read the APCORR table ({exc})") from None
    sel = table[_select(table, filt, pupil, path)]
    names = {n.lower(): n for n in sel.colnames}
    missing = [c for c in ("eefraction", "radius", "apcorr", "skyin", "skyout")
               if c not in names]
    if missing:
        raise ReferenceFileError(f"{path}: APCORR table lacks column(s) {', '.join(missing)}")
    percent = np.round(np.asarray(sel[names["eefraction"]], float) * 100).astype(int)
    idx = []
    for level in ee:
        hit = np.flatnonzero(percent == int(level))
        if hit.size != 1:
            raise ReferenceFileError(
                f"{path}: {hit.size} rows for encircled energy {level} % with FILTER={filt} "
                f"PUPIL={pupil} (levels present: {sorted(set(percent.tolist()))})")
        idx.append(int(hit[0]))
    col = {c: np.asarray(sel[names[c]], dtype=np.float64)[idx]
           for c in ("radius", "apcorr", "skyin", "skyout")}
    all_r = np.asarray(sel[names["radius"]], dtype=np.float64)
    all_ee = np.asarray(sel[names["eefraction"]], dtype=np.float64)
    order = np.argsort(all_r, kind="stable")
    return ApertureCorrection(tuple(int(e) for e in ee), col["radius"], col["apcorr"],
                              float(col["skyin"][-1]), float(col["skyout"][-1]),
                              all_r[order], all_ee[order])


def read_abvega_offset(path: str | os.PathLike, filt: str | None, pupil: str | None) -> float:
    """AB minus Vega magnitude of one filter/pupil (Vega mag = AB mag - offset)."""
    import asdf
    from astropy.table import Table

    path = os.fspath(path)
    try:
        with asdf.open(path, lazy_load=False, memmap=False) as af:
            raw = af.tree.get("abvega_offset")
            table = raw if isinstance(raw, Table) else Table(raw) if raw is not None else None
            if table is None:
                raise ReferenceFileError(f"{path}: no 'abvega_offset' table in the tree")
            table = Table(table, copy=True)
    except ReferenceFileError:
        raise
    except Exception as exc:  # asdf raises many types for a damaged file
        raise ReferenceFileError(f"{path}: cannot read ABVEGAOFFSET ({exc})") from None
    rows = _select(table, filt, pupil, path)
    names = {n.lower(): n for n in table.colnames}
    if "abvega_offset" not in names:
        raise ReferenceFileError(f"{path}: the table has no 'abvega_offset' column")
    return float(np.asarray(table[names["abvega_offset"]], float)[rows][0])
