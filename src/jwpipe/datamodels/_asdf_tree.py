"""Encode/decode the ``ASDF`` metadata extension (one row, byte column ``ASDF_METADATA``).

``asdf`` is imported only here, and only when a tree is actually read or written.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import warnings
from collections import UserList
from collections.abc import Iterator, Mapping
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
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            plain = to_plain(item)
            if plain is not _DROP:
                out[str(key)] = plain
        return out
    if isinstance(value, list | tuple | UserList):
        return [p for p in (to_plain(v) for v in value) if p is not _DROP]
    return _DROP


class _Drop:
    def __repr__(self) -> str:
        return "<dropped>"


_DROP = _Drop()


def decode(raw: bytes, filename: str) -> dict[str, Any]:
    """Parse the bytes of an ``ASDF_METADATA`` cell into a plain dict (top-level keys kept)."""
    return decode_tree(raw, filename)[0]


def decode_tree(raw: bytes, filename: str) -> tuple[dict[str, Any], bool]:
    """Like :func:`decode`, and also tell whether ``meta.wcs`` holds a gWCS.

    The gWCS itself is not deserialized here (it costs more than the rest of the tree): see
    :func:`decode_wcs`.
    """
    import asdf

    try:
        with warnings.catch_warnings(), _no_validation():
            warnings.simplefilter("ignore")
            # lazy: arrays that point at FITS extensions (``source: fits:SCI,0``, as
            # stdatamodels writes them) are dropped, never loaded; lazy tree: tagged nodes
            # (the gWCS) are converted only when touched
            with asdf.open(io.BytesIO(raw), lazy_load=True, lazy_tree=True,
                           memmap=False) as af:
                tree = af.tree
                meta = tree.get("meta")
                has_wcs = isinstance(meta, Mapping) and "wcs" in meta
                plain = {}
                for key in list(tree.keys()):
                    if key in _SKIP_KEYS:
                        continue
                    value = tree[key]
                    if key == "meta" and has_wcs:
                        value = {k: meta[k] for k in meta.keys() if k != "wcs"}
                    converted = to_plain(value)
                    if converted is not _DROP:
                        plain[key] = converted
    except Exception as exc:
        raise DataModelError(f"{filename}: cannot read the ASDF metadata extension: {exc}") from exc
    return plain, has_wcs


def decode_wcs(raw: bytes, filename: str) -> Any:
    """The gWCS at ``meta.wcs`` of an ``ASDF_METADATA`` cell (None if it is not a gWCS).

    Deserialized by the ``gwcs``/``asdf-astropy`` converters.
    """
    import asdf

    try:
        with warnings.catch_warnings(), _no_validation():
            warnings.simplefilter("ignore")
            with asdf.open(io.BytesIO(raw), lazy_load=False, lazy_tree=True,
                           memmap=False) as af:
                wcs = af.tree["meta"]["wcs"]
    except Exception as exc:
        raise DataModelError(f"{filename}: cannot read the gWCS (meta.wcs) of the ASDF "
                             f"metadata extension: {exc}") from exc
    return wcs if _is_gwcs(wcs) else None


@contextlib.contextmanager
def _no_validation() -> Iterator[None]:
    """Skip ASDF schema validation on read (half the cost of opening a product).

    The converters check what jwpipe uses; the schemas are STScI's business. The setting is
    switched on the current configuration rather than a fresh ``config_context``, which would
    reload every extension entry point on each call.
    """
    import asdf

    config = asdf.get_config()
    previous = config.validate_on_read
    config.validate_on_read = False
    try:
        yield
    finally:
        config.validate_on_read = previous


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
