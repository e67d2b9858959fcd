"""The FITS-backed :class:`DataModel` base class shared by science and reference models."""

from __future__ import annotations

import copy as _copy
import os
import re
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from astropy.io import fits

from jwpipe.datamodels import _asdf_tree, _fitsio
from jwpipe.datamodels.keywords import CRDS_KEYWORDS, KEYWORDS, Keyword
from jwpipe.datamodels.meta import MetaNode
from jwpipe.errors import DataModelError

__all__ = ["ArraySpec", "DataModel", "PlaneStack"]

# Which physical-value kinds may be converted to a target kind on read or assignment.
_ACCEPTED_KINDS = {"f": "fiu", "u": "iu", "i": "iu"}
_COLUMN_KEY = re.compile(r"(TTYPE|TFORM|TUNIT|TDIM|TNULL|TSCAL|TZERO|TDISP)\d+")


@dataclass(frozen=True)
class ArraySpec:
    """An array attribute of a model stored as one FITS image extension.

    Parameters
    ----------
    extname : str
        FITS extension name.
    dtype : str
        In-memory dtype (``"float32"``, ``"uint32"``, ...).
    ndim : tuple of int
        Allowed numbers of dimensions.
    default : float or None
        Fill value of the array created on first access when it is absent; None means the
        array is optional and reads as None when absent.
    like : str
        How the array's shape follows the primary array: ``"same"``, ``"image"`` (last two
        axes) or ``"zeroframe"`` (first and last two axes).
    """

    extname: str
    dtype: str
    ndim: tuple[int, ...]
    default: float | None = None
    like: str = "same"

    def shape_from(self, primary: tuple[int, ...]) -> tuple[int, ...] | None:
        """Expected shape given the primary array's shape (None if not derivable)."""
        if self.like == "same":
            return primary
        if self.like == "image":
            return primary[-2:]
        if self.like == "zeroframe":
            return (primary[0], *primary[-2:]) if len(primary) == 4 else None
        return None


class PlaneStack:
    """A read-only stack of planes (first axis) fetched one at a time: ``stack[j]``.

    Parameters
    ----------
    read : callable
        ``read(j)`` returns plane ``j`` (shape ``shape[1:]``) as a new array.
    shape : tuple of int
        Shape of the whole stack.
    dtype : numpy.dtype
        Dtype of the planes.
    window : tuple of slice, optional
        Slices applied to the last two axes of every plane (see :meth:`cut`).
    """

    def __init__(self, read: Any, shape: tuple[int, ...], dtype: np.dtype,
                 window: tuple[slice, slice] = (slice(None), slice(None))) -> None:
        self._read = read
        self._full = tuple(shape)
        self.dtype = np.dtype(dtype)
        self._window = window
        cut = [len(range(*w.indices(n))) for w, n in zip(window, self._full[-2:], strict=True)]
        self.shape = (*self._full[:-2], *cut)

    @property
    def ndim(self) -> int:
        """Number of dimensions of the whole stack."""
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: int) -> np.ndarray:
        if not isinstance(index, int | np.integer):
            raise TypeError("a PlaneStack is indexed by one plane number")
        j = int(index) + (self.shape[0] if index < 0 else 0)
        if not 0 <= j < self.shape[0]:
            raise IndexError(f"plane {index} out of range for {self.shape[0]} planes")
        ys, xs = self._window
        return self._read(j)[..., ys, xs]

    def cut(self, ys: slice, xs: slice) -> PlaneStack:
        """The same stack seen through ``[..., ys, xs]`` (slices of the full planes)."""
        if self._window != (slice(None), slice(None)):
            raise ValueError("PlaneStack.cut applies to an uncut stack only")
        return PlaneStack(self._read, self._full, self.dtype, (ys, xs))


