"""Attribute-style access to model metadata (``model.meta.exposure.ngroups``).

Known paths (:mod:`jwpipe.datamodels.keywords`) read and write FITS header cards; any other
path is stored in the model's ASDF metadata tree. Unset known paths read as None.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jwpipe.datamodels.keywords import GROUPS, KEYWORDS

if TYPE_CHECKING:
    from jwpipe.datamodels.model_base import DataModel

__all__ = ["MetaNode"]


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


class MetaNode:
    """One level of the metadata tree of a model."""

    __slots__ = ("_model", "_path")

    def __init__(self, model: DataModel, path: str = "") -> None:
        object.__setattr__(self, "_model", model)
        object.__setattr__(self, "_path", path)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        path = _join(self._path, name)
        keyword = KEYWORDS.get(path)
        if keyword is not None:
            return self._model._get_keyword(keyword)
        if path in GROUPS:  # without touching the tree (decoded only when a value needs it)
            return MetaNode(self._model, path)
        found, value = self._model._tree_get(path)
        if found and not isinstance(value, dict):
            return value
        if found or path in GROUPS:
            return MetaNode(self._model, path)
        parts = path.split(".")
        # step aliases and reference types are open-ended families: unset ones read as None
        if parts[0] == "ref_file" and len(parts) == 2:
            return MetaNode(self._model, path)
        if (parts[0] == "ref_file" and len(parts) == 3) or (
            parts[0] == "cal_step" and len(parts) == 2
        ):
            return None
        raise AttributeError(f"meta.{path} is not a known metadata attribute and has not been set")

    def __setattr__(self, name: str, value: Any) -> None:
        path = _join(self._path, name)
        keyword = KEYWORDS.get(path)
        if keyword is not None:
            self._model._set_keyword(keyword, value)
        elif path in GROUPS:
            if not isinstance(value, dict):
                raise AttributeError(f"meta.{path} is a group; assign a dict to it")
            node = MetaNode(self._model, path)
            for key, item in value.items():
                setattr(node, key, item)
        else:
            self._model._tree_set(path, value)

    def __delattr__(self, name: str) -> None:
        setattr(self, name, None)

    def __dir__(self) -> list[str]:
        return sorted(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """Flat ``{dotted path: value}`` of every set value under this node."""
        prefix = f"{self._path}." if self._path else ""
        out: dict[str, Any] = {}
        for path, keyword in KEYWORDS.items():
            if path.startswith(prefix):
                value = self._model._get_keyword(keyword)
                if value is not None:
                    out[path[len(prefix) :]] = value
        found, subtree = self._model._tree_get(self._path) if self._path else (True, None)
        tree = self._model._tree_meta if not self._path else (subtree if found else None)
        if isinstance(tree, dict):
            for path, value in _flatten(tree, ""):
                if prefix + path not in KEYWORDS:
                    out.setdefault(path, value)
        return out

    def __repr__(self) -> str:
        return f"<MetaNode meta{'.' if self._path else ''}{self._path}>"


def _flatten(tree: dict[str, Any], prefix: str):
    for key, value in tree.items():
        path = _join(prefix, key)
        if isinstance(value, dict):
            yield from _flatten(value, path)
        else:
            yield path, value
