"""Reference selection from a CRDS cache through STScI's ``crds`` client, offline.

:class:`CrdsCache` answers "which file of this type for this dataset" with the ``crds``
client's own local best-references computation (``hv_best_references``: header conditioning,
patterns, ``UseAfter``, ``N/A``) on the mappings of one context in a cache. It never contacts a
server and never writes to the cache, so ``CRDS_SERVER_URL`` does not matter and concurrent jobs
can share one cache. ``import crds`` (about a second) is paid on the first selection only;
constructing a cache and reading its context does not import it.
"""

from __future__ import annotations

import ast
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from jwpipe.errors import ReferenceFileError

__all__ = ["CRDS_URI", "CrdsCache", "crds_parameters", "crds_version", "open_cache"]

#: Prefix of reference names recorded in products (``R_DARK = 'crds://jwst_..._dark_0001.fits'``).
CRDS_URI = "crds://"
OBSERVATORY = "jwst"
_PATH_VARS = ("CRDS_MAPPATH", "CRDS_REFPATH", "CRDS_CFGPATH")
_LOCK = threading.RLock()
_ACTIVE_ROOT: list[str] = []  # the cache root crds' mapping caches were filled from


@cache
def crds_version() -> str:
    """Version of the installed ``crds`` client (without importing it)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("crds")
    except PackageNotFoundError:
        return "not installed"


def crds_parameters(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Dataset parameters keyed the way rmaps' ``parkey`` name them (``META.INSTRUMENT.NAME``).

    Keys already in that form (any case) are kept; FITS keywords are translated through the
    datamodels' keyword table; others are dropped.
    """
    from jwpipe.references.cache_writer import meta_key

    out: dict[str, Any] = {}
    for key, value in parameters.items():
        name = str(key).upper()
        if not name.startswith("META."):
            try:
                name = meta_key(name)
            except KeyError:
                continue
        if value is None:
            continue
        out[name] = value.isoformat() if hasattr(value, "isoformat") else value
    return out


