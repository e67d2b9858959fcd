"""Ask Snakemake what it will run, and why, so that ``jwpipe plan``/``status`` never disagree.

Snakemake decides reruns by more than parameters: modification times (checked against stored
checksums only for files under ``--max-checksum-file-size``, 1 MB by default), the set of
inputs, the rule code. ``snakemake --summary`` lists every output with Snakemake's own status
(``missing``, ``updated input files``, ``params changed``, ``set of input files changed``,
``rule implementation changed``) and whether it will be updated; this module runs it and maps
the outputs back to units.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["SnakemakeView", "ask_snakemake"]


@dataclass
class SnakemakeView:
    """Snakemake's verdict per unit: ``(step, key) -> reason`` for units it will run."""

    will_run: dict[tuple[str, str], str]
    error: str | None = None
    #: Steps inside a stage job that runs (``--granularity stage``), not declared to
    #: Snakemake: the job reruns them only if their outputs are no longer valid.
    chained: set[tuple[str, str]] = field(default_factory=set)


def _producers(plan: dict) -> dict[str, tuple[str, str]]:
    return {o: (step, key) for step, units in plan.get("units", {}).items()
            for key, unit in units.items() for o in unit.get("outputs", [])}


def ask_snakemake(workdir: str | os.PathLike[str], plan: dict,
                  extra_args: list[str] | None = None) -> SnakemakeView:
    """Run ``snakemake --summary`` in ``workdir`` (no lock taken, nothing run).

    Snakemake's status ``ok`` for an output it will update means an upstream job reruns.
    """
    work = Path(workdir)
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--summary", "--nolock",
                           *(extra_args or [])], cwd=work, capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        return SnakemakeView({}, lines[-1] if lines else f"exit status {proc.returncode}")
    producers = _producers(plan)
    will_run: dict[tuple[str, str], str] = {}
    rows = proc.stdout.splitlines()
    header = next((i for i, r in enumerate(rows) if r.startswith("output_file\t")), None)
    for row in rows[header + 1:] if header is not None else []:
        cols = row.split("\t")
        if len(cols) < 6 or cols[-1] != "update pending":
            continue
        unit = producers.get(cols[0])
        if unit is None:
            continue
        status = cols[-2]
        reason = "an upstream job reruns" if status == "ok" else status
        previous = will_run.get(unit)
        if previous is None or previous == "an upstream job reruns":
            will_run[unit] = reason
    chained: set[tuple[str, str]] = set()
    for group, jobs in (plan.get("chains") or {}).items():
        for key, job in jobs.items():
            units = [(step, key) for step in job["steps"]]
            if any(u in will_run for u in units):
                for u in units:
                    if u not in will_run:
                        will_run[u] = f"stage job {group} {key} reruns"
                        chained.add(u)
    return SnakemakeView(will_run, chained=chained)


def merge_into_states(states: list, view: SnakemakeView) -> None:
    """Add Snakemake's verdict to jwpipe's unit states (in place).

    A unit jwpipe calls ``done`` but Snakemake will run becomes ``stale`` with Snakemake's
    reason; a unit jwpipe calls ``damaged`` that Snakemake will not run says so, since only the
    rebuild command in its reason will redo it.
    """
    if view.error:
        return
    for st in states:
        reason = view.will_run.get((st.step, st.key))
        if reason is not None and (st.step, st.key) in view.chained and st.status == "done":
            continue  # the stage job reuses its valid outputs
        if reason is not None:
            if st.status == "done":
                st.status = "stale"
            st.reasons.append(f"snakemake: {reason}")
        elif st.status == "damaged":
            st.reasons.append("snakemake sees no change and will not rebuild it by itself")
        elif st.status == "stale":
            st.reasons.append("snakemake will not rerun it")
