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


def decode(raw: bytes, filename: str) -> dict[str, Any]:
    """Parse the bytes of an ``ASDF_METADATA`` cell into a plain dict (top-level keys kept)."""
    return decode_tree(raw, filename)[0]


def decode_tree(raw: bytes, filename: str) -> tuple[dict[str, Any], Any]:
    """Like :func:`decode`, and also return the gWCS stored at ``meta.wcs`` (None if absent).

    The gWCS is deserialized by the ``gwcs``/``asdf-astropy`` converters; without them, or
    when ``meta.wcs`` is not a gWCS, None is returned for it.
    """
    import asdf

    wcs = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # lazy: arrays that point at FITS extensions (``source: fits:SCI,0``, as
            # stdatamodels writes them) are dropped, never loaded
            with asdf.open(io.BytesIO(raw), lazy_load=True, memmap=False) as af:
                tree = dict(af.tree)
                meta = tree.get("meta")
                if isinstance(meta, dict) and _is_gwcs(meta.get("wcs")):
                    wcs = meta["wcs"]
                plain = {}
                for key, value in tree.items():
                    if key in _SKIP_KEYS:
                        continue
                    converted = to_plain(value)
                    if converted is not _DROP:
                        plain[key] = converted
    except Exception as exc:
        raise DataModelError(f"{filename}: cannot read the ASDF metadata extension: {exc}") from exc
    return plain, wcs


def _is_gwcs(value: Any) -> bool:
    try:
        from gwcs import WCS
    except ImportError:
        return False
    return isinstance(value, WCS)


def encode(tree: dict[str, Any]) -> bytes:
    """Serialize a tree to ASDF bytes (YAML document, no binary blocks)."""
    import asdf

    buffer = io.BytesIO()
    # arrays (a gWCS's polynomial coefficients) inline in the YAML: one self-contained cell
    asdf.AsdfFile(tree).write_to(buffer, all_array_storage="inline")
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
