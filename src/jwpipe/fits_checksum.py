"""FITS ``DATASUM``/``CHECKSUM`` arithmetic and file verification, without astropy.

The checksum convention (Seaman et al.; FITS standard 4.0, appendix J): ``DATASUM`` is the
ones'-complement sum of the data unit's big-endian 32-bit words, written as a decimal string;
``CHECKSUM`` encodes a value chosen so that the ones'-complement sum of the whole HDU (header
blocks, with the card itself, plus the data) is negative zero (all ones). A file is verified by
walking its 2880-byte blocks: each HDU's header is summed as stored and its data unit read in
chunks and summed with numpy. Workflow jobs verify their raw inputs this way before opening them,
so the check costs neither astropy's import nor a second parse of every card.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

__all__ = ["checksum_encode", "fits_word_sum", "fold", "verify_file"]

_BLOCK = 2880
_CARD = 80
_MASK32 = 0xFFFFFFFF
_READ_BYTES = 16 * _BLOCK * 128  # ~5.9 MB, a multiple of the block (and of 4)
_MAX_HEADER_BLOCKS = 4096


def fold(total: int) -> int:
    """Ones'-complement (end-around carry) reduction of a sum of 32-bit words to 32 bits."""
    while total >> 32:
        total = (total & _MASK32) + (total >> 32)
    return total


def fits_word_sum(data: bytes | bytearray | memoryview | np.ndarray) -> int:
    """Ones'-complement sum of the big-endian 32-bit words of ``data`` (zero-padded to 4 bytes)."""
    raw = (np.ascontiguousarray(data).reshape(-1).view(np.uint8) if isinstance(data, np.ndarray)
           else np.frombuffer(data, dtype=np.uint8))
    extra = raw.size % 4
    total = int(raw[: raw.size - extra].view(">u4").sum(dtype=np.uint64))
    if extra:
        total += int.from_bytes(raw[raw.size - extra:].tobytes() + b"\0" * (4 - extra), "big")
    return fold(total)


_EXCLUDED = frozenset(range(0x3A, 0x41)) | frozenset(range(0x5B, 0x61))


