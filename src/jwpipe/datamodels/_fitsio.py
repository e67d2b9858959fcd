"""Low-level FITS reading and atomic writing for the datamodels.

Headers and tables are parsed with astropy; image data are read by jwpipe itself, straight
from the file offset astropy reports, in chunks, into one preallocated array of the target
dtype. This converts a BZERO-scaled uint16 ramp to float32 with a single full-size allocation
and lets each extension be read only when first used. Chunks are read and converted on worker
threads (``JWPIPE_THREADS``).
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from astropy.io import fits

from jwpipe._threads import map_chunks
from jwpipe.atomic import atomic_path
from jwpipe.datamodels._fitswrite import write_hdulist
from jwpipe.errors import DataModelError

_CHUNK_BYTES = 16 * 1024 * 1024

# Cards astropy derives from the data/structure; they are rebuilt when a file is written.
_STRUCTURAL = frozenset(
    {
        "SIMPLE",
        "XTENSION",
        "BITPIX",
        "NAXIS",
        "EXTEND",
        "PCOUNT",
        "GCOUNT",
        "BZERO",
        "BSCALE",
        "BLANK",
        "CHECKSUM",
        "DATASUM",
    }
)


def clean_header(header: fits.Header) -> fits.Header:
    """Copy of ``header`` without structural cards (BITPIX, NAXISn, BZERO, EXTNAME, ...)."""
    out = header.copy(strip=False)
    for key in list(dict.fromkeys(out.keys())):
        upper = key.upper()
        if upper in _STRUCTURAL or (upper.startswith("NAXIS") and upper[5:].isdigit()):
            while upper in out:
                del out[upper]
    return out


class FileHandle:
    """An open, read-only file shared by the lazily read extensions of one model."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._file = open(path, "rb")

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        return self._file.closed

    def read_into(self, buffer: memoryview, offset: int) -> None:
        """Fill ``buffer`` with the bytes of the file starting at ``offset``."""
        view = buffer.cast("B")
        done = 0
        fd = self._file.fileno()
        while done < len(view):
            n = os.preadv(fd, [view[done:]], offset + done)
            if n == 0:
                raise DataModelError(f"{self.path}: file is truncated (unexpected end of data)")
            done += n

    def close(self) -> None:
        """Close the file."""
        self._file.close()


