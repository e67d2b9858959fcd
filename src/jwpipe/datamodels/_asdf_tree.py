"""Encode/decode the ``ASDF`` metadata extension (one row, byte column ``ASDF_METADATA``).

Trees hold only plain YAML values, so they are read and written with PyYAML's safe loader and
dumper under the ASDF file header; ``asdf`` (whose plugins take about a second to load) is
imported only for a tree the plain loader cannot read.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import re
import sys
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
    if "asdf.tagged" in sys.modules and isinstance(value, sys.modules["asdf.tagged"].Tagged):
        return _DROP  # no tagged object can exist unless asdf built it
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


# Tags whose values asdf itself turns into plain mappings (dict subclasses).
_PLAIN_MAPPING_TAGS = ("core/asdf-", "core/software-", "core/history_entry-",
                       "core/extension_metadata-")


def _plain_loader() -> type:
    """A YAML safe loader that keeps ASDF's plain mappings and drops every other tagged node."""
    import yaml

    base = yaml.CSafeLoader if getattr(yaml, "__with_libyaml__", False) else yaml.SafeLoader

    class _Loader(base):  # type: ignore[misc, valid-type]
        pass

    def construct_tagged(loader: Any, node: Any) -> Any:
        tag = node.tag or ""
        if isinstance(node, yaml.MappingNode) and any(
                f"asdf/{t}" in tag for t in _PLAIN_MAPPING_TAGS):
            return loader.construct_mapping(node, deep=True)
        return _DROP

    _Loader.add_constructor(None, construct_tagged)
    return _Loader


def _yaml_document(raw: bytes) -> bytes | None:
    """The YAML part of ASDF bytes (header comments kept), or None if it cannot be cut."""
    if not raw.startswith(b"#ASDF "):
        return None
    end = _DOCUMENT_END.search(raw)
    if end is None:
        return None
    return raw[: end.end()]


_DOCUMENT_END = re.compile(rb"\r?\n\.\.\.(\r?\n|$)")


def _plain_tree(tree: Any) -> dict[str, Any]:
    plain: dict[str, Any] = {}
    for key, value in tree.items():
        if key in _SKIP_KEYS:
            continue
        converted = to_plain(value)
        if converted is not _DROP:
            plain[str(key)] = converted
    return plain


def decode(raw: bytes, filename: str) -> dict[str, Any]:
    """Parse the bytes of an ``ASDF_METADATA`` cell into a plain dict (top-level keys kept)."""
    return decode_tree(raw, filename)[0]


def decode_tree(raw: bytes, filename: str) -> tuple[dict[str, Any], bool]:
    """Like :func:`decode`, and also tell whether ``meta.wcs`` holds a gWCS.

    The YAML document is read with a plain safe loader: tagged nodes (arrays, which live in
    FITS extensions, the gWCS, ...) are dropped, exactly as :func:`to_plain` drops the objects
    asdf would build from them, so asdf and its extension plugins are neither imported nor
    initialised. Trees the plain loader cannot read go through ``asdf.open``. The gWCS itself is
    not deserialized here (it costs more than the rest of the tree): see :func:`decode_wcs`.
    """
    document = _yaml_document(raw)
    if document is not None:
        import yaml

        try:
            tree = yaml.load(document, Loader=_loader())
        except yaml.YAMLError:
            tree = None
        if isinstance(tree, dict):
            meta = tree.get("meta")
            return _plain_tree(tree), isinstance(meta, dict) and "wcs" in meta
    return _decode_tree_with_asdf(raw, filename)


def decode_with_asdf(raw: bytes, filename: str) -> dict[str, Any]:
    """:func:`decode` through ``asdf.open`` (arrays not loaded; slower on first use)."""
    return _decode_tree_with_asdf(raw, filename)[0]


def _decode_tree_with_asdf(raw: bytes, filename: str) -> tuple[dict[str, Any], bool]:
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


_LOADER: list[type] = []


def _loader() -> type:
    if not _LOADER:
        _LOADER.append(_plain_loader())
    return _LOADER[0]


_HEADER = (b"#ASDF 1.0.0\n#ASDF_STANDARD 1.6.0\n%YAML 1.1\n%TAG ! tag:stsci.edu:asdf/\n"
           b"--- !core/asdf-1.1.0\n")


def encode(tree: dict[str, Any]) -> bytes:
    """Serialize a tree to ASDF bytes (one YAML document, no binary blocks).

    A tree of plain YAML types (see :func:`check_plain`) needs none of asdf's tags, so it is
    written with a YAML safe dumper under the ASDF file header, without importing asdf; asdf
    (and stdatamodels) read it back unchanged. A tree holding a gWCS (``meta.wcs``) is written
    by asdf, its arrays inline, so the cell stays self-contained.
    """
    meta = tree.get("meta")
    if isinstance(meta, dict) and "wcs" in meta:
        import asdf

        buffer = io.BytesIO()
        asdf.AsdfFile(tree).write_to(buffer, all_array_storage="inline")
        return buffer.getvalue()
    import yaml

    dumper = yaml.CSafeDumper if getattr(yaml, "__with_libyaml__", False) else yaml.SafeDumper
    body = yaml.dump(tree, Dumper=dumper, sort_keys=False, default_flow_style=None, width=100,
                     allow_unicode=False, explicit_end=False).encode("ascii")
    return _HEADER + body + b"...\n"


def encode_with_raw_wcs(tree: dict[str, Any], raw: bytes) -> bytes | None:
    """Serialize a plain tree with the gWCS of another cell's bytes (``raw``) as its
    ``meta.wcs``, copied as YAML nodes (tags, anchors, inline arrays) without deserializing
    it, so neither asdf nor the gwcs/astropy converters are imported.

    Returns None where the copy cannot be made this way (the cell is not a single YAML
    document, e.g. it has binary blocks): the caller then decodes and re-encodes the gWCS.
    """
    import yaml

    document = _yaml_document(raw)
    if document is None or raw[len(document):].strip():
        return None
    base = yaml.CSafeLoader if getattr(yaml, "__with_libyaml__", False) else yaml.SafeLoader
    try:
        root = yaml.compose(document, Loader=base)
    except yaml.YAMLError:
        return None
    wcs_node = _mapping_value(_mapping_value(root, "meta"), "wcs")
    if wcs_node is None:
        return None
    dumper_class = yaml.CSafeDumper if getattr(yaml, "__with_libyaml__", False) \
        else yaml.SafeDumper
    dumper = dumper_class(io.StringIO(), sort_keys=False, default_flow_style=None)
    node = dumper.represent_data(tree)
    meta = _mapping_value(node, "meta")
    key = yaml.ScalarNode("tag:yaml.org,2002:str", "wcs")
    if meta is None:
        meta = yaml.MappingNode("tag:yaml.org,2002:map", [])
        node.value.append((yaml.ScalarNode("tag:yaml.org,2002:str", "meta"), meta))
    meta.value.append((key, wcs_node))
    node.tag = "tag:stsci.edu:asdf/core/asdf-1.1.0"
    body = yaml.serialize(node, Dumper=dumper_class, width=100, allow_unicode=False,
                          explicit_start=True, version=(1, 1),
                          tags={"!": "tag:stsci.edu:asdf/"})
    return b"#ASDF 1.0.0\n#ASDF_STANDARD 1.6.0\n" + body.encode("ascii") + b"...\n"


def _mapping_value(node: Any, name: str) -> Any:
    import yaml

    if not isinstance(node, yaml.MappingNode):
        return None
    for key, value in node.value:
        if isinstance(key, yaml.ScalarNode) and key.value == name:
            return value
    return None


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
