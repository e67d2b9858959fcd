"""The framework's view of the reference system: a CRDS cache read through the ``crds`` client.

The framework needs two things from it: the best reference file of a type for a dataset, and
a context to record in products. :class:`jwpipe.references.CrdsCache` provides them::

    store.context -> str                                              # jwst_0001.pmap
    store.get_reference_file(parameters: dict, reftype: str) -> str   # path, or "N/A"

For parameter references (``pars-<step class lower>``) it returns ``"N/A"`` when it has none.

The active cache is, in order: one set with :func:`set_store` (the ``--refs DIR`` option does
this; DIR is a CRDS cache), else the cache named by ``JWPIPE_REFS``, else ``CRDS_PATH`` (with
``CRDS_MAPPATH``/``CRDS_REFPATH``/``CRDS_CFGPATH`` honoured), else none. The context is
``CRDS_CONTEXT`` or the cache's operational context.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

__all__ = [
    "ReferenceStoreLike",
    "get_store",
    "ref_steppars_disabled",
    "set_store",
]

_TRUTHY = {"1", "true", "t", "yes", "y", "on"}
_ACTIVE: list[Any] = []


class ReferenceStoreLike(Protocol):
    """What the framework requires of a reference store."""

    context: str

    def get_reference_file(self, parameters: dict[str, Any], reftype: str) -> str: ...


def set_store(store: ReferenceStoreLike | str | os.PathLike[str] | None) -> None:
    """Make ``store`` (a store object or a CRDS cache directory) active; None clears it."""
    _ACTIVE.clear()
    if store is None:
        return
    if isinstance(store, (str, os.PathLike)):
        from jwpipe.references import open_cache

        store = open_cache(os.fspath(store))
    _ACTIVE.append(store)


def get_store() -> ReferenceStoreLike | None:
    """The active store, or None when none is configured (see the module docstring)."""
    if _ACTIVE:
        return _ACTIVE[0]
    from jwpipe.references import open_cache

    path = os.environ.get("JWPIPE_REFS")
    if path:
        return open_cache(path)
    path = os.environ.get("CRDS_PATH")
    if path:
        return open_cache(path, use_env_paths=True)
    return None


def ref_steppars_disabled(disable: bool | None = None) -> bool:
    """Whether the store's parameter references are switched off.

    ``disable`` wins when given; otherwise ``STPIPE_DISABLE_CRDS_STEPPARS`` or
    ``JWPIPE_DISABLE_REF_STEPPARS`` set to any of the truthy spellings users type
    (``1``, ``true``, ``TRUE``, ``yes``, ``on``, ... in any case).
    """
    if disable is not None:
        return bool(disable)
    for var in ("JWPIPE_DISABLE_REF_STEPPARS", "STPIPE_DISABLE_CRDS_STEPPARS"):
        if os.environ.get(var, "").strip().lower() in _TRUTHY:
            return True
    return False
