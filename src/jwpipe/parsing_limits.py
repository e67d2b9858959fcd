"""Bounds for parsing files a user (or anyone) hands to jwpipe: size, nesting, integers, aliases.

Association and parameter files are small, flat documents; these limits are orders of
magnitude above any real one (a 10,000-member association is about 2 MB, nested 5 deep) and
stop hostile ones early with one clear message instead of a RecursionError, a ValueError from
Python's integer-string limit, or minutes and gigabytes spent expanding YAML aliases
("billion laughs").
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

__all__ = [
    "MAX_DEPTH",
    "MAX_DOCUMENT_BYTES",
    "MAX_INT_DIGITS",
    "MAX_NODES",
    "LimitError",
    "check_tree",
    "loads_json",
    "read_limited",
]

#: Largest association or parameter file read, in bytes.
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
#: Deepest nesting of lists/mappings accepted.
MAX_DEPTH = 64
#: Longest integer literal accepted, in digits (int64 has 19).
MAX_INT_DIGITS = 40
#: Most values a document may hold once aliases are expanded.
MAX_NODES = 2_000_000


class LimitError(ValueError):
    """A document exceeds one of the parsing limits; the message says which."""


def read_limited(path: str | os.PathLike[str], limit: int = MAX_DOCUMENT_BYTES) -> bytes:
    """The bytes of ``path``, refusing files larger than ``limit`` without reading them."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > limit:
            raise LimitError(f"file is {size:,} bytes; the limit is {limit:,}")
        return fh.read(limit + 1)


def _bounded_int(text: str) -> int:
    digits = len(text.lstrip("-+"))
    if digits > MAX_INT_DIGITS:
        raise LimitError(f"an integer with {digits:,} digits (limit {MAX_INT_DIGITS})")
    return int(text)


def loads_json(text: str | bytes) -> Any:
    """``json.loads`` with bounded integers and nesting.

    Raises
    ------
    LimitError
        Too deep, an oversized integer, or too many values.
    json.JSONDecodeError
        Not JSON.
    """
    try:
        data = json.loads(text, parse_int=_bounded_int)
    except RecursionError:
        raise LimitError(f"nesting deeper than {MAX_DEPTH} levels") from None
    check_tree(data)
    return data


def _children(obj: Any) -> list[Any]:
    if isinstance(obj, Mapping):
        return [*obj.keys(), *obj.values()]
    if isinstance(obj, (list, tuple)):
        return list(obj)
    return []


def check_tree(tree: Any, *, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES) -> None:
    """Raise LimitError if ``tree`` nests too deep, refers to itself, or expands to too many
    values (shared sub-trees, as YAML aliases make, count once per reference).

    Runs in time linear in the number of distinct containers, without recursion.
    """
    sizes: dict[int, int] = {}
    depths: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[Any, bool]] = [(tree, False)]
    while stack:
        obj, done = stack.pop()
        kids = _children(obj)
        if not kids and not isinstance(obj, (Mapping, list, tuple)):
            continue
        key = id(obj)
        if done:
            active.discard(key)
            size, depth = 1, 1
            for kid in kids:
                k = id(kid)
                size += sizes.get(k, 1)
                depth = max(depth, depths.get(k, 0) + 1)
            if size > max_nodes:
                raise LimitError(f"more than {max_nodes:,} values once aliases are expanded")
            if depth > max_depth:
                raise LimitError(f"nesting deeper than {max_depth} levels")
            sizes[key], depths[key] = size, depth
            continue
        if key in sizes:
            continue
        if key in active:
            raise LimitError("a value that contains itself (recursive alias)")
        active.add(key)
        stack.append((obj, True))
        stack.extend((kid, False) for kid in kids if id(kid) not in sizes)
        if len(active) > max_depth:
            raise LimitError(f"nesting deeper than {max_depth} levels")
