"""Lazy package attributes: import a submodule only when one of its names is first used."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_getattr(package: str, modules: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` serving ``name`` from ``<package>.<modules[name]>``.

    A value ``"module:attribute"`` serves ``name`` from another attribute name of that module.
    """

    def __getattr__(name: str) -> Any:
        where = modules.get(name)
        if where is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attribute = where.partition(":")
        return getattr(importlib.import_module(f"{package}.{module}"), attribute or name)

    return __getattr__
