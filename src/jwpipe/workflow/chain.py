"""Stage granularity: one job per exposure (or product) and stage, resumable step by step.

``jwpipe make-workflow --granularity stage`` gives every stage one rule (named by the
pipeline's declared ``workflow_group``: ``detector1``, ``image2``, ``image3``) and one job per
exposure (per association product for a product-scope stage) that runs the stage's steps one
after the other in one process: ``jwpipe run-chain --record state/<stage>/<key>.json
units/<stage>/<key>.json``. That stage units file, the job's one unit input, holds the steps'
units themselves, in order (each exactly what ``units/<step>/<key>.json`` holds at step
granularity), so the workflow has one unit file per exposure and stage rather than one per step,
and it changes (rewritten only when its content does) whenever one step's unit does. One input
per stage job instead of one per step, and no ``group:``, keep Snakemake's cost per stage job
that of a plain rule; a cluster profile groups the stage rules by name. Each step still runs
from its own unit through :func:`jwpipe.workflow.runstep.run_unit`, which writes its outputs
atomically and its record ``state/<step>/<key>.json``: the units stay the contract of every step,
and ``jwpipe status``/``plan``/``verify`` read the same records in both granularities
(:func:`unit_reader` finds a step's unit in either layout).

Snakemake removes a job's existing declared outputs before it runs the job (``Job.prepare``
calls ``remove_existing_output`` unless an output is marked ``update()``, which copies every
output to a backup first). A stage job therefore declares only what leaves the stage (the
stage's products, outputs read by other stages, targets and pictures) and its own record; the
intermediates are files the job manages itself. Before running anything the job looks for the
longest prefix of steps that is still valid, and starts after it:

* the step's record equals its current unit file (parameters, references, inputs, outputs);
* every output exists and matches the fingerprint in that record (size and time, hashed only
  if the time moved);
* its inputs have the size and modification time they had when the step last ran in a chain
  (kept in ``state/<stage>/<key>.steps.json``, which Snakemake does not know about), so a new
  stage input (a rerun ``_rate``) reruns the whole stage.

So a changed jump threshold reruns the stage job, and inside it only jump and the later steps;
the declared outputs (which Snakemake deleted) are always remade.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["CHAIN_FORMAT", "STAGE_UNITS_FORMAT", "chain_table", "chain_units", "main",
           "read_stage_units", "render_stage_rules", "run_chain", "stage_units", "stage_units_text",
           "unit_reader", "valid_prefix"]

#: Format of a stage job's record ``state/<stage>/<key>.json``.
CHAIN_FORMAT = "jwpipe-chain-1"
#: Format of a stage job's input ``units/<stage>/<key>.json``: its steps' units, in order (so it
#: changes, and Snakemake reruns the job, whenever one does).
STAGE_UNITS_FORMAT = "jwpipe-stage-units-2"

_RULE = '''

rule {group}:
    input:
        data=lambda wc: CHAINS["{group}"][wc.{wc}]["inputs"],
        units="units/{group}/{{{wc}}}.json",
    output:
{outputs}
        record="state/{group}/{{{wc}}}.json",
    log:
        "logs/{group}/{{{wc}}}.log",
    benchmark:
        "benchmarks/{group}/{{{wc}}}.tsv"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: retry_resource(
            CHAINS["{group}"][wc.{wc}]["mem_mb"], "{group}", wc.{wc}, "mem_mb", attempt
        ),
        runtime=lambda wc, attempt: retry_resource(
            CHAINS["{group}"][wc.{wc}]["runtime"], "{group}", wc.{wc}, "runtime", attempt
        ),
    params:
        jwpipe=JWPIPE,
    conda:
        "envs/jwpipe.yaml"
    shell:
        "{{params.jwpipe}} run-chain --record {{output.record:q}}{discard} {{input.units:q}} "
        "> {{log:q}} 2>&1 || {{{{ rc=$?; if [ $rc -gt 128 ]; then echo 'jwpipe run-chain "
        "{group}: error: killed by signal' $((rc - 128)) >> {{log:q}}; fi; exit $rc; }}}}"
'''


def _stages(steps: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """The plan's steps cut into stages (consecutive steps of one declared group)."""
    out: list[tuple[str, list[dict[str, Any]]]] = []
    for step in steps:
        group = step.get("group") or step["stage"].lower()
        if out and out[-1][0] == group:
            out[-1][1].append(step)
        else:
            if any(g == group for g, _ in out):
                raise ValueError(f"stage {group!r} is not one run of consecutive steps")
            out.append((group, [step]))
    return out


