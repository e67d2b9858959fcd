"""Which datasets CRDS must give the same references: one selection per class, not per dataset.

``crds``'s own selection (``hv_best_references``) conditions the header, reduces it to the
keys the context's mappings read (``minimize_header``: every ``parkey`` of the instrument's
rmaps, extra keys, the instrument) and selects from that minimized header only. So two datasets
with equal minimized headers get equal answers, by construction.

A survey's exposures differ in their observation date and time (``META.OBSERVATION.DATE`` and
``.TIME``), which are ``UseAfter`` parameters: the selection is then a step function of the
date, constant between consecutive ``USEAFTER`` dates of the instrument's rmaps. Where that is
certain, the date and time in the key are replaced by the interval between those dates, so a
survey of one detector/filter/readout configuration is selected once per interval. It is
certain when, for the instrument, every rmap uses only ``Match`` and ``UseAfter`` selectors, no
rmap has a header hook (``precondition_header``/``fallback_header``), the date keys are used by
no ``Match`` and named by no relevance or omit expression, the dates have the form
``YYYY-MM-DD HH:MM:SS[.f]`` and the dataset's date is not within a second of a ``USEAFTER``
date. Anything else keeps the exact minimized header as the key (still one selection per
distinct header).
"""

from __future__ import annotations

import bisect
import re
from datetime import datetime, timedelta
from typing import Any

__all__ = ["SelectionClasses"]

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)?$")
#: Datasets this close to a USEAFTER date keep their exact date in the key.
_MARGIN = timedelta(seconds=1)


def _when(text: str) -> datetime | None:
    if not _DATE.match(text):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _useafter_dates(selector: Any, out: set[str]) -> bool:
    """Collect the USEAFTER dates of a selector tree; False if it holds another selector kind."""
    from crds.core.selectors import MatchSelector, Selector, UseAfterSelector

    if type(selector) is UseAfterSelector:
        out.update(str(k) for k in selector.keys())
        return all(not isinstance(c, Selector) for c in selector.choices())
    if type(selector) is MatchSelector:
        return all(_useafter_dates(c, out) for c in selector.choices())
    return not isinstance(selector, Selector)


class _DateRule:
    """The USEAFTER dates of one instrument, per tuple of date keys."""

    def __init__(self, keys: tuple[str, ...], dates: list[datetime]) -> None:
        self.keys = keys
        self.dates = sorted(dates)

    def interval(self, header: dict[str, Any]) -> int | None:
        when = _when(" ".join(str(header.get(k, "")) for k in self.keys))
        if when is None:
            return None
        at = bisect.bisect_right(self.dates, when)
        near = [self.dates[i] for i in (at - 1, at) if 0 <= i < len(self.dates)]
        if any(abs(when - d) < _MARGIN for d in near):
            return None
        return at


def _date_rules(imap: Any) -> list[_DateRule]:
    """The instrument's bucketable date keys with their USEAFTER dates ([] if none is)."""
    from crds.core.rmap import ReferenceMapping

    rmaps = [m for m in imap.selections.normal_values() if isinstance(m, ReferenceMapping)]
    dates: dict[tuple[str, ...], set[str]] = {}
    matched: set[str] = set()
    named = ""
    for rmap in rmaps:
        classes = tuple(rmap.header.get("classes", ()))
        parkey = tuple(rmap.parkey)
        if any(c not in ("Match", "UseAfter") for c in classes) or len(classes) != len(parkey):
            return []
        for hook in ("precondition_header", "fallback_header"):
            if rmap.get_hook(hook, None) is not None:
                return []
        found: set[str] = set()
        if not _useafter_dates(rmap.selector, found):
            return []
        for cls, keys in zip(classes, parkey, strict=True):
            keys = tuple(keys) if isinstance(keys, tuple) else (keys,)
            if cls == "UseAfter":
                dates.setdefault(tuple(k.upper() for k in keys), set()).update(found)
            else:
                matched.update(k.upper() for k in keys)
        matched.update(str(k).upper() for k in rmap.get_extra_parkeys())
        named += " ".join(str(v) for k, v in rmap.header.items() if k != "parkey").upper()
    rules = []
    for keys, texts in dates.items():
        if any(k in matched or k in named for k in keys):
            continue
        parsed = [_when(t) for t in texts]
        if any(p is None for p in parsed):
            continue
        rules.append(_DateRule(keys, parsed))  # type: ignore[arg-type]
    keys_of = [set(r.keys) for r in rules]
    # a key in two different date tuples would be bucketed twice: keep those exact
    return [r for r, ks in zip(rules, keys_of, strict=True)
            if not any(ks & o for o in keys_of if o is not ks)]


class SelectionClasses:
    """Keys under which CRDS's selections are equal, for one context (see the module text).

    Parameters
    ----------
    client : module
        ``crds.core.heavy_client``, configured for the cache.
    context : str
        The ``.pmap`` name.
    """

    def __init__(self, client: Any, context: str) -> None:
        from crds.core import utils

        self._condition = utils.condition_header
        self._pmap = client.get_symbolic_mapping(context, cached=True)
        self._rules: dict[str, list[_DateRule]] = {}

    def key(self, header: dict[str, Any]) -> tuple:
        """The class of ``header``: equal keys get equal selections."""
        minimized = self._pmap.minimize_header(self._condition(header))
        minimized = {str(k).upper(): v for k, v in minimized.items()}
        instrument = str(self._pmap.get_instrument(minimized)).lower()
        if instrument not in self._rules:
            self._rules[instrument] = _date_rules(self._pmap.get_imap(instrument))
        for rule in self._rules[instrument]:
            interval = rule.interval(minimized)
            if interval is not None:
                for k in rule.keys:
                    minimized.pop(k, None)
                minimized[" ".join(rule.keys)] = ("USEAFTER interval", interval)
        return tuple(sorted((k, repr(v)) for k, v in minimized.items()))
