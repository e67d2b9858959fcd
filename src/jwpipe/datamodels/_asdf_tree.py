"""Encode/decode the ``ASDF`` metadata extension (one row, byte column ``ASDF_METADATA``).

``asdf`` is imported only here, and only when a tree is actually read or written.
"""

from __future__ import annotations

import datetime
import io
import warnings
from typing import Any

import numpy as np

from jwpipe.errors import DataModelError

COLUMN = "ASDF_METADATA"
EXTNAME = "ASDF"
# Keys asdf manages itself, or that only make sense for stdatamodels' own FITS/ASDF pairing.
_SKIP_KEYS = frozenset({"asdf_library", "history", "_fits_hash"})


def to_plain(value: Any) -> Any:
    """Return ``value`` reduced to plain YAML types; objects that are not plain become ``_DROP``.

    Tagged ASDF objects (array references, WCS objects, ...) are dropped: the arrays live in
    FITS extensions and jwpipe does not interpret anything else.
    """
    from asdf.tagged import Tagged

    if isinstance(value, Tagged):
        return _DROP
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, datetime.date | datetime.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            plain = to_plain(item)
            if plain is not _DROP:
                out[str(key)] = plain
        return out
    if isinstance(value, list | tuple):
        return [p for p in (to_plain(v) for v in value) if p is not _DROP]
    return _DROP


class _Drop:
    def __repr__(self) -> str:
        return "<dropped>"


_DROP = _Drop()


def check_syntax(raw: bytes, filename: str) -> None:
    """Raise DataModelError unless ``raw`` is an ASDF header plus a well-formed YAML tree.

    A cheap check (PyYAML's event parser, no tag construction and no asdf import) so that a
    damaged extension is still refused when the file is opened, while the tree itself is
    decoded only when first used.
    """
    import yaml

    if not raw.startswith(b"#ASDF"):
        raise DataModelError(f"{filename}: cannot read the ASDF metadata extension: "
                             "no #ASDF header")
    end = raw.find(b"\n...")
    text = raw[: end + 4] if end >= 0 else raw
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        for _ in yaml.parse(text.decode("utf-8"), Loader=loader):
            pass
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise DataModelError(
            f"{filename}: cannot read the ASDF metadata extension: {exc}") from None


def decode(raw: bytes, filename: str) -> dict[str, Any]:
    """Parse the bytes of an ``ASDF_METADATA`` cell into a plain dict (top-level keys kept)."""
    import asdf

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with asdf.open(io.BytesIO(raw), lazy_load=False, memmap=False) as af:
                tree = dict(af.tree)
                plain = {}
                for key, value in tree.items():
                    if key in _SKIP_KEYS:
                        continue
                    converted = to_plain(value)
                    if converted is not _DROP:
                        plain[key] = converted
    except Exception as exc:
        raise DataModelError(f"{filename}: cannot read the ASDF metadata extension: {exc}") from exc
    return plain


def encode(tree: dict[str, Any]) -> bytes:
    """Serialize a plain tree to ASDF bytes (YAML document, no binary blocks)."""
    import asdf

    buffer = io.BytesIO()
    asdf.AsdfFile(tree).write_to(buffer)
    return buffer.getvalue()


def check_plain(value: Any, where: str) -> Any:
    """Return ``value`` as plain YAML types, or raise DataModelError naming ``where``."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return value.item()
    if isinstance(value, dict):
        return {str(k): check_plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [check_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise DataModelError(
        f"{where}: value of type {type(value).__name__} cannot be stored in the metadata tree "
        "(use str, int, float, bool, None, lists and dicts)"
    )