def _exported(plan: Any, needed: set[str]) -> dict[str, set[str]]:
    """Per stage, the steps whose outputs leave it (and so are the stage job's outputs)."""
    group_of = {s["name"]: (s.get("group") or s["stage"].lower()) for s in plan.steps}
    read_by: dict[str, set[str]] = {}
    for u in plan.units:
        for path in u.input_paths:
            read_by.setdefault(path, set()).add(group_of[u.step])
    wanted = set(plan.targets) | needed
    out: dict[str, set[str]] = {}
    for group, steps in _stages(plan.steps):
        names = {steps[-1]["name"]} | {s["name"] for s in steps if s["stage_product"]}
        for step in steps:
            for u in plan.units_of(step["name"]):
                if any(p in wanted or read_by.get(p, set()) - {group} for p in u.output_paths):
                    names.add(step["name"])
        out[group] = names
    return out


def stage_units(plan: Any) -> list[tuple[str, str, list[Any]]]:
    """Every stage job as (stage, key, its units in order)."""
    by_step: dict[str, dict[str, Any]] = {}
    for u in plan.units:
        by_step.setdefault(u.step, {})[u.key] = u
    jobs = []
    for group, steps in _stages(plan.steps):
        keys = list(dict.fromkeys(k for s in steps for k in by_step.get(s["name"], {})))
        for key in keys:
            jobs.append((group, key, [by_step[s["name"]][key] for s in steps
                                      if key in by_step.get(s["name"], {})]))
    return jobs


def chain_table(plan: Any, needed: set[str] = frozenset()) -> dict[str, dict[str, Any]]:
    """``plan.json["chains"]``: per stage and key, its steps in order (their units are in
    ``units/<stage>/<key>.json``), the inputs from outside the stage, the declared outputs, and
    the job's memory (the largest step's) and runtime (the sum).

    Parameters
    ----------
    needed : set of str
        Products read by rules other than steps (the pictures): declared by the stage job.
    """
    table: dict[str, dict[str, Any]] = {group: {} for group, _ in _stages(plan.steps)}
    exported = _exported(plan, set(needed))
    for group, key, units in stage_units(plan):
        made = {p for u in units for p in u.output_paths}
        inputs = list(dict.fromkeys(p for u in units for p in u.input_paths if p not in made))
        table[group][key] = {"steps": [u.step for u in units],
                             "inputs": inputs, "mem_mb": max(u.mem_mb for u in units),
                             "outputs": [p for u in units if u.step in exported[group]
                                         for p in u.output_paths],
                             "runtime": sum(u.runtime for u in units)}
    return table


def stage_units_text(stage: str, key: str, texts: list[str]) -> str:
    """The text of ``units/<stage>/<key>.json``, the stage job's one unit input, from the texts
    of its steps' units (each ``canonical_json`` of the unit, as a step unit file holds it).

    The units are copied in as they are (the whole file is JSON, but not re-indented), so
    writing it costs no more than writing the step unit files would, and the same units always
    give the same bytes.
    """
    from jwpipe.workflow.generate import canonical_json

    head = canonical_json({"format": STAGE_UNITS_FORMAT, "key": key, "stage": stage})
    units = ",\n".join(text.rstrip("\n") for text in texts)
    return f'{head[:-3]},\n "units": [\n{units}\n ]\n}}\n'