class DataModel:
    """A JWST data file in memory: arrays, FITS headers, and a free-form metadata tree.

    Parameters
    ----------
    init : str, os.PathLike, tuple, numpy.ndarray, DataModel or None
        A file to open, the shape of the primary array (filled with zeros), the primary array
        itself, another model whose metadata (and compatible arrays) are taken over, or None
        for an empty model.
    **arrays
        Arrays or tables to set by attribute name (``data=...``, ``pixeldq=...``).

    Notes
    -----
    Arrays read from a file are loaded on first access; the file stays open until
    :meth:`close` (or the end of a ``with`` block). ``model.extra`` is a dict of plain YAML
    values saved in the file's ``ASDF`` extension.
    """

    _arrays: ClassVar[dict[str, ArraySpec]] = {}
    _tables: ClassVar[dict[str, str]] = {}
    _primary: ClassVar[str | None] = "data"
    _model_types: ClassVar[tuple[str, ...]] = ()
    _keyword_hdu: ClassVar[dict[str, str]] = {}
    _required_keywords: ClassVar[tuple[str, ...]] = ()
    _required_tables: ClassVar[tuple[str, ...]] = ()
    crds_observatory: ClassVar[str] = "jwst"

    def __init__(self, init: Any = None, **arrays: Any) -> None:
        state = {
            "_headers": {"PRIMARY": fits.Header()},
            "_array_data": {},
            "_lazy": {},
            "_table_data": {},
            "_table_headers": {},
            "_other_hdus": [],
            "_tree_meta": {},
            "_tree_other": {},
            "extra": {},
            "_handle": None,
            "_source_path": None,
            "_gwcs": None,
        }
        for key, value in state.items():
            object.__setattr__(self, key, value)
        if init is None:
            pass
        elif isinstance(init, str | os.PathLike):
            self._load(os.fspath(init))
        elif isinstance(init, tuple):
            if self._primary is None:
                raise TypeError(f"{type(self).__name__} has no primary array to shape")
            spec = self._arrays[self._primary]
            setattr(self, self._primary, np.zeros(init, dtype=spec.dtype))
        elif isinstance(init, np.ndarray):
            if self._primary is None:
                raise TypeError(f"{type(self).__name__} has no primary array")
            setattr(self, self._primary, init)
        elif isinstance(init, DataModel):
            self._take_over(init)
        else:
            raise TypeError(f"cannot initialise {type(self).__name__} from {type(init).__name__}")
        for name, value in arrays.items():
            if name not in self._arrays and name not in self._tables:
                raise TypeError(f"{type(self).__name__} has no array or table {name!r}")
            setattr(self, name, value)
        if self._source_path is None and self.meta.model_type is None:
            self.meta.model_type = type(self).__name__

    # ------------------------------------------------------------------ attribute access
    @property
    def meta(self) -> MetaNode:
        """Metadata, e.g. ``model.meta.exposure.ngroups`` (None when unset)."""
        return MetaNode(self)

    def __getattr__(self, name: str) -> Any:
        cls = type(self)
        if name in cls._arrays:
            return self._get_array(name)
        if name in cls._tables:
            return self._table_data.get(cls._tables[name])
        raise AttributeError(f"{cls.__name__} has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        cls = type(self)
        if name in cls._arrays:
            self._set_array(name, value)
        elif name in cls._tables:
            ext = cls._tables[name]
            if value is None:
                self._table_data.pop(ext, None)
            else:
                table = np.asarray(value)
                if table.dtype.names is None:
                    raise DataModelError(f"{name} must be a structured (record) array")
                self._table_data[ext] = table
        else:
            object.__setattr__(self, name, value)

    def _where(self) -> str:
        return self._source_path or f"<in-memory {type(self).__name__}>"

    def _check_array(self, name: str, ndim: int, dtype: np.dtype) -> None:
        spec = self._arrays[name]
        if ndim not in spec.ndim:
            raise DataModelError(
                f"{self._where()}: {spec.extname} ({name}) has {ndim} dimensions, "
                f"{type(self).__name__} needs {' or '.join(map(str, spec.ndim))}"
            )
        target = np.dtype(spec.dtype).kind
        if dtype.kind not in _ACCEPTED_KINDS[target]:
            raise DataModelError(
                f"{self._where()}: {spec.extname} ({name}) has dtype {dtype}, "
                f"which cannot be converted to {spec.dtype}"
            )

    def _set_array(self, name: str, value: Any) -> None:
        self._lazy.pop(name, None)
        if value is None:
            self._array_data.pop(name, None)
            return
        array = np.asarray(value)
        self._check_array(name, array.ndim, array.dtype)
        self._array_data[name] = array.astype(self._arrays[name].dtype, copy=False)

    def _load_lazy(self, name: str) -> np.ndarray | None:
        source = self._lazy.get(name)
        if source is None:
            return self._array_data.get(name)
        array = self._postprocess_array(name, source.read(np.dtype(self._arrays[name].dtype)))
        del self._lazy[name]
        self._array_data[name] = array
        return array

    def _get_array(self, name: str) -> np.ndarray | None:
        array = self._load_lazy(name)
        if array is not None:
            return array
        spec = self._arrays[name]
        shape = self.shape if name != self._primary else None
        if spec.default is None or shape is None:
            return None
        expected = spec.shape_from(shape)
        if expected is None:
            return None
        array = np.full(expected, spec.default, dtype=spec.dtype)
        self._array_data[name] = array
        return array

    def planes(self, name: str) -> np.ndarray | PlaneStack | None:
        """Array ``name`` for plane-by-plane use: the array itself once loaded, else a
        :class:`PlaneStack` that reads each first-axis plane from the file when indexed.

        Lets a step use a few planes of a large reference (a dark with more groups than the
        exposure) without reading or holding the rest.
        """
        source = self._lazy.get(name)
        if source is None or len(source.shape) < 2:
            return self._get_array(name)
        dtype = np.dtype(self._arrays[name].dtype)
        return PlaneStack(
            lambda j: self._postprocess_array(name, source.read_plane(j, dtype)),
            source.shape, dtype)

    def _postprocess_array(self, name: str, array: np.ndarray) -> np.ndarray:
        """Hook for subclasses (reference DQ remapping)."""
        return array

    def has_array(self, name: str) -> bool:
        """True if array ``name`` is present (in memory or in the file) without creating it."""
        return name in self._array_data or name in self._lazy

    def array_shape(self, name: str) -> tuple[int, ...] | None:
        """Shape of array ``name`` (None if absent), without reading it from the file."""
        return self._array_shape(name)

    def _array_shape(self, name: str) -> tuple[int, ...] | None:
        if name in self._array_data:
            return self._array_data[name].shape
        if name in self._lazy:
            return self._lazy[name].shape
        return None

    @property
    def shape(self) -> tuple[int, ...] | None:
        """Shape of the primary array (None if it is not set)."""
        return self._array_shape(self._primary) if self._primary else None

    # ------------------------------------------------------------------ header keywords
    def _keyword_hdus(self, keyword: Keyword) -> list[str]:
        hdu = self._keyword_hdu.get(keyword.hdu, keyword.hdu)
        extnames = {spec.extname for spec in self._arrays.values()}
        if hdu != "PRIMARY" and hdu not in extnames:
            hdu = "PRIMARY"
        if hdu == "PRIMARY":
            return ["PRIMARY", "SCI"] if keyword.hdu == "SCI" or "SCI" in extnames else ["PRIMARY"]
        if hdu == "SCI":
            return ["SCI", "PRIMARY"]
        return [hdu]

    def _get_keyword(self, keyword: Keyword) -> Any:
        for hdu in self._keyword_hdus(keyword):
            header = self._headers.get(hdu)
            if header is not None and keyword.name in header:
                value = header[keyword.name]
                if isinstance(value, fits.card.Undefined):
                    return None
                if keyword.type is float and isinstance(value, int) and not isinstance(value, bool):
                    return float(value)
                return value
        return None

    def _set_keyword(self, keyword: Keyword, value: Any) -> None:
        hdus = self._keyword_hdus(keyword)
        if value is None:
            for hdu in hdus:
                header = self._headers.get(hdu)
                if header is not None:
                    while keyword.name in header:
                        del header[keyword.name]
            return
        value = _coerce(keyword, value)
        for hdu in hdus:
            header = self._headers.get(hdu)
            if header is not None and keyword.name in header:
                header[keyword.name] = value
                return
        self._headers.setdefault(hdus[0], fits.Header())[keyword.name] = value

    def header(self, extname: str = "PRIMARY") -> fits.Header:
        """The (live) astropy header of ``extname`` without structural cards."""
        return self._headers.setdefault(extname.upper(), fits.Header())

    # ------------------------------------------------------------------ metadata tree
    def _tree_get(self, path: str) -> tuple[bool, Any]:
        node: Any = self._tree_meta
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return False, None
            node = node[part]
        return True, node

    def _tree_set(self, path: str, value: Any) -> None:
        parts = path.split(".")
        for i in range(1, len(parts)):
            if ".".join(parts[:i]) in KEYWORDS:
                raise DataModelError(f"meta.{'.'.join(parts[:i])} is a value, not a group")
        node = self._tree_meta
        if value is None:
            for part in parts[:-1]:
                node = node.get(part)
                if not isinstance(node, dict):
                    return
            node.pop(parts[-1], None)
            return
        value = _asdf_tree.check_plain(value, f"meta.{path}")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = value

    def _get_gwcs(self) -> Any:
        """The gWCS (``meta.wcs``), deserialized from the file on first use; None if absent."""
        pending = self._gwcs
        if isinstance(pending, _PendingWcs):
            object.__setattr__(self, "_gwcs", _asdf_tree.decode_wcs(pending.raw, pending.path))
        return self._gwcs

    # ------------------------------------------------------------------ CRDS parameters
    def get_crds_parameters(self) -> dict[str, Any]:
        """Reference-selection parameters keyed by FITS keyword, values as stored."""
        keys = [*CRDS_KEYWORDS]
        if "REFTYPE" in self._headers["PRIMARY"]:
            keys.append("REFTYPE")
        out: dict[str, Any] = {}
        for key in keys:
            for hdu in ("PRIMARY", "SCI"):
                header = self._headers.get(hdu)
                if header is not None and key in header:
                    value = header[key]
                    if not isinstance(value, fits.card.Undefined):
                        out[key] = value
                    break
        return out

    # ------------------------------------------------------------------ reading
    def _load(self, path: str) -> None:
        hdul, handle = _fitsio.scan(path)
        object.__setattr__(self, "_source_path", path)
        object.__setattr__(self, "_handle", handle)
        weakref.finalize(self, handle.close)
        by_ext = {spec.extname: name for name, spec in self._arrays.items()}
        table_attrs = {ext: name for name, ext in self._tables.items()}
        try:
            self._headers["PRIMARY"] = _fitsio.clean_header(hdul[0].header)
            for hdu in hdul[1:]:
                ext = hdu.name.upper()
                if ext == _asdf_tree.EXTNAME and isinstance(hdu, fits.BinTableHDU):
                    self._read_tree(hdu, path)
                elif ext in by_ext and type(hdu) is fits.ImageHDU and by_ext[ext] not in self._lazy:
                    self._read_image(by_ext[ext], hdu, handle)
                elif ext in table_attrs and isinstance(hdu, fits.BinTableHDU):
                    self._table_data[ext] = _table_array(hdu)
                    self._table_headers[ext] = _table_header(hdu.header)
                else:
                    self._other_hdus.append(_detach(hdu))
        except DataModelError:
            handle.close()
            raise
        except Exception as exc:
            handle.close()
            raise DataModelError(f"{path}: cannot read the file: {exc}") from exc
        finally:
            hdul.close()
        try:
            self._validate(path)
        except DataModelError:
            handle.close()
            raise
        self.meta.filename = os.path.basename(path)

    def _read_image(self, name: str, hdu: fits.ImageHDU, handle: _fitsio.FileHandle) -> None:
        source = _fitsio.image_source(hdu, handle)
        self._headers[hdu.name.upper()] = _fitsio.clean_header(hdu.header)
        if source is None:
            return
        self._check_array(name, len(source.shape), _fitsio.physical_dtype(source))
        self._lazy[name] = source

    def _read_tree(self, hdu: fits.BinTableHDU, path: str) -> None:
        try:
            raw = bytes(np.asarray(hdu.data[_asdf_tree.COLUMN][0], dtype=np.uint8))
        except (KeyError, IndexError, TypeError) as exc:
            raise DataModelError(f"{path}: malformed ASDF extension: {exc}") from exc
        tree, has_wcs = _asdf_tree.decode_tree(raw, path)
        # the gWCS is deserialized on first use of meta.wcs (see _get_gwcs)
        object.__setattr__(self, "_gwcs", _PendingWcs(raw, path) if has_wcs else None)
        meta = tree.pop("meta", {})
        extra = tree.pop("extra", {})
        tree.pop("data", None)
        object.__setattr__(self, "_tree_meta", meta if isinstance(meta, dict) else {})
        object.__setattr__(self, "extra", extra if isinstance(extra, dict) else {})
        object.__setattr__(self, "_tree_other", tree)

    def _validate(self, where: str) -> None:
        """Check the primary array, shapes, required tables and keywords."""
        cls = type(self)
        if cls._primary is not None:
            primary_shape = self.shape
            if primary_shape is None:
                raise DataModelError(
                    f"{where}: lacks the {cls._arrays[cls._primary].extname} extension "
                    f"required by {cls.__name__}"
                )
            for name, spec in cls._arrays.items():
                shape = self._array_shape(name)
                expected = spec.shape_from(primary_shape)
                if shape is not None and expected is not None and shape != expected:
                    raise DataModelError(
                        f"{where}: {spec.extname} has shape {shape}, expected {expected} "
                        f"to match {cls._arrays[cls._primary].extname} {primary_shape}"
                    )
        for name in cls._required_tables:
            if cls._tables[name] not in self._table_data:
                raise DataModelError(
                    f"{where}: lacks the {cls._tables[name]} table required by {cls.__name__}"
                )
        for path in cls._required_keywords:
            if self._get_keyword(KEYWORDS[path]) is None:
                raise DataModelError(
                    f"{where}: lacks keyword {KEYWORDS[path].name} (meta.{path}) required by "
                    f"{cls.__name__}"
                )

    # ------------------------------------------------------------------ writing
    def _save_model_type(self) -> str:
        current = self.meta.model_type
        if current in self._model_types:
            return current
        return type(self).__name__

    def _extra_hdus(self) -> list[fits.hdu.base._BaseHDU]:
        """Hook for subclasses: extra HDUs written after the tables (e.g. DQ_DEF)."""
        return []

    def to_hdulist(self) -> fits.HDUList:
        """Build the FITS HDU list this model saves as (reads any arrays not yet loaded)."""
        from jwpipe import __version__

        for name in list(self._lazy):
            self._load_lazy(name)
        self._validate(self._where())
        self.meta.model_type = self._save_model_type()
        self.meta.jwpipe_version = __version__
        hdus: list[fits.hdu.base._BaseHDU] = [fits.PrimaryHDU(header=self._headers["PRIMARY"])]
        for name, spec in self._arrays.items():
            array = self._array_data.get(name)
            if array is None:
                continue
            header = self._headers.get(spec.extname, fits.Header()).copy()
            hdus.append(fits.ImageHDU(data=array, header=header, name=spec.extname))
        for ext in self._tables.values():
            table = self._table_data.get(ext)
            if table is not None:
                header = self._table_headers.get(ext, fits.Header()).copy()
                hdus.append(_fitsio.table_hdu(table, ext, header))
        hdus.extend(self._extra_hdus())
        hdus.extend(self._other_hdus)
        hdus.append(self._tree_hdu())
        return fits.HDUList(hdus)

    def _tree_hdu(self) -> fits.BinTableHDU:
        tree = dict(self._tree_other)
        meta = _strip_mapped(self._tree_meta, "")
        extra = _asdf_tree.check_plain(self.extra, "model.extra")
        if not isinstance(extra, dict):
            raise DataModelError("model.extra must be a dict")
        encoded = None
        if isinstance(self._gwcs, _PendingWcs):
            # a gWCS read from a file and never touched: copied as it is (no converters)
            plain = {**tree, "meta": meta} if meta else dict(tree)
            if extra:
                plain["extra"] = extra
            encoded = _asdf_tree.encode_with_raw_wcs(plain, self._gwcs.raw)
        if encoded is None:
            gwcs = self._get_gwcs()
            if gwcs is not None:
                meta["wcs"] = gwcs
            if meta:
                tree["meta"] = meta
            if extra:
                tree["extra"] = extra
            encoded = _asdf_tree.encode(tree)
        raw = np.frombuffer(encoded, dtype=np.uint8)
        column = fits.Column(
            name=_asdf_tree.COLUMN, format=f"{raw.size}B", array=raw.reshape(1, raw.size)
        )
        return _fitsio.table_hdu(fits.FITS_rec.from_columns(fits.ColDefs([column])),
                                 _asdf_tree.EXTNAME)

    def save(self, path: str | os.PathLike, overwrite: bool = True, *, fsync: bool = False) -> str:
        """Write the model to ``path`` atomically and return the path written.

        Parameters
        ----------
        path : str or os.PathLike
            Output FITS file. Its basename becomes ``meta.filename`` (FILENAME).
        overwrite : bool
            If False and ``path`` exists, raise DataModelError.
        fsync : bool
            Flush the file to stable storage before the rename.

        Returns
        -------
        str
            ``path`` as a string.
        """
        path = os.fspath(path)
        if not overwrite and os.path.exists(path):
            raise DataModelError(f"{path} already exists and overwrite is False")
        previous = self.meta.filename
        self.meta.filename = os.path.basename(path)
        try:
            _fitsio.write_atomic(self.to_hdulist(), path, fsync=fsync)
        except BaseException:
            self.meta.filename = previous
            raise
        return path

    # ------------------------------------------------------------------ lifecycle
    def _take_over(self, other: DataModel) -> None:
        """Copy metadata of ``other``; share its arrays that this class also has."""
        for ext, header in other._headers.items():
            self._headers[ext] = header.copy()
        object.__setattr__(self, "_tree_meta", _copy.deepcopy(other._tree_meta))
        object.__setattr__(self, "_tree_other", _copy.deepcopy(other._tree_other))
        object.__setattr__(self, "extra", _copy.deepcopy(other.extra))
        object.__setattr__(self, "_gwcs", _copy.deepcopy(other._get_gwcs()))
        for ext, table in other._table_data.items():
            if ext in self._tables.values():
                self._table_data[ext] = table.copy()
                self._table_headers[ext] = other._table_headers.get(ext, fits.Header()).copy()
        for name, spec in self._arrays.items():
            other_spec = other._arrays.get(name)
            if other_spec is None or other_spec.extname != spec.extname:
                continue
            array = other._load_lazy(name)
            if array is not None and array.ndim in spec.ndim:
                self._set_array(name, array)
        if type(other) is not type(self):
            self.meta.model_type = type(self).__name__

    def copy(self) -> DataModel:
        """A deep copy (all arrays are read and copied)."""
        for name in list(self._lazy):
            self._load_lazy(name)
        new = type(self).__new__(type(self))
        for key, value in self.__dict__.items():
            if key == "_handle":
                object.__setattr__(new, key, None)
            elif key == "_headers":
                object.__setattr__(new, key, {k: h.copy() for k, h in value.items()})
            elif key == "_other_hdus":
                object.__setattr__(new, key, [h.copy() for h in value])
            else:
                object.__setattr__(new, key, _copy.deepcopy(value))
        return new

    def close(self) -> None:
        """Close the underlying file; arrays already read stay available."""
        if self._handle is not None:
            self._handle.close()

    def __enter__(self) -> DataModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = f" from {os.path.basename(self._source_path)}" if self._source_path else ""
        return f"<{type(self).__name__}{self.shape or ''}{where}>"


@dataclass(frozen=True)
class _PendingWcs:
    """The ASDF bytes of a gWCS not yet deserialized."""

    raw: bytes
    path: str


def _coerce(keyword: Keyword, value: Any) -> Any:
    kind = keyword.type
    ok: bool
    if kind is str:
        ok = isinstance(value, str)
    elif kind is bool:
        ok = isinstance(value, bool | np.bool_)
        value = bool(value) if ok else value
    elif kind is int:
        ok = isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)
        value = int(value) if ok else value
    else:
        ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(
            value, bool | np.bool_
        )
        value = float(value) if ok else value
    if not ok:
        raise DataModelError(
            f"meta.{keyword.path} ({keyword.name}) must be {kind.__name__}, "
            f"got {type(value).__name__} {value!r}"
        )
    return value


