"""Write CRDS caches: mappings with their ``sha1sum``, reference files, ``server_config``.

The layout and the mapping syntax are CRDS's (``docs/references.md``); the result is read by
STScI's ``crds`` client like a cache filled by ``crds sync``::

    <cache>/config/jwst/server_config
    <cache>/mappings/jwst/jwst_0001.pmap, jwst_nircam_0001.imap, jwst_nircam_dark_0001.rmap, ...
    <cache>/references/jwst/nircam/jwst_nircam_dark_0001.fits, ...

Mappings are immutable once written, as in CRDS: a new rule set is a new context
(:func:`derive_context`) that re-uses every mapping it does not change.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import os
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jwpipe.atomic import write_text_atomic
from jwpipe.errors import ReferenceFileError

__all__ = [
    "DATE_KEYS",
    "NOT_APPLICABLE",
    "PARKEYS",
    "CacheRule",
    "derive_context",
    "install_reference",
    "mapping_checksum",
    "meta_key",
    "read_selector",
    "rule_from_file",
    "write_context",
]

OBSERVATORY = "jwst"
NOT_APPLICABLE = "N/A"
#: The UseAfter parameters of every rmap jwpipe writes.
DATE_KEYS = ("META.OBSERVATION.DATE", "META.OBSERVATION.TIME")

#: Match parameters (FITS keywords) of the rmaps jwpipe writes, per reference type; close to
#: those of the operational NIRCam imaging rmaps. Types not listed match on DETECTOR.
PARKEYS: dict[str, tuple[str, ...]] = {
    "mask": ("DETECTOR", "SUBARRAY"),
    "saturation": ("DETECTOR",),
    "superbias": ("DETECTOR", "READPATT", "SUBARRAY"),
    "linearity": ("DETECTOR",),
    "dark": ("DETECTOR", "READPATT", "SUBARRAY"),
    "gain": ("DETECTOR",),
    "readnoise": ("DETECTOR", "READPATT", "SUBARRAY"),
    "flat": ("DETECTOR", "EXP_TYPE", "FILTER", "PUPIL"),
    "photom": ("DETECTOR", "EXP_TYPE"),
    "area": ("DETECTOR", "EXP_TYPE", "FILTER", "PUPIL"),
    "distortion": ("EXP_TYPE", "DETECTOR", "CHANNEL", "PUPIL"),
    "filteroffset": ("DETECTOR", "EXP_TYPE"),
    "apcorr": ("EXP_TYPE",),
    "abvegaoffset": ("EXP_TYPE",),
}

_FITS_TO_META = {
    "INSTRUME": "META.INSTRUMENT.NAME", "DETECTOR": "META.INSTRUMENT.DETECTOR",
    "CHANNEL": "META.INSTRUMENT.CHANNEL", "MODULE": "META.INSTRUMENT.MODULE",
    "FILTER": "META.INSTRUMENT.FILTER", "PUPIL": "META.INSTRUMENT.PUPIL",
    "BAND": "META.INSTRUMENT.BAND", "EXP_TYPE": "META.EXPOSURE.TYPE",
    "READPATT": "META.EXPOSURE.READPATT", "NOUTPUTS": "META.EXPOSURE.NOUTPUTS",
    "SUBARRAY": "META.SUBARRAY.NAME", "TSOVISIT": "META.VISIT.TSOVISIT",
    "DATE-OBS": "META.OBSERVATION.DATE", "TIME-OBS": "META.OBSERVATION.TIME",
}


def meta_key(keyword: str) -> str:
    """The CRDS parameter name (``META.INSTRUMENT.DETECTOR``) of a FITS keyword."""
    found = _meta_key(keyword.upper())
    if found is None:
        raise KeyError(f"no datamodel path for FITS keyword {keyword!r}")
    return found


@functools.cache
def _meta_key(key: str) -> str | None:
    if key in _FITS_TO_META:
        return _FITS_TO_META[key]
    from jwpipe.datamodels.keywords import KEYWORDS

    for path, kw in KEYWORDS.items():
        if kw.name == key and kw.hdu == "PRIMARY":
            return "META." + path.upper()
    return None


@dataclass(frozen=True)
class CacheRule:
    """One reference file and the dataset values that select it."""

    reftype: str
    file: str
    match: tuple[tuple[str, str], ...]  # (FITS keyword, value or CRDS pattern), in parkey order
    useafter: str | None = "1900-01-01 00:00:00"  # None: no date selection (Match only)


def mapping_checksum(text: str) -> str:
    """The ``sha1sum`` CRDS checks: SHA-1 of the mapping text without its sha1sum line."""
    body = "".join(line for line in text.splitlines(True) if "sha1sum" not in line)
    return hashlib.sha1(body.encode("utf-8")).hexdigest()


def _render(header: dict[str, Any], selector: str) -> str:
    lines = ["header = {"]
    for key in sorted({*header, "sha1sum"}):
        value = "'@SHA1@'" if key == "sha1sum" else repr(header[key])
        lines.append(f"    {key!r} : {value},")
    text = "\n".join(lines) + "\n}\n\nselector = " + selector + "\n"
    return text.replace("'@SHA1@'", repr(mapping_checksum(text)))


def _dict_literal(items: Iterable[tuple[str, str]]) -> str:
    body = "".join(f"    {k!r} : {v!r},\n" for k, v in items)
    return "{\n" + body + "}"


def _rmap_text(name: str, instrument: str, reftype: str, rules: Sequence[CacheRule],
               derived_from: str) -> str:
    keys = rules[0].match
    keywords = tuple(k for k, _ in keys)
    dated = rules[0].useafter is not None
    if any((r.useafter is not None) != dated for r in rules):
        raise ReferenceFileError(f"{name}: some rules have a USEAFTER and some do not")
    groups: dict[tuple[str, ...], dict[str | None, str]] = {}
    for rule in rules:
        if tuple(k for k, _ in rule.match) != keywords:
            raise ReferenceFileError(
                f"{name}: rules select on different keywords ({keywords} and "
                f"{tuple(k for k, _ in rule.match)})")
        values = tuple(str(v) for _, v in rule.match)
        dates = groups.setdefault(values, {})
        if rule.useafter in dates and dates[rule.useafter] != rule.file:
            raise ReferenceFileError(f"{name}: {dates[rule.useafter]} and {rule.file} have the "
                                     f"same selection and USEAFTER {rule.useafter}")
        dates[rule.useafter] = rule.file
    header = {
        "classes": ("Match", "UseAfter"), "derived_from": derived_from,
        "filekind": reftype.upper(), "instrument": instrument.upper(), "mapping": "REFERENCE",
        "name": name, "observatory": OBSERVATORY.upper(),
        "parkey": (tuple(meta_key(k) for k in keywords), DATE_KEYS) if dated else
                  (tuple(meta_key(k) for k in keywords),),
    }
    if not dated:
        header["classes"] = ("Match",)
    body = ["Match({"]
    for values in sorted(groups):
        if not dated:
            body.append(f"    {values!r} : {groups[values][None]!r},")
            continue
        body.append(f"    {values!r} : UseAfter({{")
        for date in sorted(groups[values]):  # type: ignore[type-var]
            body.append(f"        {date!r} : {groups[values][date]!r},")
        body.append("    }),")
    body.append("})")
    return _render(header, "\n".join(body))


def _mapdir(cache: Path) -> Path:
    return cache / "mappings" / OBSERVATORY


def _write_mapping(cache: Path, name: str, text: str) -> None:
    path = _mapdir(cache) / name
    if path.exists():
        if path.read_text() != text:
            raise ReferenceFileError(f"{path} exists with other content: CRDS mappings are "
                                     "immutable; write a new context instead")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text)


def read_selector(cache: str | os.PathLike[str], name: str) -> dict[str, str]:
    """The selector of a pmap or imap jwpipe (or CRDS) wrote: key -> mapping name or N/A."""
    text = (_mapdir(Path(cache)) / name).read_text()
    literal = text.split("selector =", 1)[1].strip()
    return dict(ast.literal_eval(literal))


def _next_name(cache: Path, stem: str, ext: str) -> str:
    numbers = [int(m.group(1)) for p in _mapdir(cache).glob(f"{stem}_*.{ext}")
               if (m := re.fullmatch(rf"{re.escape(stem)}_(\d{{4}})\.{ext}", p.name))]
    return f"{stem}_{max(numbers, default=0) + 1:04d}.{ext}"


def _write_server_config(cache: Path, context: str) -> None:
    path = cache / "config" / OBSERVATORY / "server_config"
    info = {
        "observatory": OBSERVATORY, "operational_context": context, "edit_context": context,
        "effective_mode": "local", "mode": "local", "bad_files": "", "bad_files_list": [],
        "last_synced": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, repr(info) + "\n")


def _write_instrument(cache: Path, instrument: str, types: Mapping[str, Any],
                      base: Mapping[str, str], derived_from: str) -> str:
    """Write the rmaps of the changed ``types`` and a new imap; return the imap name."""
    instr = instrument.lower()
    selections = dict(base)
    for reftype, rules in types.items():
        if rules == NOT_APPLICABLE or not rules:
            selections[reftype] = NOT_APPLICABLE
            continue
        name = _next_name(cache, f"jwst_{instr}_{reftype}", "rmap")
        _write_mapping(cache, name, _rmap_text(name, instrument, reftype, rules, derived_from))
        selections[reftype] = name
    imap = _next_name(cache, f"jwst_{instr}", "imap")
    header = {"derived_from": derived_from, "instrument": instrument.upper(),
              "mapping": "INSTRUMENT", "name": imap, "observatory": OBSERVATORY.upper(),
              "parkey": ("REFTYPE",)}
    _write_mapping(cache, imap, _render(header, _dict_literal(sorted(selections.items()))))
    return imap


def _write_pipeline(cache: Path, imaps: Mapping[str, str], derived_from: str,
                    operational: bool) -> str:
    pmap = _next_name(cache, "jwst", "pmap")
    header = {"derived_from": derived_from, "mapping": "PIPELINE", "name": pmap,
              "observatory": OBSERVATORY.upper(), "parkey": ("META.INSTRUMENT.NAME",)}
    _write_mapping(cache, pmap, _render(header, _dict_literal(sorted(imaps.items()))))
    if operational or not (cache / "config" / OBSERVATORY / "server_config").exists():
        _write_server_config(cache, pmap)
    return pmap


def write_context(cache: str | os.PathLike[str],
                  rules: Mapping[str, Mapping[str, Sequence[CacheRule] | str]], *,
                  derived_from: str = "written by jwpipe", operational: bool = True) -> str:
    """Write a new context from scratch; return its pmap name (``jwst_0001.pmap`` in a new cache).

    ``rules`` is ``{instrument: {reftype: [CacheRule, ...] or "N/A"}}``. The reference files
    must already be in the cache (:func:`install_reference`). With ``operational`` the cache's
    ``server_config`` names the new context as operational.
    """
    cache = Path(cache)
    imaps = {instr.upper(): _write_instrument(cache, instr, types, {}, derived_from)
             for instr, types in rules.items()}
    return _write_pipeline(cache, imaps, derived_from, operational)


def derive_context(cache: str | os.PathLike[str], base: str,
                   changes: Mapping[str, Mapping[str, Sequence[CacheRule] | str]], *,
                   operational: bool = False) -> str:
    """A new context: ``base`` with the rmaps of the changed types replaced (others re-used).

    ``changes`` is ``{instrument: {reftype: [CacheRule, ...] or "N/A"}}``; each listed type gets
    a new rmap holding exactly the given rules. Returns the new pmap name.
    """
    cache = Path(cache)
    try:
        imaps = read_selector(cache, base)
    except (OSError, IndexError, SyntaxError, ValueError) as exc:
        raise ReferenceFileError(f"cannot read context {base} in {cache}: {exc}") from None
    for instr, types in changes.items():
        old = imaps.get(instr.upper())
        selections = read_selector(cache, old) if old and old != NOT_APPLICABLE else {}
        imaps[instr.upper()] = _write_instrument(cache, instr, types, selections,
                                                 f"derived from {base}")
    return _write_pipeline(cache, imaps, f"derived from {base}", operational)


def reference_dir(cache: str | os.PathLike[str], instrument: str) -> Path:
    """Where a cache keeps an instrument's reference files."""
    return Path(cache) / "references" / OBSERVATORY / instrument.lower()


