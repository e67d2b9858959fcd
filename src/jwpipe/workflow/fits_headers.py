"""What the planner reads from an exposure: a few primary keywords and the SCI array's size.

``astropy.io.fits.open`` parses every card of every header it passes (~4 ms per JWST exposure,
the largest planning cost for thousands of exposures). This reader walks the 2880-byte header
blocks, parses only the wanted cards (with astropy's own :class:`~astropy.io.fits.Card`, so
values and types are astropy's) and skips data units by their declared size. Anything it does
not handle plainly (a long-string ``CONTINUE`` value, a compressed or table ``SCI``, a damaged
header) is answered by astropy instead, with astropy's checks and messages.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any, BinaryIO

__all__ = ["read_selection"]

_BLOCK = 2880
#: A fixed- or free-format real without FITS's ``D`` exponent: Python reads it as astropy does.
#: A quoted string without quotes inside, then blanks or a comment.
_PLAIN_STRING = re.compile(rb"^ *'([^']*)' *(/.*)?$")
_PLAIN_FLOAT = re.compile(rb"^[+-]?(\d+\.\d*|\.\d+)([eE][+-]?\d+)?$")
_CARD = 80
_MAX_BLOCKS = 4096  # 11 MB of header: damaged, not a header


class _Unhandled(Exception):
    """The file needs astropy's full reader."""


def _header(fh: BinaryIO) -> list[bytes] | None:
    """The cards of the next header (without END), or None at the end of the file."""
    cards: list[bytes] = []
    for _ in range(_MAX_BLOCKS):
        block = fh.read(_BLOCK)
        if not block:
            if cards:
                raise _Unhandled("header without END")
            return None
        if len(block) != _BLOCK:
            raise _Unhandled("truncated header")
        for at in range(0, _BLOCK, _CARD):
            card = block[at:at + _CARD]
            if card[:8] == b"END     ":
                return cards
            cards.append(card)
    raise _Unhandled("no END card")


def _value(card: bytes) -> Any:
    from astropy.io.fits import Card

    text = card.decode("ascii")
    value = Card.fromstring(text).value
    if isinstance(value, str) and value.endswith("&"):
        raise _Unhandled("long string value")  # continued on CONTINUE cards
    return value


@functools.lru_cache(maxsize=8)
def _padded(wanted: frozenset[str]) -> frozenset[bytes]:
    """The keywords as the 8 bytes that start their cards."""
    return frozenset(k.encode("ascii").ljust(8) for k in wanted if len(k) <= 8 and k.isascii())


def _keywords(cards: list[bytes], wanted: set[str] | frozenset[str]) -> dict[str, Any]:
    """Values of the wanted keywords (the first card of each). Fixed-format integers, logicals
    and plain quoted strings are read directly (as astropy reads them); anything else by
    astropy's :class:`~astropy.io.fits.Card`."""
    out: dict[str, Any] = {}
    names = _padded(frozenset(wanted))
    for card in cards:
        if card[:8] not in names or card[8:10] != b"= ":
            continue
        key = card[:8].decode("ascii").rstrip()
        if key in out:
            continue
        field = card[10:]
        if field[:1] == b"'" or field.lstrip()[:1] == b"'":
            plain = _PLAIN_STRING.match(field)
            if plain:
                text = plain.group(1).decode("ascii").rstrip()
                if not text.endswith("&"):
                    out[key] = text
                    continue
            out[key] = _value(card)
            continue
        value = field.split(b"/", 1)[0].strip()
        if value in (b"T", b"F"):
            out[key] = value == b"T"
        elif value.lstrip(b"+-").isdigit():
            out[key] = int(value)
        elif _PLAIN_FLOAT.match(value):
            out[key] = float(value)
        else:
            out[key] = _value(card)
    return out


_STRUCTURE = frozenset({"BITPIX", "NAXIS", "PCOUNT", "GCOUNT", "XTENSION", "EXTNAME",
                        *(f"NAXIS{i}" for i in range(1, 1000))})


def _structure(cards: list[bytes]) -> dict[str, Any]:
    return _keywords(cards, _STRUCTURE)


def _elements(info: dict[str, Any]) -> int:
    naxis = int(info.get("NAXIS", 0))
    return math.prod(int(info.get(f"NAXIS{i}", 1)) for i in range(1, naxis + 1))


def _data_bytes(info: dict[str, Any], extension: bool) -> int:
    if not info.get("NAXIS"):
        return 0
    nbytes = abs(int(info["BITPIX"])) // 8 * int(info.get("GCOUNT", 1)) * (
        int(info.get("PCOUNT", 0)) + _elements(info))
    if not extension and int(info.get("NAXIS1", 1)) == 0:  # random groups: not JWST
        raise _Unhandled("random groups")
    return -(-nbytes // _BLOCK) * _BLOCK


def _fast(path: str, keywords: frozenset[str]) -> tuple[dict[str, Any], int]:
    with open(path, "rb") as fh:
        cards = _header(fh)
        if not cards or cards[0][:30] != b"SIMPLE  =                    T":
            raise _Unhandled("not a FITS file")
        params = _keywords(cards, keywords)
        primary = _structure(cards)
        sci = None
        fh.seek(_data_bytes(primary, False), 1)
        while sci is None:
            ext = _header(fh)
            if ext is None:
                break
            info = _structure(ext)
            if str(info.get("EXTNAME", "")).strip().upper() == "SCI":
                if str(info.get("XTENSION", "")).strip() != "IMAGE":
                    raise _Unhandled("SCI is not an image extension")
                sci = info
            else:
                fh.seek(_data_bytes(info, True), 1)
    return params, 4 * _elements(sci if sci is not None else primary)


def _astropy(path: str, keywords: frozenset[str]) -> tuple[dict[str, Any], int]:
    from astropy.io import fits

    from jwpipe.errors import WorkflowError

    try:
        with fits.open(path, memmap=True) as hdul:
            primary = hdul[0].header
            params = {k: primary[k] for k in keywords if k in primary}
            hdr = hdul["SCI"].header if "SCI" in hdul else primary
            naxis = int(hdr.get("NAXIS", 0))
            n = math.prod(int(hdr.get(f"NAXIS{i}", 1)) for i in range(1, naxis + 1))
    except (OSError, KeyError, ValueError) as exc:
        raise WorkflowError(f"cannot read the FITS headers of {path}: {exc}") from None
    return params, 4 * n


def read_selection(path: str, keywords: frozenset[str]) -> tuple[dict[str, Any], int]:
    """The given primary keywords that are present, and the in-memory float32 size of the SCI
    array (of the primary array if there is no SCI extension).

    Raises
    ------
    WorkflowError
        The file cannot be read as FITS.
    """
    try:
        return _fast(path, keywords)
    except (_Unhandled, UnicodeDecodeError, KeyError, ValueError, TypeError, OSError):
        return _astropy(path, keywords)
