"""Selector values: normalisation, ``P_`` pattern keywords, wildcards and USEAFTER dates.

A reference file is selected by comparing its *selectors* (header keyword -> allowed values) with
the dataset's parameters (FITS keyword -> value). Everything here is pure string/date handling.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from jwpipe.errors import ReferenceFileError

__all__ = [
    "PATTERN_KEYWORDS",
    "SELECTOR_KEYWORDS",
    "WILDCARDS",
    "match_value",
    "normalize_parameters",
    "normalize_value",
    "observation_time",
    "parse_pattern",
    "parse_useafter",
]

#: Header keywords that restrict which data a reference applies to (CRDS "parkeys").
SELECTOR_KEYWORDS: tuple[str, ...] = (
    "INSTRUME",
    "DETECTOR",
    "CHANNEL",
    "MODULE",
    "EXP_TYPE",
    "READPATT",
    "NOUTPUTS",
    "SUBARRAY",
    "FILTER",
    "PUPIL",
    "BAND",
    "TSOVISIT",
)

#: ``P_`` keywords are truncated to 8 characters in FITS: ``P_READPA`` -> ``READPATT``.
PATTERN_KEYWORDS: dict[str, str] = {("P_" + k)[:8]: k for k in SELECTOR_KEYWORDS}

#: Selector values that match anything (CRDS conventions).
WILDCARDS: frozenset[str] = frozenset({"ANY", "N/A", "GENERIC", "*"})

_BOOL = {True: "T", False: "F"}


def normalize_value(value: Any) -> str:
    """Return the canonical string form of a selector or parameter value.

    Strings are stripped and upper-cased; booleans become ``T``/``F``; integral floats lose
    their ``.0`` so that ``4``, ``4.0`` and ``"4"`` compare equal.
    """
    if isinstance(value, bool):
        return _BOOL[value]
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip().upper()
    if text in ("TRUE", "FALSE"):
        return text[0]
    return text


def normalize_parameters(parameters: Mapping[str, Any]) -> dict[str, str]:
    """Upper-case keys and canonical values; drop None values.

    Parameters
    ----------
    parameters : mapping
        Dataset parameters keyed by FITS keyword (``model.get_crds_parameters()``).

    Returns
    -------
    dict of str to str
    """
    out: dict[str, str] = {}
    for key, value in parameters.items():
        if value is None:
            continue
        out[str(key).strip().upper()] = normalize_value(value)
    return out


def parse_pattern(text: str) -> list[str]:
    """Split a CRDS pattern value ``"NIS | NISRAPID |"`` into ``["NIS", "NISRAPID"]``."""
    values = [normalize_value(part) for part in str(text).split("|")]
    return [v for v in values if v]


def match_value(allowed: Iterable[str], value: str | None, keyword: str) -> int:
    """Score how a dataset value satisfies a selector.

    Parameters
    ----------
    allowed : iterable of str
        Normalised allowed values of the selector.
    value : str or None
        Normalised dataset value, None when the dataset lacks the keyword.
    keyword : str
        The selector keyword (``SUBARRAY`` has the full-frame rule).

    Returns
    -------
    int
        2 for an exact match, 1 for a wildcard match (``ANY``/``N/A``/``GENERIC``, or a FULL
        reference for any subarray, which is cut out of it), 0 for no match.
    """
    allowed = set(allowed)
    if value is not None and value in allowed:
        return 2
    if allowed & WILDCARDS:
        return 1
    if keyword == "SUBARRAY" and "FULL" in allowed and value is not None:
        return 1
    return 0


_DATE_FORMATS = ("%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d")


def _parse_datetime(text: str) -> datetime | None:
    text = text.strip().rstrip("Z")
    # FITS allows fractional seconds of any length; datetime wants at most 6 digits
    text = re.sub(r"(\.\d{6})\d+$", r"\1", text)
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


def parse_useafter(text: Any, source: str) -> datetime:
    """Parse a USEAFTER value (``YYYY-MM-DDThh:mm:ss``; a date alone means midnight).

    Raises
    ------
    ReferenceFileError
        If the value is missing or not a date.
    """
    parsed = _parse_datetime(str(text)) if text not in (None, "") else None
    if parsed is None:
        raise ReferenceFileError(
            f"{source}: USEAFTER {text!r} is not a date of the form YYYY-MM-DDThh:mm:ss"
        )
    return parsed


def observation_time(parameters: Mapping[str, str]) -> datetime | None:
    """The observation start from ``DATE-OBS`` + ``TIME-OBS`` (or ``DATE-BEG``); None if absent.

    Raises
    ------
    ReferenceFileError
        If a date keyword is present but cannot be parsed.
    """
    date = parameters.get("DATE-OBS")
    if date:
        time = parameters.get("TIME-OBS", "00:00:00")
        text = date if "T" in date else f"{date}T{time}"
        parsed = _parse_datetime(text)
        if parsed is None:
            raise ReferenceFileError(
                f"dataset DATE-OBS/TIME-OBS {date!r} {time!r} is not a valid date and time"
            )
        return parsed
    beg = parameters.get("DATE-BEG")
    if beg:
        parsed = _parse_datetime(beg)
        if parsed is None:
            raise ReferenceFileError(f"dataset DATE-BEG {beg!r} is not a valid date and time")
        return parsed
    return None
