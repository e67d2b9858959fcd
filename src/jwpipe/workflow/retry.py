"""Resources of a retried job: more memory only after running out of memory.

Snakemake passes the attempt number to resource functions. Multiplying every request by it
(the usual recipe) also inflates retries of jobs that failed for other reasons (a wrong
partition, a bad input), which then queue longer for nothing. Here a unit's planned ``mem_mb``
is doubled once per earlier attempt whose logs show a memory kill (SLURM's messages, or a
``MemoryError`` in the step's own log), and its ``runtime`` once per time-limit kill; any other
failure is retried with the same request. Imported by generated Snakefiles; runs in the
Snakemake controller, from the workflow directory.
"""

from __future__ import annotations

import glob
import os
import re

__all__ = ["RETRY_SIGNS", "retry_resource", "slurm_logs"]

RETRY_SIGNS = {
    "mem_mb": re.compile(r"exceeded (job |step )?memory limit|oom[-_ ]kill|out[-_ ]of[-_ ]memory"
                         r"|MemoryError|Unable to allocate", re.IGNORECASE),
    "runtime": re.compile(r"DUE TO TIME LIMIT"),
}
#: Where jwpipe's SLURM profiles (and the plugin's default) put job logs.
SLURM_LOG_DIRS = ("logs/slurm", ".snakemake/slurm_logs")


def _read(path: str) -> str:
    try:
        with open(path, errors="replace") as fh:
            return fh.read()
    except OSError:
        return ""


def slurm_logs(step: str, key: str, workdir: str = ".") -> list[str]:
    """SLURM logs of the unit's earlier jobs (its own or its group's), oldest first."""
    mine = re.compile(rf"={re.escape(key)}(?![\w.-])")
    found: list[str] = []
    for top in SLURM_LOG_DIRS:
        top = os.path.join(workdir, top)
        found += glob.glob(os.path.join(top, f"rule_{step}", key, "*.log"))
        found += [p for p in glob.glob(os.path.join(top, "group_*", "**", "*.log"),
                                       recursive=True) if mine.search(_read(p))]
    return sorted(found, key=os.path.getmtime)


def retry_resource(base: int, step: str, key: str, name: str, attempt: int) -> int:
    """The planned ``base`` value of resource ``name``, doubled per earlier attempt killed for it.

    Parameters
    ----------
    base : int
        The planned request (``mem_mb`` in MB or ``runtime`` in minutes).
    step, key : str
        The unit (rule name and wildcard value).
    name : str
        ``"mem_mb"`` or ``"runtime"``.
    attempt : int
        Snakemake's attempt number (1 for the first try).
    """
    if attempt <= 1:
        return base
    sign = RETRY_SIGNS[name]
    earlier = slurm_logs(step, key)[-(attempt - 1):]
    hits = sum(bool(sign.search(_read(p))) for p in earlier)
    own_log = _read(f"logs/{step}/{key}.log")
    if sign.search(own_log) and not (earlier and sign.search(_read(earlier[-1]))):
        hits += 1  # the step's own log (a MemoryError, or a local run without SLURM logs)
    return base * 2 ** min(hits, attempt - 1)
