"""The store's ``index.yaml``: build it from reference-file headers, read and validate it.

Layout (documented in ``docs/references.md``)::

    format: jwpipe-refs-index-1
    name: <store name>
    references:
      - reftype: dark
        file: jwst_nircam_dark_0004.fits      # path relative to the store, or N/A
        useafter: '2022-01-01T00:00:00'
        selectors: {INSTRUME: [NIRCAM], DETECTOR: [NRCA1], READPATT: [RAPID]}
        size: 1234567                         # bytes (files only)
        sha256: 9f86...                       # content hash (files only)

Entries whose ``file`` is ``N/A`` are rules saying "this reference type does not apply to such
data"; they are written by hand (or by the simulator) and kept when the index is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from jwpipe.atomic import write_text_atomic
from jwpipe.errors import ReferenceFileError
from jwpipe.references.selectors import (
    PATTERN_KEYWORDS,
    SELECTOR_KEYWORDS,
    normalize_value,
    parse_pattern,
    parse_useafter,
)

__all__ = [
    "FORMAT",
    "INDEX_NAME",
    "NOT_APPLICABLE",
    "IndexEntry",
    "StoreIndex",
    "build_index",
    "file_sha256",
    "parameters_from_file",
    "read_index",
    "read_reference_header",
    "write_index",
]

FORMAT = "jwpipe-refs-index-1"
INDEX_NAME = "index.yaml"
NOT_APPLICABLE = "N/A"
REFERENCE_SUFFIXES = (".fits", ".fits.gz", ".asdf")

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


@dataclass(frozen=True)
class IndexEntry:
    """One reference file (or N/A rule) of the index."""

    reftype: str
    file: str
    useafter: datetime
    selectors: dict[str, tuple[str, ...]]
    size: int | None = None
    sha256: str | None = None

    @property
    def not_applicable(self) -> bool:
        """True for an N/A rule."""
        return self.file == NOT_APPLICABLE

    def to_dict(self) -> dict[str, Any]:
        """The YAML form of the entry."""
        out: dict[str, Any] = {
            "reftype": self.reftype,
            "file": self.file,
            "useafter": self.useafter.strftime("%Y-%m-%dT%H:%M:%S"),
            "selectors": {k: list(v) for k, v in sorted(self.selectors.items())},
        }
        if self.size is not None:
            out["size"] = self.size
        if self.sha256 is not None:
            out["sha256"] = self.sha256
        return out


@dataclass
class StoreIndex:
    """A parsed ``index.yaml``."""

    name: str
    entries: list[IndexEntry] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The YAML form of the index."""
        entries = sorted(self.entries, key=lambda e: (e.reftype, e.file, e.useafter))
        return {"format": FORMAT, "name": self.name, "references": [e.to_dict() for e in entries]}

    def content_hash(self) -> str:
        """SHA-256 of the canonical index content (names, rules, file hashes)."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest of a file's content, read in 4 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(4 << 20):
            digest.update(block)
    return digest.hexdigest()


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(tree, dict):
        for key, value in tree.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            out.update(_flatten(value, name))
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
        if leaf.startswith("p_"):
            name = leaf[2:].upper()
            if name in SELECTOR_KEYWORDS:
                header[("P_" + name)[:8]] = value
    return header


def read_reference_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Return the selection-relevant keywords of a FITS or ASDF reference file.

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
    return {key: header[key] for key in header if key}


def entry_from_header(header: dict[str, Any], relpath: str, source: str) -> IndexEntry:
    """Build an index entry from a reference file's keywords.

    Raises
    ------
    ReferenceFileError
        If REFTYPE or USEAFTER is missing or invalid.
    """
    reftype = header.get("REFTYPE")
    if not reftype or not str(reftype).strip():
        raise ReferenceFileError(f"{source}: no REFTYPE keyword; not a reference file")
    useafter = parse_useafter(header.get("USEAFTER"), source)
    selectors: dict[str, tuple[str, ...]] = {}
    for key in SELECTOR_KEYWORDS:
        value = header.get(key)
        if value is not None and str(value).strip():
            selectors[key] = (normalize_value(value),)
    for pkey, key in PATTERN_KEYWORDS.items():
        value = header.get(pkey)
        if value is not None and str(value).strip():
            values = parse_pattern(value)
            if values:
                selectors[key] = tuple(values)
    return IndexEntry(str(reftype).strip().lower(), relpath, useafter, selectors)


def _reference_files(directory: Path) -> list[Path]:
    files = []
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        if path.name.lower().endswith(REFERENCE_SUFFIXES):
            files.append(path)
    return files


def _parse_entry(raw: Any, where: str) -> IndexEntry:
    if not isinstance(raw, dict):
        raise ReferenceFileError(f"{where}: must be a mapping")
    missing = [k for k in ("reftype", "file", "useafter") if k not in raw]
    if missing:
        raise ReferenceFileError(f"{where}: missing key(s) {', '.join(missing)}")
    selectors_raw = raw.get("selectors") or {}
    if not isinstance(selectors_raw, dict):
        raise ReferenceFileError(f"{where}: 'selectors' must be a mapping of keyword to values")
    selectors: dict[str, tuple[str, ...]] = {}
    for key, values in selectors_raw.items():
        if isinstance(values, str):
            values = parse_pattern(values)
        elif not isinstance(values, list):
            values = [values]
        selectors[str(key).upper()] = tuple(normalize_value(v) for v in values)
    useafter = raw["useafter"]
    if isinstance(useafter, datetime):
        useafter = useafter.strftime("%Y-%m-%dT%H:%M:%S")
    return IndexEntry(
        reftype=str(raw["reftype"]).strip().lower(),
        file=str(raw["file"]),
        useafter=parse_useafter(str(useafter), where),
        selectors=selectors,
        size=raw.get("size"),
        sha256=raw.get("sha256"),
    )


def read_index(path: str | os.PathLike[str]) -> StoreIndex:
    """Read and validate an ``index.yaml``.

    Raises
    ------
    ReferenceFileError
        If the file is missing, not YAML, or not in the index layout.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReferenceFileError(
            f"{path}: reference index not found; run 'jwpipe refs index {path.parent}'"
        ) from None
    except OSError as exc:
        raise ReferenceFileError(f"{path}: cannot read reference index ({exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ReferenceFileError(f"{path}: reference index is not valid YAML ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("references", []), list):
        raise ReferenceFileError(f"{path}: expected a mapping with a 'references' list")
    if data.get("format", FORMAT) != FORMAT:
        raise ReferenceFileError(
            f"{path}: unsupported index format {data.get('format')!r} (expected {FORMAT})"
        )
    entries = [
        _parse_entry(raw, f"{path}: references[{i}]")
        for i, raw in enumerate(data.get("references") or [])
    ]
    return StoreIndex(str(data.get("name") or path.parent.name), entries)


