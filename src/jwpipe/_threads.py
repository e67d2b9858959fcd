"""Worker threads for array work split into fixed chunks (numpy releases the GIL in its loops).

The number of threads comes from an explicit argument, else ``$JWPIPE_THREADS``, else the CPUs
this process may run on. Chunks are fixed before any work starts, so the results of a function
that writes only to its own chunk do not depend on the number of threads.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from jwpipe.errors import ValidationError

__all__ = ["THREADS_ENV", "map_chunks", "thread_count"]

T = TypeVar("T")
C = TypeVar("C")

#: Environment variable that sets the number of worker threads.
THREADS_ENV = "JWPIPE_THREADS"


def thread_count(threads: int | None = None) -> int:
    """Number of worker threads to use.

    Parameters
    ----------
    threads : int, optional
        Explicit count; if None, ``$JWPIPE_THREADS``, else the number of CPUs this process may
        run on (``os.sched_getaffinity``).

    Returns
    -------
    int
        At least 1.

    Raises
    ------
    ValidationError
        If the explicit value or the environment variable is not a positive integer.
    """
    if threads is None:
        raw = os.environ.get(THREADS_ENV, "").strip()
        if not raw:
            try:
                return max(1, len(os.sched_getaffinity(0)))
            except AttributeError:  # platforms without affinity masks
                return max(1, os.cpu_count() or 1)
        try:
            threads = int(raw)
        except ValueError:
            raise ValidationError(f"{THREADS_ENV}={raw!r} is not an integer") from None
        where = THREADS_ENV
    else:
        where = "threads"
    if threads < 1:
        raise ValidationError(f"{where} must be >= 1, got {threads}")
    return int(threads)


def map_chunks(func: Callable[[C], T], chunks: Iterable[C],
               threads: int | None = None) -> list[T]:
    """``[func(c) for c in chunks]``, run on a pool of threads, results in chunk order.

    The chunks are fixed before any work starts and each is processed by the same code
    whatever the thread count, so results do not depend on the number of threads as long as
    ``func`` writes only to its own rows (numpy releases the GIL in its array loops, which is
    where the time goes).
    """
    chunks = list(chunks)
    n = min(thread_count(threads), len(chunks))
    if n <= 1:
        return [func(c) for c in chunks]
    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="jwpipe") as pool:
        return list(pool.map(func, chunks))
