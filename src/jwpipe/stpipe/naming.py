"""Output file names: the suffix scheme.

``<input root>[_<component>...]_<suffix>.<ext>`` where the root is the input's base name with at
most one known suffix removed (``x_uncal.fits`` -> ``x``; ``x_uncal_dq_init.fits`` -> ``x_uncal``),
components are e.g. an index when a step writes several products, and the suffix is the step's
alias (``saturation``) or a product suffix (``rate``).
"""

from __future__ import annotations

import os
import re
from functools import lru_cache

from jwpipe.stpipe.registry import known_suffixes

__all__ = ["build_output_name", "remove_suffix"]


@lru_cache(maxsize=8)
def _suffix_regex(suffixes: frozenset[str]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(s) for s in sorted(suffixes, key=len, reverse=True))
    return re.compile(rf"^(?P<root>.+?)(?:(?P<sep>[_-])(?:{alternatives}))?$")


def remove_suffix(name: str) -> tuple[str, str]:
    """Remove one trailing known suffix from a file stem.

    Returns
    -------
    root, separator : str
        The stem without the suffix, and the separator that preceded it (``_`` if none).
    """
    match = _suffix_regex(known_suffixes()).match(name)
    if match is None:  # only for an empty name
        return name, "_"
    return match.group("root"), match.group("sep") or "_"


def build_output_name(
    basepath: str,
    *,
    suffix: str | bool | None,
    ext: str | None,
    components: dict[str, object] | None = None,
) -> str:
    """Build an output file *name* (no directory) from a base path.

    Parameters
    ----------
    basepath : str
        Input or requested output path; only its base name is used.
    suffix : str, False or None
        New suffix; ``False`` keeps the stem as is (no suffix replacement).
    ext : str or None
        Extension without or with leading dot; None keeps the base path's extension.
    components : dict
        Extra name components, each added as ``_<value>`` in order (None values skipped).
    """
    base = os.path.basename(os.fspath(basepath))
    stem, base_ext = os.path.splitext(base)
    ext = (ext if ext is not None else base_ext).lstrip(".")
    parts = "".join(f"_{v}" for v in (components or {}).values() if v is not None)
    if suffix is False or suffix is None:
        name = f"{stem}{parts}"
    else:
        root, sep = remove_suffix(stem)
        name = f"{root}{parts}{sep}{suffix}"
    return f"{name}.{ext}" if ext else name
