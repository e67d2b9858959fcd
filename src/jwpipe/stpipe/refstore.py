"""The framework's view of the reference-file store.

The framework needs two things from a store: the best reference file of a type for a dataset, and
a context string to record in products. Any object with this interface can serve (the real one is
:class:`jwpipe.references.ReferenceStore`; tests use small in-memory stores)::

    store.context -> str
    store.get_reference_file(parameters: dict, reftype: str) -> str   # path, or "N/A"

For parameter references (``pars-<step class lower>``) a store returns ``"N/A"`` when it has none.

The active store is, in order: one set with :func:`set_store` (the ``--refs`` option and the
workflow runtime do this), else the directory named by ``JWPIPE_REFS``, else none.
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
    """Make ``store`` (an object or a store directory) the active store; None clears it."""
    _ACTIVE.clear()
    if store is None:
        return
    if isinstance(store, (str, os.PathLike)):
        from jwpipe.references import ReferenceStore

        store = ReferenceStore(os.fspath(store))
    _ACTIVE.append(store)


def get_store() -> ReferenceStoreLike | None:
    """The active store, or None when no store is configured."""
    if _ACTIVE:
        return _ACTIVE[0]
    path = os.environ.get("JWPIPE_REFS")
    if path:
        from jwpipe.references import get_store as _get

        return _get(path)
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
