"""Reference files stored as ASDF documents (``distortion``, ``filteroffset``, ``abvegaoffset``).

CRDS serves these types as plain ASDF files written by STScI's ``stdatamodels``: a ``meta``
mapping (``reftype``, ``instrument``, ``useafter``, ...) beside the payload (an astropy
modeling transform, a list of offsets, an astropy table). ``asdf`` and its astropy converters
(``asdf-astropy``, ``gwcs``) turn the tagged payload into live Python objects.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, ClassVar

from jwpipe.errors import DataModelError

__all__ = ["AsdfReferenceModel", "TreeMeta", "read_asdf_tree"]


def read_asdf_tree(path: str) -> dict[str, Any]:
    """The top-level tree of an ASDF file with every block read into memory.

    Raises
    ------
    DataModelError
        The file does not exist or is not readable ASDF.
    """
    import asdf

    if not os.path.isfile(path):
        raise DataModelError(f"{path} does not exist")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with asdf.open(path, lazy_load=False, memmap=False) as af:
                return {k: v for k, v in af.tree.items()
                        if k not in ("asdf_library", "history")}
    except Exception as exc:
        raise DataModelError(f"{path} is not a readable ASDF file: {exc}") from exc


class TreeMeta:
    """Attribute access to a nested ``meta`` mapping; unset leaves read as None."""

    __slots__ = ("_tree",)

    def __init__(self, tree: dict[str, Any]) -> None:
        object.__setattr__(self, "_tree", tree)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        value = self._tree.get(name)
        if isinstance(value, dict):
            return TreeMeta(value)
        if value is None:
            return TreeMeta(self._tree.setdefault(name, {})) if name in _GROUPS else None
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        self._tree[name] = value

    def to_dict(self) -> dict[str, Any]:
        """The mapping itself (live)."""
        return self._tree

    def __repr__(self) -> str:
        return f"<TreeMeta {sorted(self._tree)}>"


_GROUPS = frozenset({"instrument", "exposure", "subarray", "observation"})


class AsdfReferenceModel:
    """Base of reference models read from ASDF files.

    Parameters
    ----------
    init : str or os.PathLike
        The ASDF reference file.
    tree : dict, optional
        Its tree, when already read (:func:`read_asdf_tree`).
    """

    reftype: ClassVar[str] = ""
    #: Top-level tree keys the file must have.
    _required: ClassVar[tuple[str, ...]] = ()

    def __init__(self, init: str | os.PathLike, *, tree: dict[str, Any] | None = None) -> None:
        path = os.fspath(init)
        self._path = path
        self.tree = read_asdf_tree(path) if tree is None else tree
        meta = self.tree.get("meta")
        if not isinstance(meta, dict):
            meta = self.tree["meta"] = {}
        found = str(meta.get("reftype", "")).strip().upper()
        if found and self.reftype and found != self.reftype:
            raise DataModelError(
                f"{path}: REFTYPE is {found!r}; a {type(self).__name__} needs {self.reftype!r}")
        for key in self._required:
            if key not in self.tree:
                raise DataModelError(
                    f"{path}: lacks {key!r}, required by a {self.reftype or 'reference'} file")
        self._validate()

    def _validate(self) -> None:
        """Hook for subclasses: check the payload (raise DataModelError)."""

    @property
    def meta(self) -> TreeMeta:
        """The file's ``meta`` mapping (``model.meta.instrument.name``)."""
        return TreeMeta(self.tree["meta"])

    def _where(self) -> str:
        return self._path

    def get_crds_parameters(self) -> dict[str, Any]:
        """REFTYPE and instrument selectors in FITS keyword form."""
        meta = self.tree["meta"]
        inst = meta.get("instrument") or {}
        out = {"REFTYPE": str(meta.get("reftype", self.reftype)).upper()}
        for key, name in (("name", "INSTRUME"), ("detector", "DETECTOR"),
                          ("filter", "FILTER"), ("pupil", "PUPIL"), ("channel", "CHANNEL"),
                          ("module", "MODULE")):
            if inst.get(key) is not None:
                out[name] = inst[key]
        return out

    def save(self, path: str | os.PathLike, overwrite: bool = True) -> str:
        """Write the tree to an ASDF file atomically and return the path written."""
        import asdf

        from jwpipe.atomic import atomic_path

        path = os.fspath(path)
        if not overwrite and os.path.exists(path):
            raise DataModelError(f"{path} already exists and overwrite is False")
        with atomic_path(path) as tmp:
            asdf.AsdfFile(self.tree).write_to(tmp)
        return path

    def close(self) -> None:
        """Nothing to release (the file is read completely on open)."""

    def __enter__(self) -> AsdfReferenceModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} from {os.path.basename(self._path)}>"
