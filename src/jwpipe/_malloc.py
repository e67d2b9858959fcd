"""Allocator settings for processes that churn through large numpy temporaries.

glibc's malloc returns freed memory at the top of the heap to the system and moves its mmap
threshold as blocks are freed, so the row-chunk temporaries of the Detector1 algorithms are
handed back and faulted in again thousands of times per exposure; on the 2-vCPU VM this was
measured at 75-100 k minor page faults and 0.8-1.1 s of system time for one full-frame
Detector1 run. With the settings below the same run takes about 30 k faults and 0.3 s: freed
memory below 1 GiB stays in the process for reuse, the heap grows in 256 MiB steps (address
space only; untouched pages are not resident) and blocks from 32 MiB up are mapped directly (and
numpy asks for huge pages for them). The peak resident set size is unchanged, since retained
memory is reused before the heap grows.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

__all__ = ["tune_allocator"]

_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
#: Set to 0 to leave the allocator alone.
ENV = "JWPIPE_TUNE_MALLOC"
_DONE: list[bool] = []


def tune_allocator() -> bool:
    """Apply the settings once per process (glibc only); True if they are in effect."""
    if _DONE:
        return _DONE[0]
    ok = False
    if sys.platform.startswith("linux") and os.environ.get(ENV, "1") != "0":
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):  # not glibc (e.g. musl)
            mallopt = None
        if mallopt is not None:
            mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
            ok = all(mallopt(param, value) == 1 for param, value in (
                (_M_TRIM_THRESHOLD, 1 << 30), (_M_TOP_PAD, 256 << 20),
                (_M_MMAP_THRESHOLD, 32 << 20)))
    _DONE.append(ok)
    return ok
