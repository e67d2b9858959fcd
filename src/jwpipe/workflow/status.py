"""What state a workflow's units are in, and what a run would redo and why.

Each unit is one of:

* ``done``: its outputs exist and were made with the unit's current parameters and references;
* ``stale``: its outputs exist but its parameters or references changed since (or an upstream
  unit will rerun);
* ``damaged``: an output's content no longer matches the fingerprint ``run-step`` recorded
  (truncated, edited or overwritten); the reason gives the command that rebuilds it;
* ``failed``: the last job failed (its log ends with an error) and there is no output;
* ``pending``: no output yet.

The comparison uses ``state/<step>/<key>.json``, which ``run-step`` writes after a successful
job (a declared output of the job's rule, so Snakemake reruns a unit whose record is missing),
against the unit's current content in ``units/<step>/<key>.json`` (at stage granularity, in its
stage job's ``units/<stage>/<key>.json``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["UnitState", "read_states"]


@dataclass
class UnitState:
    step: str
    key: str
    status: str
    reasons: list[str] = field(default_factory=list)


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for k, v in tree.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: tree}


def _reference_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``gain: a.fits -> b.fits (context jwst_0001.pmap -> jwst_0002.pmap)`` per changed type."""
    old = old if isinstance(old, dict) else {}
    new = new if isinstance(new, dict) else {}
    a, b = old.get("files") or {}, new.get("files") or {}
    contexts = ""
    if old.get("context") != new.get("context"):
        contexts = f" (context {old.get('context')} -> {new.get('context')})"
    reasons = []
    for reftype in sorted(set(a) | set(b)):
        before, after = a.get(reftype, "<unset>"), b.get(reftype, "<unset>")
        if before != after:
            reasons.append(f"{reftype}: {os.path.basename(before)} -> "
                           f"{os.path.basename(after)}{contexts}")
        elif (old.get("checks") or {}).get(reftype) != (new.get("checks") or {}).get(reftype):
            reasons.append(f"reference {reftype} changed on disk ({after})")
    return reasons


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    reasons = _reference_differences(old.get("references", {}), new.get("references", {}))
    a, b = _flatten(old.get("parameters", {})), _flatten(new.get("parameters", {}))
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            reasons.append(f"parameter {key}: {a.get(key, '<unset>')!r} -> "
                           f"{b.get(key, '<unset>')!r}")
    return sorted(set(reasons), key=reasons.index)


def _load(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-4000:]
    except OSError:
        return ""


def _failure(work: Path, step: str, key: str) -> str | None:
    """Where the unit's last failure is described: its own log, or its SLURM job log."""
    log = work / "logs" / step / f"{key}.log"
    tail = _tail(log)
    import re

    killed = re.findall(r"error: killed by signal (\d+)", tail)
    if killed:
        return f"killed by signal {killed[-1]}: see logs/{step}/{key}.log"
    if "error:" in tail or "Traceback" in tail:
        return f"see logs/{step}/{key}.log"
    from jwpipe.workflow.retry import RETRY_SIGNS, slurm_logs

    slurm = slurm_logs(step, key, str(work))
    if slurm:
        text = _tail(Path(slurm[-1]))
        where = os.path.relpath(slurm[-1], work)
        for what, sign in (("memory", RETRY_SIGNS["mem_mb"]), ("time", RETRY_SIGNS["runtime"])):
            if sign.search(text):
                return f"killed by the scheduler ({what} limit): see {where}"
        if "error" in text.lower():
            return f"see {where}"
    return None


def read_states(workdir: str | Path) -> list[UnitState]:
    """The state of every unit, in plan order, with reasons for non-done units."""
    work = Path(workdir)
    plan = _load(work / "plan.json")
    if plan is None:
        from jwpipe.errors import WorkflowError

        raise WorkflowError(f"{work} is not a jwpipe workflow directory (no plan.json)")
    from jwpipe.workflow.chain import unit_reader

    read_unit = unit_reader(work, plan)
    producer: dict[str, tuple[str, str]] = {}
    for step in plan["steps"]:
        for key, unit in plan["units"].get(step["name"], {}).items():
            for out in unit["outputs"]:
                producer[out] = (step["name"], key)
    states: dict[tuple[str, str], UnitState] = {}
    for step in plan["steps"]:
        name = step["name"]
        for key, unit in plan["units"].get(name, {}).items():
            current = read_unit(name, key) or {}
            made = _load(work / "state" / name / f"{key}.json")
            outputs_exist = all((work / o).exists() for o in unit["outputs"])
            st = UnitState(name, key, "done")
            if not outputs_exist:
                failure = _failure(work, name, key)
                if failure:
                    st.status, st.reasons = "failed", [failure]
                else:
                    st.status, st.reasons = "pending", ["output missing"]
            elif made is None:
                st.status, st.reasons = "stale", ["no record of how the output was made"]
            else:
                diffs = _differences(made, current)
                if diffs:
                    st.status, st.reasons = "stale", diffs
                from jwpipe.workflow.integrity import unit_damage

                damage = unit_damage(work, name, key, unit["outputs"], full=False)
                if damage:
                    st.status = "damaged"
                    st.reasons = [f"{d.path}: {d.reason}; rebuild: {d.command}"
                                  for d in damage] + st.reasons
            for inp in unit["inputs"]:
                up = producer.get(inp)
                if up and states[up].status != "done" and st.status in ("done", "stale",
                                                                        "damaged"):
                    st.status = "stale" if st.status == "done" else st.status
                    st.reasons.append(f"upstream {up[0]} ({up[1]}) will rerun")
            states[(name, key)] = st
    return list(states.values())
