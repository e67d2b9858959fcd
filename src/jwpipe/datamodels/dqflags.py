"""JWST data-quality flags and helpers to turn bit expressions into boolean masks.

``pixel`` holds the 32 standard pixel-DQ bits (uint32 ``DQ``/``PIXELDQ`` arrays), ``group`` the
subset used by the uint8 ``GROUPDQ`` array. Values follow the JWST reference-file documentation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import numpy as np

__all__ = [
    "BitFlagError",
    "dq_to_boolean_mask",
    "flag_names",
    "group",
    "interpret_bit_flags",
    "pixel",
]

_PIXEL_NAMES = (
    "DO_NOT_USE",
    "SATURATED",
    "JUMP_DET",
    "DROPOUT",
    "OUTLIER",
    "PERSISTENCE",
    "AD_FLOOR",
    "CHARGELOSS",
    "RESERVED",
    "NON_SCIENCE",
    "DEAD",
    "HOT",
    "WARM",
    "LOW_QE",
    "RC",
    "TELEGRAPH",
    "NONLINEAR",
    "BAD_REF_PIXEL",
    "NO_FLAT_FIELD",
    "NO_GAIN_VALUE",
    "NO_LIN_CORR",
    "NO_SAT_CHECK",
    "UNRELIABLE_BIAS",
    "UNRELIABLE_DARK",
    "UNRELIABLE_SLOPE",
    "UNRELIABLE_FLAT",
    "OPEN",
    "ADJ_OPEN",
    "FLUX_ESTIMATED",
    "MSA_FAILED_OPEN",
    "OTHER_BAD_PIXEL",
    "REFERENCE_PIXEL",
)

#: Pixel DQ flags: name -> value (``GOOD`` is 0).
pixel: dict[str, int] = {"GOOD": 0} | {name: 1 << bit for bit, name in enumerate(_PIXEL_NAMES)}

#: Group DQ flags (bits 0-7 only, stored in uint8 GROUPDQ).
group: dict[str, int] = {
    "GOOD": 0,
    "DO_NOT_USE": pixel["DO_NOT_USE"],
    "SATURATED": pixel["SATURATED"],
    "JUMP_DET": pixel["JUMP_DET"],
    "DROPOUT": pixel["DROPOUT"],
    "PERSISTENCE": pixel["PERSISTENCE"],
    "AD_FLOOR": pixel["AD_FLOOR"],
    "CHARGELOSS": pixel["CHARGELOSS"],
}

#: Human-readable descriptions, used when writing a ``DQ_DEF`` table.
descriptions: dict[str, str] = {
    "DO_NOT_USE": "Bad pixel. Do not use.",
    "SATURATED": "Pixel saturated during exposure",
    "JUMP_DET": "Jump detected during exposure",
    "DROPOUT": "Data lost in transmission",
    "OUTLIER": "Flagged by outlier detection",
    "PERSISTENCE": "High persistence",
    "AD_FLOOR": "Below A/D floor",
    "CHARGELOSS": "Charge migration",
    "RESERVED": "Reserved",
    "NON_SCIENCE": "Pixel not on science portion of detector",
    "DEAD": "Dead pixel",
    "HOT": "Hot pixel",
    "WARM": "Warm pixel",
    "LOW_QE": "Low quantum efficiency",
    "RC": "RC pixel",
    "TELEGRAPH": "Telegraph pixel",
    "NONLINEAR": "Pixel highly nonlinear",
    "BAD_REF_PIXEL": "Reference pixel cannot be used",
    "NO_FLAT_FIELD": "Flat field cannot be measured",
    "NO_GAIN_VALUE": "Gain cannot be measured",
    "NO_LIN_CORR": "Linearity correction not available",
    "NO_SAT_CHECK": "Saturation check not available",
    "UNRELIABLE_BIAS": "Bias variance large",
    "UNRELIABLE_DARK": "Dark variance large",
    "UNRELIABLE_SLOPE": "Slope variance large (i.e., noisy pixel)",
    "UNRELIABLE_FLAT": "Flat variance large",
    "OPEN": "Open pixel (counts move to adjacent pixels)",
    "ADJ_OPEN": "Adjacent to open pixel",
    "FLUX_ESTIMATED": "Pixel flux estimated due to missing/bad data",
    "MSA_FAILED_OPEN": "Pixel sees light from failed-open shutter",
    "OTHER_BAD_PIXEL": "A catch-all flag",
    "REFERENCE_PIXEL": "Pixel is a reference pixel",
}

_ALL_BITS = 0xFFFFFFFF
_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+")


class BitFlagError(ValueError):
    """A bit-flag expression cannot be parsed (unknown name, not a power of two, bad syntax)."""


def _token_value(token: str, flags: Mapping[str, int]) -> int:
    if token.isdigit():
        value = int(token)
        if value != 0 and value & (value - 1):
            raise BitFlagError(f"bit flag {token} is not a power of two")
        if value > _ALL_BITS:
            raise BitFlagError(f"bit flag {token} does not fit in 32 bits")
        return value
    try:
        return int(flags[token.upper()])
    except KeyError:
        raise BitFlagError(f"unknown DQ flag name {token!r}") from None


def interpret_bit_flags(
    bit_flags: int | str | Iterable[int | str] | None,
    flag_name_map: Mapping[str, int] | None = None,
) -> int | None:
    """Turn a bit-flag specification into one integer of "good" bits.

    Parameters
    ----------
    bit_flags : int, str, iterable of int/str, or None
        ``None`` means "no flags" and is returned as ``None``. An integer is returned unchanged.
        A string is a ``+``/``,``/``|``-separated list of flag names or powers of two, optionally
        wrapped in parentheses; a leading ``~`` inverts the resulting bit set
        (``"~DO_NOT_USE+NON_SCIENCE"`` = every bit except those two). An iterable is combined
        with bitwise or.
    flag_name_map : mapping, optional
        Name -> value table; defaults to :data:`pixel`.

    Returns
    -------
    int or None
        The combined 32-bit value of the bits to treat as good (ignorable).

    Raises
    ------
    BitFlagError
        If a name is unknown, a number is not a power of two, or the syntax is wrong.
    """
    flags = pixel if flag_name_map is None else flag_name_map
    if bit_flags is None:
        return None
    if isinstance(bit_flags, bool):
        raise BitFlagError("bit flags must be an int, a string or a list, not a bool")
    if isinstance(bit_flags, int | np.integer):
        value = int(bit_flags)
        if value < 0:
            raise BitFlagError(f"bit flags {value} must be non-negative")
        return value
    if isinstance(bit_flags, str):
        text = bit_flags.strip()
        if text.upper() in ("", "NONE", "INDEF"):
            return None
        invert = text.startswith("~")
        if invert:
            text = text[1:].strip()
        if text.startswith("(") and text.endswith(")"):
            text = text[1:-1].strip()
        if not text:
            raise BitFlagError(f"empty bit flag expression {bit_flags!r}")
        parts = re.split(r"\s*[+,|]\s*", text)
        value = 0
        for part in parts:
            if not _TOKEN.fullmatch(part):
                raise BitFlagError(f"cannot parse {part!r} in bit flag expression {bit_flags!r}")
            value |= _token_value(part, flags)
        return (~value & _ALL_BITS) if invert else value
    value = 0
    for item in bit_flags:
        if isinstance(item, str):
            if not _TOKEN.fullmatch(item.strip()):
                raise BitFlagError(f"cannot parse {item!r} as a bit flag")
            value |= _token_value(item.strip(), flags)
        else:
            value |= _token_value(str(int(item)), flags)
    return value


def dq_to_boolean_mask(
    dq: np.ndarray,
    bad_bits: int | str | Iterable[int | str] | None = "DO_NOT_USE",
    *,
    good_bits: int | str | Iterable[int | str] | None = None,
    flag_name_map: Mapping[str, int] | None = None,
) -> np.ndarray:
    """Boolean mask that is True where a pixel must be treated as bad.

    Parameters
    ----------
    dq : numpy.ndarray
        Integer DQ array (any shape).
    bad_bits : int, str or iterable, optional
        Bits that make a pixel bad (``"DO_NOT_USE+SATURATED"``). ``None`` means no bit is bad.
        Ignored when ``good_bits`` is given.
    good_bits : int, str or iterable, optional
        Astropy-style "good bits" (bits to ignore); every other bit makes a pixel bad. A string
        such as ``"~DO_NOT_USE+NON_SCIENCE"`` therefore means: bad only where DO_NOT_USE or
        NON_SCIENCE is set.
    flag_name_map : mapping, optional
        Name -> value table; defaults to :data:`pixel`.

    Returns
    -------
    numpy.ndarray
        Boolean array of ``dq.shape``.
    """
    dq = np.asarray(dq)
    if dq.dtype.kind not in "iu":
        raise BitFlagError(f"DQ array must be of integer type, got {dq.dtype}")
    if good_bits is not None:
        good = interpret_bit_flags(good_bits, flag_name_map)
        bad = _ALL_BITS & ~good
    else:
        bad = interpret_bit_flags(bad_bits, flag_name_map) or 0
    if bad == 0:
        return np.zeros(dq.shape, dtype=bool)
    if dq.dtype.itemsize < 4:
        bad &= (1 << (8 * dq.dtype.itemsize)) - 1
    return (dq & np.asarray(bad).astype(dq.dtype)) != 0


def flag_names(value: int, flag_name_map: Mapping[str, int] | None = None) -> list[str]:
    """Names of the flags set in ``value``, lowest bit first (``[]`` for 0).

    Parameters
    ----------
    value : int
        A DQ value.
    flag_name_map : mapping, optional
        Name -> value table; defaults to :data:`pixel`.

    Returns
    -------
    list of str
        Flag names; bits without a name are reported as ``"BIT<n>"``.
    """
    flags = pixel if flag_name_map is None else flag_name_map
    by_value = {v: k for k, v in flags.items() if v}
    value = int(value)
    if value < 0:
        raise BitFlagError(f"DQ value {value} must be non-negative")
    names = []
    bit = 0
    while value >> bit:
        if (value >> bit) & 1:
            names.append(by_value.get(1 << bit, f"BIT{bit}"))
        bit += 1
    return names