class CrdsCache:
    """One CRDS cache and one context in it.

    Parameters
    ----------
    path : path
        The cache root (what ``CRDS_PATH`` names).
    context : str, optional
        A ``.pmap`` name; default ``$CRDS_CONTEXT``, else the cache's operational context
        (``config/jwst/server_config``). ``jwst-operational`` and ``jwst-edit`` are accepted.
    use_env_paths : bool
        Honour ``CRDS_MAPPATH``/``CRDS_REFPATH``/``CRDS_CFGPATH`` (true when the cache comes
        from ``CRDS_PATH``; a cache named with ``--refs DIR`` is used as laid out).

    Raises
    ------
    ReferenceFileError
        The directory is not a CRDS cache, or the context is not in it.
    """

    def __init__(self, path: str | os.PathLike[str], context: str | None = None, *,
                 use_env_paths: bool = False) -> None:
        self.path = os.path.abspath(os.path.expanduser(os.fspath(path)))
        env = os.environ if use_env_paths else {}
        self.mappath = Path(env.get("CRDS_MAPPATH") or Path(self.path, "mappings")) / OBSERVATORY
        self.refpath = Path(env.get("CRDS_REFPATH") or Path(self.path, "references")) / OBSERVATORY
        self.cfgpath = Path(env.get("CRDS_CFGPATH") or Path(self.path, "config")) / OBSERVATORY
        self._env = {"CRDS_PATH": self.path, "CRDS_MODE": "local", "CRDS_READONLY_CACHE": "1",
                     "CRDS_MAPPATH": str(self.mappath.parent),
                     "CRDS_REFPATH": str(self.refpath.parent),
                     "CRDS_CFGPATH": str(self.cfgpath.parent)}
        if not os.path.isdir(self.path):
            raise ReferenceFileError(f"CRDS cache {self.path} does not exist")
        self.server_config = self._read_server_config()
        self.context = self._final_context(context or os.environ.get("CRDS_CONTEXT") or None)
        bad = self.server_config.get("bad_files_list") or \
            str(self.server_config.get("bad_files") or "").split()
        self.bad_files = frozenset(bad)
        self._answers: dict[tuple[tuple, str], str] = {}
        self._present: set[str] = set()
        self._classes: Any = None
        self._names: dict[tuple[tuple, str], str] = {}

    def __repr__(self) -> str:
        return f"CrdsCache({self.path!r}, context={self.context!r})"

    # ------------------------------------------------------------------ configuration
    def _read_server_config(self) -> dict[str, Any]:
        path = self.cfgpath / "server_config"
        if not path.is_file():
            if not self.mappath.is_dir():
                raise ReferenceFileError(
                    f"{self.path} is not a CRDS cache (no mappings/{OBSERVATORY} and no "
                    f"config/{OBSERVATORY}/server_config); fill it with `crds sync`")
            return {}
        try:
            info = ast.literal_eval(path.read_text())
        except (OSError, SyntaxError, ValueError) as exc:
            raise ReferenceFileError(f"cannot read {path}: {exc}") from None
        if not isinstance(info, dict):
            raise ReferenceFileError(f"{path} is not a CRDS server_config dictionary")
        return info

    def _final_context(self, wanted: str | None) -> str:
        symbolic = {f"{OBSERVATORY}-operational": "operational_context",
                    f"{OBSERVATORY}-edit": "edit_context"}
        if wanted is None or wanted.lower() in symbolic:
            key = symbolic.get((wanted or "").lower(), "operational_context")
            context = self.server_config.get(key)
            if not context:
                raise ReferenceFileError(
                    f"the CRDS cache {self.path} names no {key} (config/{OBSERVATORY}/"
                    "server_config); set CRDS_CONTEXT=jwst_NNNN.pmap")
        else:
            context = wanted
        context = os.path.basename(str(context))
        if not context.endswith(".pmap"):
            raise ReferenceFileError(
                f"CRDS context {context!r}: offline selection needs a .pmap name "
                "(e.g. CRDS_CONTEXT=jwst_1322.pmap)")
        if not (self.mappath / context).is_file():
            raise ReferenceFileError(
                f"CRDS context {context} is not in the cache {self.path}; fetch it with: "
                f"CRDS_PATH={self.path} crds sync --contexts {context}")
        return context

    @contextmanager
    def _crds(self) -> Iterator[Any]:
        """The ``crds`` heavy client, configured for this cache (local, read-only)."""
        with _LOCK:
            saved = {k: os.environ.get(k) for k in self._env}
            os.environ.update(self._env)
            try:
                from crds.core import heavy_client, utils

                if _ACTIVE_ROOT != [str(self.mappath)]:
                    utils.clear_function_caches()  # mappings of another cache have the same names
                    _ACTIVE_ROOT[:] = [str(self.mappath)]
                yield heavy_client
            finally:
                for key, value in saved.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value

    # ------------------------------------------------------------------ selection
    def best_references(self, parameters: Mapping[str, Any], reftypes: Iterable[str]
                        ) -> dict[str, str]:
        """Path (or ``"N/A"``) of each reference type for a dataset, in one crds call.

        ``pars-*`` types with no rule for the dataset give ``"N/A"`` (parameter references are
        optional).

        Raises
        ------
        ReferenceFileError
            No rule matches a (non-``pars``) type, a selected file is not in the cache or is
            designated bad, or the context's mappings are damaged or missing.
        """
        header = crds_parameters(parameters)
        key = self._selection_class(header)
        wanted = [t.lower() for t in reftypes]
        missing = [t for t in dict.fromkeys(wanted) if (key, t) not in self._answers]
        if missing and "META.INSTRUMENT.NAME" not in header:
            needed = [t for t in missing if not t.startswith("pars-")]
            if needed:
                raise ReferenceFileError(
                    f"the data have no instrument name (INSTRUME): CRDS cannot select the "
                    f"'{needed[0]}' reference")
            self._answers.update({(key, t): "N/A" for t in missing})
            missing = []
        if missing:
            todo = [t for t in missing if (key, t) not in self._names]
            if todo:  # CRDS's answers are kept even when one of them is an error
                found = self._recommend(header, todo)
                self._names.update({(key, t): found[t] for t in todo})
            for reftype in missing:
                self._answers[(key, reftype)] = self._resolve(header, reftype,
                                                              self._names[(key, reftype)])
        return {t: self._answers[(key, t)] for t in wanted}

    def _selection_class(self, header: dict[str, Any]) -> tuple:
        """Key of the answers: datasets of one class get the same selections from CRDS
        (:mod:`jwpipe.references.selection_classes`); the exact header where that cannot be
        told (then CRDS's own call reports any problem)."""
        exact = tuple(sorted((k, str(v)) for k, v in header.items()))
        if "META.INSTRUMENT.NAME" not in header:
            return exact
        try:
            with self._crds() as client:
                if self._classes is None:
                    from jwpipe.references.selection_classes import SelectionClasses

                    self._classes = SelectionClasses(client, self.context)
                return ("class", self._classes.key(header))
        except Exception:
            return exact

    def get_reference_file(self, parameters: Mapping[str, Any], reftype: str) -> str:
        """Path of the best reference of one type, or ``"N/A"``; see :meth:`best_references`."""
        return self.best_references(parameters, [reftype])[reftype.lower()]

    def _recommend(self, header: dict[str, Any], reftypes: list[str]) -> dict[str, str]:
        with self._crds() as client:
            from crds.core.exceptions import CrdsError

            try:
                result = client.hv_best_references(self.context, header, include=reftypes)
            except (CrdsError, OSError, KeyError, ValueError) as exc:
                raise ReferenceFileError(
                    f"CRDS context {self.context} in {self.path} cannot be used: {exc} (refetch "
                    f"its mappings with: CRDS_PATH={self.path} crds sync --contexts "
                    f"{self.context})") from None
        return {t: str(result.get(t, "NOT FOUND no answer")) for t in reftypes}

    def _resolve(self, header: dict[str, Any], reftype: str, name: str) -> str:
        if name.startswith("NOT FOUND"):
            why = name[len("NOT FOUND"):].strip()
            if why.lower() == "n/a":
                return "N/A"
            if reftype.startswith("pars-"):
                return "N/A"
            shown = ", ".join(f"{k}={v}" for k, v in sorted(header.items())
                              if not k.startswith("META.OBSERVATION"))
            raise ReferenceFileError(
                f"CRDS context {self.context} has no '{reftype}' reference for the data "
                f"({why}; {shown})")
        allow = os.environ.get("CRDS_ALLOW_BAD_REFERENCES", "").strip().lower()
        if name in self.bad_files and allow not in ("1", "true", "t", "yes", "y", "on"):
            raise ReferenceFileError(
                f"CRDS designates {name} ({reftype}, context {self.context}) scientifically "
                "invalid; set CRDS_ALLOW_BAD_REFERENCES=1 to use it anyway")
        path = self.locate(name)
        if name not in self._present and not path.is_file():
            raise ReferenceFileError(
                f"{reftype} reference {name} (CRDS context {self.context}) is not in the cache "
                f"{self.path}; fetch it with: CRDS_PATH={self.path} crds sync --files {name} "
                f"(or crds sync --contexts {self.context} --fetch-references)")
        self._present.add(name)  # asked again for each exposure of a survey
        return str(path)

    def locate(self, name: str) -> Path:
        """Where the cache keeps a reference file (``references/jwst/<instrument>/<name>``)."""
        parts = name.split("_")
        instrument = parts[1] if len(parts) > 2 and parts[0] == OBSERVATORY else "system"
        return self.refpath / instrument / name

    # ------------------------------------------------------------------ inspection
    def reftypes(self, parameters: Mapping[str, Any]) -> list[str]:
        """Reference types the context has rules (or N/A) for, for the dataset's instrument."""
        instrument = str(crds_parameters(parameters).get("META.INSTRUMENT.NAME", "")).upper()
        with self._crds() as client:
            from crds.core.exceptions import CrdsError

            try:
                pmap = client.get_symbolic_mapping(self.context, cached=True)
                return sorted(pmap.get_imap(instrument).selections.keys())
            except (CrdsError, OSError) as exc:
                raise ReferenceFileError(
                    f"CRDS context {self.context}: no rules for instrument {instrument!r} "
                    f"({exc})") from None

    def explain(self, parameters: Mapping[str, Any], reftype: str) -> str:
        """Which mapping decides a type, the dataset values it uses, and the result."""
        header = crds_parameters(parameters)
        instrument = str(header.get("META.INSTRUMENT.NAME", "")).upper()
        lines = [f"reftype {reftype}: CRDS context {self.context} (cache {self.path})"]
        with self._crds() as client:
            from crds.core.exceptions import CrdsError

            try:
                imap = client.get_symbolic_mapping(self.context, cached=True).get_imap(instrument)
                rmap = imap.selections.get(reftype)
                rmap_name = rmap if isinstance(rmap, str) else getattr(rmap, "basename", "?")
                lines.append(f"   instrument mapping {imap.basename} -> {rmap_name}")
                parkeys = rmap.get_required_parkeys() if not isinstance(rmap, str) else []
            except (CrdsError, OSError) as exc:
                parkeys = []
                lines.append(f"   cannot read the mappings: {exc}")
        for key in parkeys:
            lines.append(f"   {key} = {header.get(key, 'UNDEFINED')}")
        try:
            result = self.get_reference_file(parameters, reftype)
        except ReferenceFileError as exc:
            result = f"ERROR: {exc}"
        lines.append(f"  result: {result}")
        return "\n".join(lines)


_CACHES: dict[tuple[str, str | None, tuple[str | None, ...], bool], CrdsCache] = {}


def open_cache(path: str | os.PathLike[str], context: str | None = None, *,
               use_env_paths: bool = False) -> CrdsCache:
    """A :class:`CrdsCache`, shared per process for the same cache, context and environment."""
    key = (os.path.abspath(os.fspath(path)), context or os.environ.get("CRDS_CONTEXT"),
           tuple(os.environ.get(v) if use_env_paths else None for v in _PATH_VARS),
           use_env_paths)
    server_config = Path(key[0], "config", OBSERVATORY, "server_config")
    stamp = server_config.stat().st_mtime_ns if server_config.is_file() else 0
    cached = _CACHES.get(key)
    if cached is None or getattr(cached, "_stamp", None) != stamp:
        cached = CrdsCache(path, context, use_env_paths=use_env_paths)
        cached._stamp = stamp  # type: ignore[attr-defined]
        _CACHES[key] = cached
    return cached