@dataclass
class ImageSource:
    """Where one image extension's data are on disk."""

    handle: FileHandle
    offset: int
    shape: tuple[int, ...]
    disk_dtype: np.dtype
    bscale: float
    bzero: float
    extname: str

    @property
    def nbytes(self) -> int:
        """Bytes of data on disk."""
        return int(np.prod(self.shape, dtype=np.int64)) * self.disk_dtype.itemsize

    def read(self, dtype: np.dtype) -> np.ndarray:
        """Read the data as ``dtype`` (native byte order), applying BSCALE/BZERO."""
        if self.handle.closed:
            raise DataModelError(
                f"{self.handle.path}: the model was closed before extension {self.extname} was read"
            )
        return self._read_elements(0, self.shape, dtype)

    def read_plane(self, index: int, dtype: np.dtype) -> np.ndarray:
        """Read plane ``index`` of the first axis only (shape ``shape[1:]``), as :meth:`read`."""
        if self.handle.closed:
            raise DataModelError(
                f"{self.handle.path}: the model was closed before extension {self.extname} was read"
            )
        if not 0 <= index < self.shape[0]:
            raise IndexError(f"{self.extname}: plane {index} out of range 0..{self.shape[0] - 1}")
        plane = int(np.prod(self.shape[1:], dtype=np.int64))
        return self._read_elements(index * plane, self.shape[1:], dtype)

    def _read_elements(self, first: int, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        out = np.empty(shape, dtype=dtype)
        if out.size == 0:
            return out
        flat = out.reshape(-1)
        base = self.offset + first * self.disk_dtype.itemsize
        per_chunk = max(1, _CHUNK_BYTES // self.disk_dtype.itemsize)
        chunks = [slice(start, min(start + per_chunk, flat.size))
                  for start in range(0, flat.size, per_chunk)]
        native = self.disk_dtype.newbyteorder("=")
        itemsize = self.disk_dtype.itemsize
        if native == dtype and self.bscale == 1 and self.bzero == 0:

            def direct(part: slice) -> None:
                dest = flat[part]
                self.handle.read_into(memoryview(dest), base + part.start * itemsize)
                if not self.disk_dtype.isnative:
                    dest.byteswap(inplace=True)

            map_chunks(direct, chunks)
            return out
        convert = _converter(self.disk_dtype, dtype, self.bscale, self.bzero, self.extname)

        def converted(part: slice) -> None:
            raw = np.empty(part.stop - part.start, dtype=self.disk_dtype)
            self.handle.read_into(memoryview(raw), base + part.start * itemsize)
            convert(raw, flat[part])

        map_chunks(converted, chunks)
        return out


def _converter(
    disk: np.dtype, target: np.dtype, bscale: float, bzero: float, extname: str
) -> Callable[[np.ndarray, np.ndarray], None]:
    """Function writing the physical values of a raw disk chunk into a target slice."""
    if target.kind == "f":

        def to_float(raw: np.ndarray, dest: np.ndarray) -> None:
            dest[...] = raw
            if bscale != 1:
                dest *= target.type(bscale)
            if bzero != 0:
                dest += target.type(bzero)

        return to_float
    if target.kind in "iu" and disk.kind in "iu":
        if bscale == 1 and bzero == 0:

            def plain(raw: np.ndarray, dest: np.ndarray) -> None:
                dest[...] = raw

            return plain
        sign = 1 << (8 * disk.itemsize - 1)
        if bscale == 1 and bzero == sign:
            unsigned = np.dtype(f"u{disk.itemsize}").newbyteorder(
                ">" if disk.byteorder == ">" else "="
            )
            flip = unsigned.type(sign)

            def offset_binary(raw: np.ndarray, dest: np.ndarray) -> None:
                dest[...] = raw.view(unsigned) ^ flip

            return offset_binary
    raise DataModelError(
        f"extension {extname}: cannot convert {disk} data scaled by BSCALE={bscale}, "
        f"BZERO={bzero} to {target}"
    )


_HANDED = threading.local()


@contextlib.contextmanager
def handing_over(path: str, scanned: tuple[fits.HDUList, FileHandle]) -> Iterator[None]:
    """Within the block, the next :func:`scan` of ``path`` in this thread returns ``scanned``.

    :func:`~jwpipe.datamodels.opening.open_model` scans a file to choose the model class and
    hands the result to the model it opens, so the headers are parsed once. What the block
    did not take is closed at its end.
    """
    _HANDED.value = (path, scanned)
    try:
        yield
    finally:
        left = getattr(_HANDED, "value", None)
        _HANDED.value = None
        if left is not None:
            left[1][0].close()
            left[1][1].close()


def scan(path: str) -> tuple[fits.HDUList, FileHandle]:
    """Parse every header of ``path`` and validate that the data of each HDU are present.

    Returns the astropy HDU list (image data not read) and an open handle for lazy reads.
    """
    handed = getattr(_HANDED, "value", None)
    if handed is not None and handed[0] == path:
        _HANDED.value = None
        return handed[1]
    if not os.path.exists(path):
        raise DataModelError(f"{path} does not exist")
    if os.path.isdir(path):
        raise DataModelError(f"{path} is a directory, not a FITS file")
    size = os.path.getsize(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", category=fits.verify.VerifyWarning)
            warnings.filterwarnings("error", message=".*truncated.*")
            hdul = fits.open(path, memmap=False, lazy_load_hdus=False, do_not_scale_image_data=True)
    except DataModelError:
        raise
    except Exception as exc:
        raise DataModelError(f"{path} is not a readable FITS file: {exc}") from exc
    try:
        for index, hdu in enumerate(hdul):
            info = hdu.fileinfo()
            needed = info["datLoc"] + _data_nbytes(hdu) if info else 0
            if needed > size:
                raise DataModelError(
                    f"{path} is truncated: HDU {index} ({hdu.name}) needs {needed} bytes, "
                    f"file has {size}"
                )
    except DataModelError:
        hdul.close()
        raise
    return hdul, FileHandle(path)


def _data_nbytes(hdu: fits.hdu.base._BaseHDU) -> int:
    header = hdu.header
    naxis = header.get("NAXIS", 0)
    if not naxis:
        return 0
    count = 1
    for i in range(1, naxis + 1):
        count *= header.get(f"NAXIS{i}", 0)
    pcount = header.get("PCOUNT", 0)
    gcount = header.get("GCOUNT", 1)
    return abs(header.get("BITPIX", 8)) // 8 * gcount * (pcount + count)


def image_source(hdu: fits.ImageHDU, handle: FileHandle) -> ImageSource | None:
    """Describe the on-disk data of an image HDU (None when it has no data)."""
    header = hdu.header
    naxis = header.get("NAXIS", 0)
    if naxis == 0:
        return None
    shape = tuple(int(header[f"NAXIS{i}"]) for i in range(naxis, 0, -1))
    bitpix = header["BITPIX"]
    disk = {8: "u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}.get(bitpix)
    if disk is None:
        raise DataModelError(f"{handle.path}: extension {hdu.name} has invalid BITPIX {bitpix}")
    return ImageSource(
        handle=handle,
        offset=hdu.fileinfo()["datLoc"],
        shape=shape,
        disk_dtype=np.dtype(disk),
        bscale=float(header.get("BSCALE", 1)),
        bzero=float(header.get("BZERO", 0)),
        extname=hdu.name,
    )


def physical_dtype(source: ImageSource) -> np.dtype:
    """The dtype of the physical (scaled) values of an image source, as astropy reports it."""
    disk = source.disk_dtype.newbyteorder("=")
    size = disk.itemsize
    if disk.kind == "f":
        return disk
    if source.bscale == 1 and source.bzero == 0:
        return disk
    if source.bscale == 1 and source.bzero == 1 << (8 * size - 1):
        return np.dtype(f"u{size}")
    if source.bscale == 1 and source.bzero == int(source.bzero):
        return np.dtype("i8")
    return np.dtype("f8" if size > 2 else "f4")


def table_hdu(data: np.ndarray, name: str, header: fits.Header | None = None) -> fits.BinTableHDU:
    """A binary-table HDU holding a structured array.

    Built empty and then given its data: passing data to the constructor makes astropy import
    ``astropy.table`` (and through it asdf and its plugins, about 0.5 s) only to check whether
    the data are an astropy Table. The bytes written are the same.
    """
    hdu = fits.BinTableHDU(header=header, name=name)
    # what the constructor does with a structured array (converts unicode columns, ...)
    hdu.data = data if isinstance(data, fits.FITS_rec) else fits.FITS_rec.from_columns(data)
    return hdu


def write_atomic(hdul: fits.HDUList, path: str, *, fsync: bool = False) -> None:
    """Write ``hdul`` to ``path`` via a temporary file in the same directory and a rename."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise DataModelError(f"cannot save {path}: directory {directory} does not exist")
    with atomic_path(path) as tmp, open(tmp, "wb") as stream:
        # DATASUM/CHECKSUM: later damage is detectable. Big images are converted and written
        # on worker threads; the rest (or everything, when there is no big image) by astropy.
        if not write_hdulist(hdul, stream.fileno()):
            hdul.writeto(stream, checksum=True)
            stream.flush()
        if fsync:
            os.fsync(stream.fileno())