def read_stage_units(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The units a stage units file holds, in order, each checked as ``run-step`` checks a
    unit file.

    Raises
    ------
    WorkflowError
        The file is unreadable, not a stage units file, or holds a malformed unit.
    """
    from jwpipe.errors import WorkflowError
    from jwpipe.workflow.runstep import check_unit

    data = _load(os.fspath(path))
    if data is None or data.get("format") != STAGE_UNITS_FORMAT:
        raise WorkflowError(f"{path}: not a {STAGE_UNITS_FORMAT} stage units file "
                            "(regenerate the workflow: jwpipe make-workflow --again DIR)")
    units = data.get("units")
    if not isinstance(units, list) or not units:
        raise WorkflowError(f"{path}: damaged stage units file (regenerate the workflow)")
    return [check_unit(u, f"stage units file {path}, unit {i + 1}")
            for i, u in enumerate(units)]


def chain_units(paths: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """What a stage job runs, as (the file it came from, the unit): the units of one stage
    units file (``units/<stage>/<key>.json``), or step unit files given one by one."""
    from jwpipe.workflow.runstep import load_unit

    if len(paths) == 1:
        data = _load(paths[0])
        if data is not None and str(data.get("format", "")).startswith("jwpipe-stage-units"):
            return [(paths[0], unit) for unit in read_stage_units(paths[0])]
    return [(p, load_unit(p)) for p in paths]


def unit_reader(work: Path, plan: dict[str, Any]) -> Any:
    """A function ``(step, key) -> unit or None`` reading a step's current unit from
    ``units/<step>/<key>.json`` or, at stage granularity (``plan["chains"]``), from its stage
    units file (each read once). None: missing or unreadable."""
    where: dict[tuple[str, str], str] = {}
    for stage, jobs in (plan.get("chains") or {}).items():
        for key, job in jobs.items():
            for step in job.get("steps") or []:
                where[(step, key)] = stage
    cache: dict[tuple[str, str], dict[str, Any]] = {}

    def read(step: str, key: str) -> dict[str, Any] | None:
        stage = where.get((step, key))
        if stage is None:
            return _load(os.fspath(work / "units" / step / f"{key}.json"))
        if (stage, key) not in cache:
            data = _load(os.fspath(work / "units" / stage / f"{key}.json")) or {}
            units = data.get("units") if isinstance(data.get("units"), list) else []
            cache[(stage, key)] = {u.get("step"): u for u in units if isinstance(u, dict)}
        return cache[(stage, key)].get(step)

    return read


def render_stage_rules(plan: Any, *, keep: set[str] | None, needed: set[str]) -> str:
    """The Snakefile text of the stage rules (one per stage), after the common header.

    Parameters
    ----------
    keep : set of str or None
        Steps whose intermediates are kept (None: all). The stage job deletes the others'
        outputs once the stage has finished, as ``temp()`` would.
    needed : set of str
        Products read by rules other than steps (the pictures).
    """
    import re

    from jwpipe.workflow.snakefile import _output_lines as output_lines

    exported = _exported(plan, needed)
    names = {s["name"] for s in plan.steps}
    text = '\nCHAINS = PLAN["chains"]\n'
    for group, steps in _stages(plan.steps):
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", group) or group in names or \
                group in ("all", "products"):
            raise ValueError(f"stage name {group!r} is not a usable rule name (it must be an "
                             "identifier that names no step)")
        wildcards = {s["wildcard"] for s in steps}
        if len(wildcards) != 1 or any(s.get("inputs_from_others") for s in steps):
            from jwpipe.errors import WorkflowError  # jwst's coron3, tso3, ami3

            raise WorkflowError(f"--granularity stage: stage {group!r} has steps that take "
                                "other members' or the product's files, so it cannot be one "
                                "job per exposure; use --granularity step")
        outputs = "\n".join(output_lines(s, False) for s in steps
                            if s["name"] in exported[group])
        discard = [s["name"] for s in steps if keep is not None and s["name"] not in keep
                   and s["name"] not in exported[group]]
        text += _RULE.format(group=group, wc=wildcards.pop(), outputs=outputs,
                             discard="".join(f" --discard {n}" for n in discard))
    return text


# --------------------------------------------------------------------------- the job


def _load(path: str) -> dict[str, Any] | None:
    try:
        with open(path) as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _input_paths(unit: dict[str, Any]) -> list[str]:
    return [spec["path"] for spec in unit["inputs"]]


def _seen(unit: dict[str, Any]) -> dict[str, Any]:
    """Size and modification time of the unit's inputs now (what it runs, or ran, on)."""
    from jwpipe.workflow.integrity import fingerprint_quick

    return {p: fingerprint_quick(Path(p)) if os.path.exists(p) else None
            for p in _input_paths(unit)}


def _why_invalid(unit_path: str, unit: dict[str, Any], seen: dict[str, Any]) -> str | None:
    """Why the step's existing outputs cannot be reused, or None if they can."""
    from jwpipe.workflow.integrity import mismatch, workdir_of

    record = _load(unit["record"])
    if record is None:
        return "no record"
    made_with = {k: v for k, v in record.items() if k != "fingerprints"}
    if made_with != unit:
        return "unit file changed"
    work = workdir_of(unit_path)
    prints = record.get("fingerprints") or {}
    for spec in unit["outputs"]:
        path = spec["path"]
        key = os.path.relpath(os.path.abspath(path), work) if work is not None else path
        if key not in prints:
            return f"{path}: no fingerprint"
        why = mismatch(Path(path), prints[key], full=False)
        if why:
            return f"{path}: {why}"
    if seen.get(unit["step"]) != _seen(unit):
        return "inputs changed"
    return None


def valid_prefix(units: list[tuple[str, dict[str, Any]]],
                 seen: dict[str, Any]) -> tuple[int, str | None]:
    """How many leading steps can be reused, and why the next one cannot. ``units``: (the file
    each unit came from, the unit), in order."""
    for index, (path, unit) in enumerate(units):
        why = _why_invalid(path, unit, seen)
        if why is not None:
            return index, why
    return len(units), None


def _write_json(path: str, data: dict[str, Any]) -> None:
    from jwpipe.atomic import write_text_atomic

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_text_atomic(path, json.dumps(data, sort_keys=True, indent=1) + "\n")


def _remove(path: str) -> None:
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.unlink(path)


def _steps_file(record: str) -> str:
    root, _ = os.path.splitext(record)
    return f"{root}.steps.json"


def run_chain(units: list[tuple[str, dict[str, Any]]], record: str,
              discard: list[str] | None = None, log: Any = None) -> dict[str, Any]:
    """Run a stage job: reuse the valid prefix of steps, run the rest, write ``record``.

    ``units``: (the file each unit came from, the unit), in order (:func:`chain_units`).
    Returns the record written. On a failure the step's own log
    (``logs/<step>/<key>.log``) gets the error line too, so ``jwpipe status`` shows which step
    of the stage failed.
    """
    from jwpipe.errors import WorkflowError
    from jwpipe.workflow.runstep import run_unit

    log = log or sys.stderr
    keys = {u.get("key") for _, u in units}
    if len(keys) != 1:
        raise WorkflowError("run-chain: units of different exposures or products ("
                            f"{', '.join(map(str, keys))})")
    unknown = set(discard or []) - {u.get("step") for _, u in units}
    if unknown:
        raise WorkflowError(f"run-chain: --discard names no step of this stage: "
                            f"{', '.join(sorted(unknown))}")
    steps_path = _steps_file(record)
    seen = (_load(steps_path) or {}).get("inputs") or {}
    start, why = valid_prefix(units, seen)
    done: list[dict[str, Any]] = [{"step": u["step"], "action": "reused"}
                                  for _, u in units[:start]]
    if start < len(units):
        print(f"jwpipe run-chain: reusing {start} step(s); from {units[start][1]['step']}: "
              f"{why}", file=log, flush=True)
    for _, unit in units[start:]:
        seen.pop(unit["step"], None)
    for path, unit in units[start:]:
        inputs_now = _seen(unit)
        t0 = time.perf_counter()
        try:
            run_unit(path, unit)
        except BaseException as exc:
            _step_log_error(unit, exc)
            _write_json(steps_path, {"format": CHAIN_FORMAT, "inputs": seen})
            raise
        seen[unit["step"]] = inputs_now
        _write_json(steps_path, {"format": CHAIN_FORMAT, "inputs": seen})
        done.append({"step": unit["step"], "action": "ran",
                     "wall_time_s": round(time.perf_counter() - t0, 3)})
        print(f"jwpipe run-chain: {unit['step']} done", file=log, flush=True)
    for _, unit in units:
        if unit["step"] in (discard or []):
            for spec in unit["outputs"]:
                _remove(spec["path"])
    result = {"format": CHAIN_FORMAT, "key": units[0][1]["key"],
              "units": list(dict.fromkeys(path for path, _ in units)), "steps": done}
    _write_json(record, result)
    return result


def _step_log_error(unit: dict[str, Any], exc: BaseException) -> None:
    from jwpipe.workflow.runstep import _one_line

    path = Path("logs") / str(unit["step"]) / f"{unit['key']}.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"jwpipe run-chain {unit['step']} {unit['key']}: error: "
                        f"{_one_line(exc)}\n")
    except OSError:
        pass


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jwpipe run-chain",
        description="Run one stage job of a workflow: its steps' unit files in order, in one "
                    "process, starting after the last step whose outputs are still valid.")
    parser.add_argument("units", nargs="+", metavar="UNIT_FILE",
                        help="the stage units file (units/<stage>/<key>.json) holding the "
                             "stage's units for one exposure or product, or unit files of the "
                             "stage's steps one by one")
    parser.add_argument("--record", required=True,
                        help="the stage job's record (state/<stage>/<key>.json)")
    parser.add_argument("--discard", action="append", default=[], metavar="STEP",
                        help="delete this step's outputs once the stage has finished")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def main(argv: list[str]) -> int:
    """Entry point of ``jwpipe run-chain``."""
    ns = _parser().parse_args(argv)
    from jwpipe.stpipe.cmdline import configure_logging

    configure_logging(False, "INFO")
    import signal

    from jwpipe.workflow.integrity import workdir_of
    from jwpipe.workflow.processes import job_record
    from jwpipe.workflow.runstep import _one_line

    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        stage = Path(ns.record).parent.name
        key = Path(ns.record).stem
        with job_record(workdir_of(ns.units[0]), stage, key):
            run_chain(chain_units(ns.units), ns.record, ns.discard)
    except Exception as exc:
        from jwpipe.errors import JwpipeError

        if ns.debug or not isinstance(exc, JwpipeError | OSError | MemoryError):
            import traceback

            traceback.print_exc()
        print(f"jwpipe run-chain {ns.record}: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    return 0
