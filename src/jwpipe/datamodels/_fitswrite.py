"""Writing FITS files with big image extensions converted and checksummed on worker threads.

astropy writes a little-endian image by byte-swapping it in place, writing it and swapping it
back, and computes DATASUM with another swap there and back (an unsigned array is converted
to a signed copy twice): five or six passes over the array on one thread before the data reach
the file. Here each big image extension is cut into fixed chunks; a worker converts a chunk to
big-endian FITS order in a small buffer, adds its 32-bit words to the data sum and writes it at
its offset (``os.pwrite``; numpy and the write release the GIL). Headers, tables, small images
and the primary HDU are still serialized by astropy (checksummed there), so every card is
formatted as astropy formats it; DATASUM and CHECKSUM of the fast extensions follow the FITS
checksum convention (Seaman et al., FITS standard 4.0 appendix J) and astropy verifies them.
"""

from __future__ import annotations

import datetime
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from astropy.io import fits

from jwpipe._threads import map_chunks
from jwpipe.fits_checksum import checksum_encode, fits_word_sum
from jwpipe.fits_checksum import fold as _fold

__all__ = ["checksum_encode", "fits_word_sum", "write_hdulist"]

_BLOCK = 2880
_CHUNK_BYTES = 4 * 1024 * 1024
#: Image extensions smaller than this are left to astropy (nothing to gain).
_MIN_FAST_BYTES = 1024 * 1024
_MASK32 = 0xFFFFFFFF


@dataclass
class _FastImage:
    """An image extension whose data this module writes."""

    hdu: fits.ImageHDU
    words: np.ndarray  # the data as native unsigned integers of the on-disk width
    flip: int  # XOR giving the on-disk value (sign bit of BZERO-offset unsigned data), or 0
    disk: np.dtype  # big-endian on-disk dtype of the words


def _fast_image(hdu: fits.hdu.base._BaseHDU) -> _FastImage | None:
    """Describe ``hdu`` if its data can take the threaded path, else None."""
    if type(hdu) is not fits.ImageHDU:
        return None
    data = hdu.__dict__.get("data")  # never triggers a read from a file
    if (not isinstance(data, np.ndarray) or type(data) is not np.ndarray
            or not data.flags.c_contiguous or data.nbytes < _MIN_FAST_BYTES
            or data.dtype.kind not in "fiu" or data.dtype.itemsize not in (4, 8)
            or not data.dtype.isnative):
        return None
    header = hdu.header
    bits = 8 * data.dtype.itemsize
    if header.get("BITPIX") != (-bits if data.dtype.kind == "f" else bits):
        return None
    if tuple(header.get(f"NAXIS{i}") for i in range(data.ndim, 0, -1)) != data.shape:
        return None
    bscale, bzero = header.get("BSCALE", 1), header.get("BZERO", 0)
    flip = 0
    if data.dtype.kind == "u":
        if bscale != 1 or bzero != 1 << (bits - 1):
            return None
        flip = 1 << (bits - 1)
    elif bscale != 1 or bzero != 0:
        return None
    unsigned = np.dtype(f"u{data.dtype.itemsize}")
    return _FastImage(hdu, data.reshape(-1).view(unsigned), flip, unsigned.newbyteorder(">"))


def _chunks(size: int, itemsize: int) -> Iterator[slice]:
    step = max(1, _CHUNK_BYTES // itemsize)
    for start in range(0, size, step):
        yield slice(start, min(start + step, size))


def _write_data(fd: int, image: _FastImage, offset: int) -> int:
    """Write the image's data at ``offset`` (threaded); return the ones'-complement data sum."""
    words, flip, disk = image.words, image.flip, image.disk
    itemsize = disk.itemsize

    def work(part: slice) -> int:
        native = words[part]
        if flip:
            native = native ^ native.dtype.type(flip)
        # the 32-bit words of a big-endian file, summed in any order: a native 64-bit value
        # holds the same two 32-bit halves
        total = int(native.view(np.uint32).sum(dtype=np.uint64))
        out = native.astype(disk)
        view = memoryview(out).cast("B")
        done, where = 0, offset + part.start * itemsize
        while done < len(view):
            done += os.pwrite(fd, view[done:], where + done)
        return total

    return _fold(sum(map_chunks(work, list(_chunks(words.size, itemsize)))))


def _astropy_segments(hdul: fits.HDUList, keep: list[int]) -> tuple[bytes, list[bytes]]:
    """astropy's bytes (with checksums) of the primary HDU and of the HDUs ``keep``."""
    buffer = io.BytesIO()
    fits.HDUList([hdul[0]] + [hdul[i] for i in keep]).writeto(buffer, checksum=True)
    raw = buffer.getvalue()
    buffer.seek(0)
    with fits.open(buffer, lazy_load_hdus=False) as parsed:
        bounds = [(info["hdrLoc"], info["datLoc"] + info["datSpan"])
                  for info in (hdu.fileinfo() for hdu in parsed)]
    return raw[slice(*bounds[0])], [raw[slice(*b)] for b in bounds[1:]]


def _header_bytes(header: fits.Header, datasum: int, stamp: str) -> bytes:
    """Header bytes with DATASUM and a CHECKSUM making the whole HDU sum to -0."""
    header["CHECKSUM"] = ("0" * 16, f"HDU checksum updated {stamp}")
    header["DATASUM"] = (str(datasum), f"data unit checksum updated {stamp}")
    total = _fold(fits_word_sum(header.tostring().encode("ascii")) + datasum)
    header["CHECKSUM"] = (checksum_encode(~total & _MASK32), f"HDU checksum updated {stamp}")
    return header.tostring().encode("ascii")


def write_hdulist(hdul: fits.HDUList, fd: int) -> bool:
    """Write ``hdul`` (with DATASUM/CHECKSUM) to the empty file open as ``fd``.

    Returns False, having written nothing, when no extension takes the threaded path or none
    is left for astropy (the caller then writes the list with astropy).
    """
    fast = {i: f for i in range(1, len(hdul)) if (f := _fast_image(hdul[i])) is not None}
    keep = [i for i in range(1, len(hdul)) if i not in fast]
    if not fast or not keep:
        return False
    primary, segments = _astropy_segments(hdul, keep)
    by_index = dict(zip(keep, segments, strict=True))
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    position = 0

    def put(data: bytes) -> None:
        nonlocal position
        view = memoryview(data)
        done = 0
        while done < len(view):
            done += os.pwrite(fd, view[done:], position + done)
        position += len(data)

    put(primary)
    for index in range(1, len(hdul)):
        if index in by_index:
            put(by_index[index])
            continue
        image = fast[index]
        header = image.hdu.header.copy()
        # placeholder cards of the final width: the header's length is known before the data
        size = len(_header_bytes(header.copy(), 0, stamp))
        data_start = position + size
        datasum = _write_data(fd, image, data_start)
        head = _header_bytes(header, datasum, stamp)
        if len(head) != size:  # cannot happen: both cards are 80 characters wide
            raise RuntimeError("FITS header length changed while adding its checksum")
        put(head)
        nbytes = image.words.nbytes
        position += nbytes
        pad = -nbytes % _BLOCK
        if pad:
            put(b"\0" * pad)
    return True
