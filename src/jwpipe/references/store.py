"""The local reference-file store: pick the best reference of a type for a dataset.

Selection works like CRDS best-references:

1. candidates are the index entries of the requested reftype;
2. a candidate matches when every one of its selectors accepts the dataset's value (exactly, or
   through a wildcard: ``ANY``/``N/A``/``GENERIC``, or a ``FULL`` reference for a subarray);
3. among matching candidates whose USEAFTER is not after the observation (DATE-OBS/TIME-OBS),
   the most specific (most exact selector matches) wins, then the latest USEAFTER, then the file
   name (so the choice is deterministic).

A winning ``N/A`` rule returns the string ``"N/A"``: the type does not apply to such data.
The store is read-only; many processes may use it at once.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from jwpipe.errors import ReferenceFileError
from jwpipe.references.index import (
    INDEX_NAME,
    NOT_APPLICABLE,
    IndexEntry,
    file_sha256,
    read_index,
)
from jwpipe.references.selectors import match_value, normalize_parameters, observation_time

__all__ = ["ReferenceStore", "get_store", "is_parameter_reftype"]

_CACHE: dict[tuple[str, int, int], ReferenceStore] = {}
_VERIFIED: dict[tuple[str, int, int], str] = {}
_LOCK = threading.Lock()


def is_parameter_reftype(reftype: str) -> bool:
    """True for parameter references (``pars-<step class lower>``), which are optional."""
    return reftype.lower().startswith("pars-")


@dataclass(frozen=True)
class _Candidate:
    entry: IndexEntry
    scores: dict[str, int]

    @property
    def matches(self) -> bool:
        return all(self.scores.values())

    @property
    def exact(self) -> int:
        return sum(1 for s in self.scores.values() if s == 2)


class ReferenceStore:
    """A directory of reference files with an ``index.yaml`` of selection rules.

    Parameters
    ----------
    path : str or path-like
        The store directory (holding ``index.yaml``).
    verify : bool
        Check a selected file's size against the index, and its SHA-256 when it was modified
        after the index was written (once per process and file version), so a file changed
        after indexing is caught instead of silently used, without hashing every file on
        every run.

    Raises
    ------
    ReferenceFileError
        If the directory or its index is missing or invalid.
    """

    def __init__(self, path: str | os.PathLike[str], *, verify: bool = True) -> None:
        self.path = Path(path).expanduser().resolve()
        if not self.path.is_dir():
            raise ReferenceFileError(f"{self.path}: reference store directory does not exist")
        self.index_path = self.path / INDEX_NAME
        self.index = read_index(self.index_path)
        self.verify = verify
        self._index_mtime_ns = self.index_path.stat().st_mtime_ns
        self._context = f"{self.index.name}_{self.index.content_hash()[:12]}"

    def __repr__(self) -> str:
        return f"ReferenceStore({str(self.path)!r}, context={self.context!r})"

    @property
    def name(self) -> str:
        """The store's name (from the index)."""
        return self.index.name

    @property
    def context(self) -> str:
        """Version string of the store: ``<name>_<first 12 hex of the index content hash>``.

        It changes whenever a rule, a file name or a file's content hash in the index changes,
        so products can record it (like CRDS_CTX) and a run can be pinned to it.
        """
        return self._context

    @property
    def reftypes(self) -> list[str]:
        """The reference types the index knows."""
        return sorted({e.reftype for e in self.index.entries})

    def entries(self, reftype: str | None = None) -> list[IndexEntry]:
        """Index entries, optionally of one reftype."""
        if reftype is None:
            return list(self.index.entries)
        return [e for e in self.index.entries if e.reftype == reftype.lower()]

    # -- selection -------------------------------------------------------------------------

    def _candidates(self, params: dict[str, str], reftype: str) -> list[_Candidate]:
        out = []
        for entry in self.entries(reftype):
            scores = {
                key: match_value(allowed, params.get(key), key)
                for key, allowed in entry.selectors.items()
            }
            out.append(_Candidate(entry, scores))
        return out

    @staticmethod
    def _rank(candidates: list[_Candidate], when: datetime | None) -> list[_Candidate]:
        usable = [
            c for c in candidates if c.matches and (when is None or c.entry.useafter <= when)
        ]
        return sorted(usable, key=lambda c: (c.exact, c.entry.useafter, c.entry.file), reverse=True)

    def _select(self, parameters: dict[str, Any], reftype: str) -> IndexEntry | None:
        params = normalize_parameters(parameters)
        reftype = reftype.lower()
        when = observation_time(params)
        candidates = self._candidates(params, reftype)
        ranked = self._rank(candidates, when)
        if ranked:
            return ranked[0].entry
        if is_parameter_reftype(reftype):
            return None
        if not candidates:
            raise ReferenceFileError(
                f"no reference file of type {reftype!r} in store {self.path} "
                f"(known types: {', '.join(self.reftypes) or 'none'})"
            )
        keys = sorted({k for c in candidates for k in c.entry.selectors})
        values = ", ".join(f"{k}={params.get(k, '<missing>')}" for k in keys)
        matching = [c for c in candidates if c.matches]
        if matching and when is not None:
            earliest = min(c.entry.useafter for c in matching)
            raise ReferenceFileError(
                f"no {reftype!r} reference in store {self.path} is valid for an observation on "
                f"{when.isoformat()}: the matching files start at USEAFTER {earliest.isoformat()}"
                f" ({values})"
            )
        raise ReferenceFileError(
            f"no {reftype!r} reference in store {self.path} matches the data ({values}); "
            f"run 'jwpipe refs show <dataset> --reftype {reftype}' for the candidates"
        )

    def get_reference_file(self, parameters: dict[str, Any], reftype: str) -> str:
        """Return the best reference file of ``reftype`` for a dataset.

        Parameters
        ----------
        parameters : dict
            Dataset parameters keyed by FITS keyword (INSTRUME, DETECTOR, READPATT, SUBARRAY,
            FILTER, PUPIL, EXP_TYPE, DATE-OBS, TIME-OBS, ...).
        reftype : str
            Reference type, e.g. ``dark`` or ``pars-jumpstep``.

        Returns
        -------
        str
            Absolute path of the file, or ``"N/A"`` when an N/A rule wins (and, for the
            optional ``pars-*`` types, when nothing matches).

        Raises
        ------
        ReferenceFileError
            If no file matches (naming the reftype and the dataset's selector values), or the
            chosen file is missing or differs from what the index recorded.
        """
        entry = self._select(parameters, reftype)
        if entry is None or entry.not_applicable:
            return NOT_APPLICABLE
        path = self.path / entry.file
        self._check_file(path, entry)
        return str(path)

    def _check_file(self, path: Path, entry: IndexEntry) -> None:
        try:
            stat = path.stat()
        except FileNotFoundError:
            raise ReferenceFileError(
                f"{path}: reference file listed in {self.index_path} does not exist"
            ) from None
        stale = f"; rebuild the index with 'jwpipe refs index {self.path}'"
        if entry.size is not None and stat.st_size != entry.size:
            raise ReferenceFileError(f"{path}: file changed since it was indexed{stale}")
        if not self.verify or entry.sha256 is None:
            return
        if stat.st_mtime_ns <= self._index_mtime_ns:
            return  # unchanged since the index was built (same size, not modified after it)
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        with _LOCK:
            digest = _VERIFIED.get(key)
        if digest is None:
            digest = file_sha256(path)
            with _LOCK:
                _VERIFIED[key] = digest
        if digest != entry.sha256:
            raise ReferenceFileError(f"{path}: content differs from the indexed hash{stale}")

    def explain(self, parameters: dict[str, Any], reftype: str) -> str:
        """Explain the choice for ``reftype``: every candidate, its selectors and USEAFTER.

        Returns
        -------
        str
            Multi-line, human-readable report; the last line states the result or the error.
        """
        params = normalize_parameters(parameters)
        reftype = reftype.lower()
        when = observation_time(params)
        candidates = self._candidates(params, reftype)
        ranked = self._rank(candidates, when)
        chosen = ranked[0].entry if ranked else None
        when_text = when.isoformat() if when else "unknown (no DATE-OBS: every USEAFTER accepted)"
        lines = [f"reftype {reftype}: observation {when_text}, store context {self.context}"]
        if not candidates:
            lines.append("  no entries of this type in the index")
        for cand in sorted(candidates, key=lambda c: (c.entry.useafter, c.entry.file)):
            entry = cand.entry
            mark = "*" if entry is chosen else " "
            parts = []
            for key, allowed in sorted(entry.selectors.items()):
                verdict = {2: "match", 1: "wildcard", 0: "MISMATCH"}[cand.scores[key]]
                parts.append(f"{key}={'|'.join(allowed)} vs {params.get(key, '<missing>')}: "
                             f"{verdict}")
            late = when is not None and entry.useafter > when
            status = (
                "selected" if entry is chosen
                else "selectors do not match" if not cand.matches
                else "USEAFTER after the observation" if late
                else "outranked (fewer exact matches or older USEAFTER)"
            )
            lines.append(
                f" {mark} {entry.file}  USEAFTER {entry.useafter.isoformat()}  "
                f"exact={cand.exact}  -> {status}"
            )
            lines.extend(f"      {p}" for p in parts or ["(no selectors: applies to all data)"])
        try:
            result = self.get_reference_file(parameters, reftype)
        except ReferenceFileError as exc:
            result = f"ERROR: {exc}"
        lines.append(f"  result: {result}")
        return "\n".join(lines)


def get_store(path: str | os.PathLike[str] | None = None) -> ReferenceStore | None:
    """Return the store at ``path``, else at ``$JWPIPE_REFS``, else None.

    Stores are cached per process, keyed by directory and the index file's mtime and size, so a
    rebuilt index is picked up and repeated calls are free.
    """
    if path is None:
        path = os.environ.get("JWPIPE_REFS") or None
    if path is None:
        return None
    root = Path(path).expanduser().resolve()
    try:
        stat = (root / INDEX_NAME).stat()
    except OSError:
        return ReferenceStore(root)  # raises the clear "missing" error
    key = (str(root), stat.st_mtime_ns, stat.st_size)
    with _LOCK:
        store = _CACHE.get(key)
    if store is None:
        store = ReferenceStore(root)
        with _LOCK:
            _CACHE[key] = store
    return store
