"""Wall time and peak memory of a block of code (per step, nested steps included).

Linux keeps a process's peak resident set (VmHWM) and lets a process reset it
(``/proc/self/clear_refs`` with ``5``). A step resets it on entry and reads it on exit, so each
step reports its own peak; the enclosing step's peak is the maximum of its children's and its own.
Where that interface is missing, the process-lifetime peak (``getrusage``) is reported instead.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["measure", "peak_rss_mb"]

_STACK: list[float] = []


def _vmhwm_mb() -> float | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """Process-lifetime peak resident set size in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


@contextmanager
def measure() -> Iterator[dict[str, float]]:
    """Measure the enclosed block; the yielded dict is filled on exit.

    Keys: ``wall_time_s``, ``cpu_time_s``, ``peak_rss_mb``.
    """
    stats: dict[str, float] = {}
    before = _vmhwm_mb()
    if before is not None and _STACK:
        _STACK[-1] = max(_STACK[-1], before)  # the parent's peak so far
    resettable = _reset_hwm()
    _STACK.append(0.0)
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        yield stats
    finally:
        stats["wall_time_s"] = time.perf_counter() - t0
        stats["cpu_time_s"] = time.process_time() - c0
        children_peak = _STACK.pop()
        now = _vmhwm_mb() if resettable else None
        peak = max(now or 0.0, children_peak) if resettable else peak_rss_mb()
        stats["peak_rss_mb"] = round(peak, 1)
        if _STACK:
            _STACK[-1] = max(_STACK[-1], peak)
