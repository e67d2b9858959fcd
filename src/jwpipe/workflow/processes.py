"""Local workflow jobs on record: who runs, so that ``jwpipe resume`` can end orphans.

Killing Snakemake alone (SIGKILL of its PID) leaves its local ``run-step`` jobs running; a
resume that starts the same jobs beside them has two writers racing for one output. Every
``run-step`` in a workflow directory therefore records itself in
``.jwpipe/jobs/<step>.<key>.json`` (PID, process start time, host) while it runs, and removes
the record when it ends. ``resume`` ends the recorded processes that are still alive on this
host (checked by PID *and* start time, so a recycled PID is never signalled) together with their
child processes, before it starts anything.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["end_orphans", "job_record", "running_jobs"]


def _start_time(pid: int) -> int | None:
    """The process start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def _records(work: Path) -> Path:
    return work / ".jwpipe" / "jobs"


@contextlib.contextmanager
def job_record(work: Path | None, step: str, key: str) -> Iterator[None]:
    """Record the running job while the block runs (no-op outside a workflow directory)."""
    if work is None:
        yield
        return
    path = _records(work) / f"{step}.{key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"pid": os.getpid(), "start": _start_time(os.getpid()),
              "host": socket.gethostname(), "step": step, "key": key}
    from jwpipe.atomic import write_text_atomic

    write_text_atomic(path, json.dumps(record) + "\n")
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()


def _alive(record: dict[str, Any]) -> bool:
    pid = record.get("pid")
    if not isinstance(pid, int) or record.get("host") != socket.gethostname():
        return False
    return record.get("start") is not None and _start_time(pid) == record["start"]


def running_jobs(work: Path) -> list[dict[str, Any]]:
    """Recorded jobs of this workflow still running on this host."""
    alive = []
    for path in sorted(_records(work).glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and _alive(record):
            alive.append(record)
        elif isinstance(record, dict) and record.get("host") == socket.gethostname():
            with contextlib.suppress(OSError):
                path.unlink()  # the job died without cleaning up (SIGKILL)
    return alive


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(proc.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def end_orphans(work: Path, *, grace: float = 5.0) -> list[dict[str, Any]]:
    """Terminate this workflow's recorded local jobs (and their children); return them.

    SIGTERM first, SIGKILL for whatever is still alive after ``grace`` seconds.
    """
    jobs = running_jobs(work)
    targets = []
    for job in jobs:
        targets += [job["pid"], *_descendants(job["pid"])]
    for pid in targets:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_exists(p) for p in targets):
        time.sleep(0.1)
    for pid in targets:
        if _exists(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
    return jobs


def _exists(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
