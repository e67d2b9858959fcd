"""Wall time, CPU time and peak memory of a block of code (per step, nested steps included).

Peak memory is sampled: while any measured block is active, a daemon thread reads the process's
resident set size every few milliseconds and raises the peak of every active block (so a
pipeline's peak includes its steps'). Nothing global is reset, so external measurements
(``/usr/bin/time``, a scheduler's accounting, Snakemake's benchmark files) stay correct.
"""

from __future__ import annotations

import os
import resource
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["current_rss_mb", "measure", "peak_rss_mb"]

_PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20 if hasattr(os, "sysconf") else 4096 / 2**20
_INTERVAL_S = 0.005
class _Frame:
    """One measured block (compared by identity, unlike a dict)."""

    __slots__ = ("peak",)

    def __init__(self, peak: float) -> None:
        self.peak = peak


_ACTIVE: list[_Frame] = []
_SAMPLER: list[threading.Thread] = []
_LOCK = threading.Lock()


def current_rss_mb() -> float:
    """Resident set size now, in MiB (0 where /proc is unavailable)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * _PAGE_MB
    except (OSError, ValueError, IndexError):
        return 0.0


def peak_rss_mb() -> float:
    """Process-lifetime peak resident set size in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024.0


def _sample_forever() -> None:
    while True:
        if _ACTIVE:
            rss = current_rss_mb()
            for frame in list(_ACTIVE):
                if rss > frame.peak:
                    frame.peak = rss
        time.sleep(_INTERVAL_S)


def _ensure_sampler() -> None:
    with _LOCK:
        if not _SAMPLER or not _SAMPLER[0].is_alive():
            thread = threading.Thread(target=_sample_forever, name="jwpipe-rss", daemon=True)
            thread.start()
            _SAMPLER[:] = [thread]


@contextmanager
def measure() -> Iterator[dict[str, float]]:
    """Measure the enclosed block; the yielded dict is filled on exit.

    Keys: ``wall_time_s``, ``cpu_time_s``, ``peak_rss_mb``.
    """
    stats: dict[str, float] = {}
    frame = _Frame(current_rss_mb())
    _ACTIVE.append(frame)
    _ensure_sampler()
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        yield stats
    finally:
        stats["wall_time_s"] = time.perf_counter() - t0
        stats["cpu_time_s"] = time.process_time() - c0
        frame.peak = max(frame.peak, current_rss_mb())
        _ACTIVE.remove(frame)
        stats["peak_rss_mb"] = round(frame.peak, 1)