def _strip_mapped(tree: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """The tree without leaves whose path has a FITS keyword (the header is authoritative)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if path in KEYWORDS:
            continue
        if isinstance(value, dict):
            sub = _strip_mapped(value, f"{path}.")
            if sub or not value:
                out[key] = sub
        else:
            out[key] = value
    return out


def _table_array(hdu: fits.BinTableHDU) -> np.ndarray:
    """A FITS binary table as a plain numpy structured array (physical values)."""
    data = hdu.data
    if data is None:
        return np.zeros(0, dtype=[("empty", "i4")])
    columns = {name: np.asarray(data[name]) for name in data.names}
    dtype = [(name, col.dtype.newbyteorder("="), col.shape[1:]) for name, col in columns.items()]
    out = np.empty(len(data), dtype=dtype)
    for name, col in columns.items():
        out[name] = col
    return out


def _table_header(header: fits.Header) -> fits.Header:
    out = _fitsio.clean_header(header)
    for key in list(dict.fromkeys(out.keys())):
        if key in ("TFIELDS", "THEAP") or _COLUMN_KEY.fullmatch(key):
            del out[key]
    return out


def _detach(hdu: fits.hdu.base._BaseHDU) -> fits.hdu.base._BaseHDU:
    """A copy of an HDU that no longer refers to the file it was read from."""
    if type(hdu) is fits.BinTableHDU:
        return _fitsio.table_hdu(hdu.data.copy(), hdu.name, hdu.header.copy())
    return hdu.copy()