def write_index(index: StoreIndex, path: str | os.PathLike[str]) -> Path:
    """Write an index atomically (temporary file in the same directory, then rename)."""
    path = Path(path)
    header = (
        "# jwpipe reference-file index. Rebuild with 'jwpipe refs index DIR';\n"
        "# entries with file: N/A are rules and are kept across rebuilds.\n"
    )
    text = header + yaml.safe_dump(index.to_dict(), sort_keys=False, default_flow_style=None)
    write_text_atomic(path, text, fsync=True)
    return path


def build_index(
    directory: str | os.PathLike[str],
    *,
    name: str | None = None,
    not_applicable: list[dict[str, Any]] | None = None,
) -> Path:
    """(Re)build ``DIR/index.yaml`` from the headers of the FITS/ASDF files in ``DIR``.

    Parameters
    ----------
    directory : path
        The store directory (searched recursively; hidden files are ignored).
    name : str, optional
        Store name used in the context string. Default: the existing index's name, else the
        directory name.
    not_applicable : list of dict, optional
        Extra N/A rules ``{"reftype": ..., "useafter": ..., "selectors": {...}}``. N/A rules of
        an existing index are kept.

    Returns
    -------
    Path
        The index written.

    Raises
    ------
    ReferenceFileError
        If the directory does not exist, or a file lacks REFTYPE/USEAFTER.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ReferenceFileError(f"{directory}: reference store directory does not exist")
    target = directory / INDEX_NAME
    old = read_index(target) if target.exists() else None
    entries = [e for e in (old.entries if old else []) if e.not_applicable]
    for i, rule in enumerate(not_applicable or []):
        entry = _parse_entry(
            {"file": NOT_APPLICABLE, "useafter": "1900-01-01T00:00:00", **rule},
            f"not_applicable[{i}]",
        )
        if entry not in entries:
            entries.append(entry)
    for path in _reference_files(directory):
        rel = path.relative_to(directory).as_posix()
        entry = entry_from_header(read_reference_header(path), rel, str(path))
        entries.append(
            IndexEntry(
                entry.reftype,
                rel,
                entry.useafter,
                entry.selectors,
                path.stat().st_size,
                file_sha256(path),
            )
        )
    store_name = name or (old.name if old else directory.resolve().name)
    return write_index(StoreIndex(store_name, entries), target)


def parameters_from_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Selection parameters of a science FITS file, read from its primary header.

    A stand-in for ``model.get_crds_parameters()`` when no datamodel is at hand: every primary
    keyword is returned (FITS keyword -> value).

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