def install_reference(cache: str | os.PathLike[str], instrument: str,
                      path: str | os.PathLike[str], *, move: bool = False) -> Path:
    """Copy (or move) a reference file into the cache; return its cached path."""
    target = reference_dir(cache, instrument) / Path(path).name
    target.parent.mkdir(parents=True, exist_ok=True)
    if Path(path).resolve() != target.resolve():
        (shutil.move if move else shutil.copy2)(os.fspath(path), target)
    return target


def _useafter(value: Any, source: str) -> str:
    text = str(value or "").strip().replace("T", " ")
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, fmt).strftime("%Y-%m-%d %H:%M:%S")
        except ValueError:
            continue
    raise ReferenceFileError(f"{source}: USEAFTER {value!r} is not a date")


def rule_from_file(path: str | os.PathLike[str], keywords: Sequence[str] | None = None
                   ) -> tuple[str, CacheRule]:
    """(instrument, rule) for a reference file, from its header (FITS primary or ASDF meta).

    ``keywords`` are the match parameters (default :data:`PARKEYS` of its REFTYPE). A
    ``P_<keyword>`` pattern in the header (``P_READPA = 'RAPID|BRIGHT1|'``) is used as the value.
    """
    from jwpipe.references.headers import read_reference_header

    header = read_reference_header(path)
    name = Path(path).name
    reftype = str(header.get("REFTYPE") or "").strip().lower()
    instrument = str(header.get("INSTRUME") or "").strip().upper()
    if not reftype or not instrument:
        raise ReferenceFileError(f"{path}: no REFTYPE or INSTRUME keyword; not a reference file")
    keys = tuple(keywords or PARKEYS.get(reftype, ("DETECTOR",)))
    match = []
    for key in keys:
        pattern = header.get(f"P_{key}"[:8])
        value = pattern if pattern not in (None, "") else header.get(key)
        if value is None or str(value).strip() == "":
            raise ReferenceFileError(f"{path}: no {key} keyword to select it on")
        match.append((key, str(value).strip().upper().rstrip("|").strip()))
    return instrument, CacheRule(reftype, name, tuple(match),
                                 _useafter(header.get("USEAFTER"), str(path)))