def checksum_encode(value: int) -> str:
    """The 16-character ASCII encoding of a 32-bit value used by the CHECKSUM keyword.

    Each byte is spread over four printable characters (offset ``'0'``) whose sum is the byte;
    pairs are shifted away from the punctuation between the digits and the letters, and the
    16 characters are rotated by one place, as the FITS checksum convention specifies.
    """
    columns: list[list[int]] = []
    for shift in (24, 16, 8, 0):
        byte = (value >> shift) & 0xFF
        quarter, remainder = divmod(byte, 4)
        chars = [quarter + 0x30] * 4
        chars[0] += remainder
        moved = True
        while moved:
            moved = False
            for j in (0, 2):
                if chars[j] in _EXCLUDED or chars[j + 1] in _EXCLUDED:
                    chars[j] += 1
                    chars[j + 1] -= 1
                    moved = True
        columns.append(chars)
    text = [columns[i % 4][i // 4] for i in range(16)]
    return "".join(chr(c) for c in text[-1:] + text[:-1])


class Unreadable(ValueError):
    """The file's block structure cannot be walked (damaged, truncated, not FITS)."""


def _header_blocks(fh: Any, at: int) -> tuple[bytes, list[bytes]] | None:
    """The raw header blocks starting at ``at`` and their cards before END (None at EOF)."""
    raw = bytearray()
    cards: list[bytes] = []
    for _ in range(_MAX_HEADER_BLOCKS):
        block = fh.read(_BLOCK)
        if not block:
            if raw:
                raise Unreadable(f"header at byte {at} has no END card")
            return None
        if len(block) != _BLOCK:
            raise Unreadable(f"truncated header at byte {at}")
        raw += block
        for start in range(0, _BLOCK, _CARD):
            card = block[start:start + _CARD]
            if card[:8] == b"END     ":
                return bytes(raw), cards
            cards.append(card)
    raise Unreadable(f"header at byte {at} has no END card")


def _cards(cards: list[bytes]) -> dict[str, str]:
    """First value field (text before any ``/`` comment, quotes kept) of each keyword."""
    out: dict[str, str] = {}
    for card in cards:
        if card[8:10] != b"= ":
            continue
        key = card[:8].decode("ascii", "replace").rstrip()
        if key in out:
            continue
        field = card[10:].decode("ascii", "replace").strip()
        if field.startswith("'"):
            end = field.find("'", 1)
            while end != -1 and field[end + 1:end + 2] == "'":
                end = field.find("'", end + 2)
            out[key] = field[: end + 1] if end != -1 else field
        else:
            out[key] = field.split("/", 1)[0].strip()
    return out


def _int(cards: dict[str, str], key: str, default: int) -> int:
    text = cards.get(key)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise Unreadable(f"{key} = {text!r} is not an integer") from None


def _data_size(cards: dict[str, str], primary: bool) -> int:
    naxis = _int(cards, "NAXIS", 0)
    if naxis == 0:
        return 0
    dims = [_int(cards, f"NAXIS{i}", 0) for i in range(1, naxis + 1)]
    if primary and dims[0] == 0:  # random groups: the first axis does not count
        dims = dims[1:]
    count = 1
    for n in dims:
        count *= n
    bitpix = _int(cards, "BITPIX", 8)
    if bitpix not in (8, 16, 32, 64, -32, -64):
        raise Unreadable(f"invalid BITPIX {bitpix}")
    return abs(bitpix) // 8 * _int(cards, "GCOUNT", 1) * (_int(cards, "PCOUNT", 0) + count)


def _data_sum(fh: Any, nbytes: int) -> int:
    """Ones'-complement word sum of the next ``nbytes`` of the file (a last partial word is
    zero-filled); the caller has checked that the file holds them."""
    total = 0
    buffer = np.zeros(min(-(-nbytes // 4) * 4, _READ_BYTES), dtype=np.uint8)
    left = nbytes
    while left:
        want = min(left, buffer.size)
        view = memoryview(buffer)[:want]
        done = 0
        while done < want:
            n = fh.readinto(view[done:])
            if not n:
                raise Unreadable("file shrank while it was read")
            done += n
        words = -(-want // 4) * 4
        buffer[want:words] = 0
        total += int(buffer[:words].view(">u4").sum(dtype=np.uint64))
        left -= want
    return fold(total)


def verify_file(path: str | os.PathLike[str]) -> list[str]:
    """Check every HDU of a FITS file against its ``DATASUM`` and ``CHECKSUM`` cards.

    HDUs without the cards pass (nothing was recorded). Returns one message per failed check
    (empty: the file is intact).

    Raises
    ------
    Unreadable
        The file's headers or data units cannot be walked (truncated, damaged, not FITS).
    """
    problems: list[str] = []
    with open(path, "rb", buffering=0) as fh:
        file_size = os.fstat(fh.fileno()).st_size
        index = 0
        while True:
            at = fh.tell()
            found = _header_blocks(fh, at)
            if found is None:
                if index == 0:
                    raise Unreadable("empty file")
                return problems
            raw, cards = found
            if index == 0 and not raw.startswith(b"SIMPLE  ="):
                raise Unreadable("not a FITS file (no SIMPLE card)")
            values = _cards(cards)
            size = _data_size(values, index == 0)
            padded = -(-size // _BLOCK) * _BLOCK
            name = values.get("EXTNAME", "").strip("'").strip() or ("PRIMARY" if index == 0
                                                                     else "")
            label = f"HDU {index}" + (f" ({name})" if name else "")
            left = file_size - fh.tell()
            if size > left:
                raise Unreadable(f"{label} is truncated: its data need {size} bytes, the file "
                                 f"has {left} left")
            span = min(padded, left)  # a missing fill after the last data unit is tolerated
            if "DATASUM" in values or "CHECKSUM" in values:
                datasum = _data_sum(fh, span) if span else 0
                if "DATASUM" in values:
                    recorded = values["DATASUM"].strip("'").strip()
                    if not recorded.isdigit() or int(recorded) != datasum:
                        problems.append(f"{label}: DATASUM verification failed (recorded "
                                        f"{recorded}, data sum to {datasum})")
                if "CHECKSUM" in values and fold(fits_word_sum(raw) + datasum) != _MASK32:
                    problems.append(f"{label}: CHECKSUM verification failed")
            else:
                fh.seek(span, os.SEEK_CUR)
            index += 1
