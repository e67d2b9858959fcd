"""``jwpipe run-step``: run one workflow job from its unit file.

``jwpipe run-step units/<step>/<key>.json``

The unit file (written by ``make-workflow``; format in ``docs/workflow.md``) is the job's whole
contract: the step class, its resolved parameters, the reference files with the context that
selected them, the inputs, and every output with its kind (``file``, ``table``, or ``members``:
a directory of one file per association member, with their names). Nothing is worked out again
here: relative paths are relative to the working directory (the workflow directory when
Snakemake runs the job), and no other file of the workflow is read.

The step runs exactly as ``Step.run`` would with those parameters and references. Outputs are
written under a temporary name in their directory and renamed into place, so an interrupted job
never leaves a partial product under a final name; the record (the unit file's content, at
``record``) is written last. Provenance (jwpipe version, parameters hash, references, inputs,
wall time, peak memory) goes into each product. Imports are deferred until the arguments are
parsed: every job pays start-up.
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

__all__ = ["UNIT_FORMAT", "check_unit", "load_unit", "main", "run_unit"]

#: The ``format`` of the unit files this jwpipe writes and runs (the planner writes it too).
UNIT_FORMAT = "jwpipe-unit-1"
_KINDS = {"file", "table", "members"}
_CALLS = {"each", "members", "single"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jwpipe run-step", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("unit", metavar="UNIT_FILE", help="unit file written by make-workflow")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def load_unit(path: str) -> dict[str, Any]:
    """Read and check a unit file; one clear error for anything missing or malformed."""
    from jwpipe.errors import ValidationError

    try:
        with open(path) as fh:
            unit = json.load(fh)
    except (OSError, json.JSONDecodeError) as exc:
        raise ValidationError(f"unit file {path}: {exc}") from None
    return check_unit(unit, f"unit file {path}")


def check_unit(unit: Any, where: str) -> dict[str, Any]:
    """``unit`` if it is a well-formed unit (``where`` names it in the error), else one clear
    error for anything missing or malformed."""
    from jwpipe.errors import ValidationError

    if not isinstance(unit, dict) or unit.get("format") != UNIT_FORMAT:
        raise ValidationError(f"{where}: not a {UNIT_FORMAT} unit file (regenerate the "
                              "workflow with this jwpipe: jwpipe make-workflow --again DIR)")
    problems = [k for k, t in (("class", str), ("parameters", dict), ("references", dict),
                               ("inputs", list), ("outputs", list), ("record", str))
                if not isinstance(unit.get(k), t)]
    problems += [f"call {unit.get('call')!r}"] if unit.get("call") not in _CALLS else []
    problems += [f"kind of {s.get('path')!r}" for s in [*unit.get("inputs", []),
                                                        *unit.get("outputs", [])]
                 if not isinstance(s, dict) or s.get("kind") not in _KINDS]
    if problems:
        raise ValidationError(f"{where}: missing or invalid {', '.join(problems)}")
    return unit


def _input_files(unit: dict[str, Any]) -> list[str]:
    """The input files, a members directory expanded into its files in member order."""
    files: list[str] = []
    for spec in unit["inputs"]:
        if spec["kind"] == "members":
            files += [os.path.join(spec["path"], name) for name in spec["names"]]
        else:
            files.append(spec["path"])
    return files


class _UnitReferences:
    """The reference store a job sees: the unit file's context; its files are pre-selected."""

    def __init__(self, context: str | None) -> None:
        self.context = context

    def get_reference_file(self, parameters: dict[str, Any], reftype: str) -> str:
        from jwpipe.errors import WorkflowError

        if reftype.startswith("pars-"):
            return "N/A"  # parameter references were applied when the unit was planned
        raise WorkflowError(f"the unit file names no '{reftype}' reference")


def _make_step(cls: type, unit: dict[str, Any]) -> Any:
    """The step with the unit's parameters; user overrides as overrides, the store's choices
    pre-selected (recorded by file name and context, as in an in-process run)."""
    parameters = dict(unit["parameters"])
    refs = unit["references"]
    selected_by = refs.get("selected_by", {})
    for reftype, path in refs.get("files", {}).items():
        if selected_by.get(reftype) == "override":
            parameters[f"override_{reftype}"] = path
    step = cls.from_config_section(parameters, name=cls.class_alias or unit.get("step"))
    for reftype, path in refs.get("files", {}).items():
        if selected_by.get(reftype) != "override":
            step._ref_cache[reftype] = path
    return step


def _run(step: Any, unit: dict[str, Any], files: list[str]) -> list[Any]:
    """Call the step as the unit says; the flat list of results in output order."""
    if unit["call"] == "members":
        from jwpipe.datamodels import ModelContainer

        results = [step.run(ModelContainer(files))]
    elif unit["call"] == "single":
        results = [step.run(files[0])]
    else:
        results = [step.run(path) for path in files]
    flat: list[Any] = []
    for result in results:
        flat += list(result) if isinstance(result, tuple) else [result]
    return flat


def _tmp_name(path: str) -> str:
    head, tail = os.path.split(path.rstrip("/"))
    return os.path.join(head, f".{tail}.{os.getpid()}.part")


def _save(obj: Any, spec: dict[str, Any]) -> None:
    """Save a model (datamodels save atomically) or a table to the output, atomically."""
    from jwpipe.atomic import atomic_path
    from jwpipe.errors import WorkflowError

    path = spec["path"]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if spec["kind"] == "table":
        if not hasattr(obj, "write"):
            raise WorkflowError(f"{path}: the step returned a {type(obj).__name__}, not a table")
        with atomic_path(path) as tmp:
            obj.write(tmp, format="ascii.ecsv", overwrite=True)
    elif hasattr(obj, "meta") and hasattr(obj, "save"):
        obj.save(path)
    else:
        raise WorkflowError(f"{path}: cannot save a {type(obj).__name__} result as a file")


def _save_members(models: Any, spec: dict[str, Any], prepare: Any) -> None:
    """Save the members of a container one at a time into a directory, renamed into place.

    Members are opened, prepared (provenance) and saved one by one, so a product of hundreds of
    exposures never holds more than one in memory.
    """
    from jwpipe.errors import WorkflowError

    directory, names = spec["path"], spec["names"]
    if len(models) != len(names):
        raise WorkflowError(f"{directory}: the step returned {len(models)} member(s) for "
                            f"{len(names)} declared name(s)")
    tmpdir = _tmp_name(directory)
    if os.path.exists(tmpdir):
        shutil.rmtree(tmpdir)
    os.makedirs(tmpdir)
    try:
        for index, name in enumerate(names):
            model = models[index]
            prepare(model)
            model.save(os.path.join(tmpdir, name))
        if os.path.exists(directory):
            shutil.rmtree(directory)
        os.replace(tmpdir, directory)
    finally:
        if os.path.exists(tmpdir):
            shutil.rmtree(tmpdir)


def _provenance(item: Any, info: dict[str, Any]) -> None:
    extra = getattr(item, "extra", None)
    if isinstance(extra, dict):
        extra.setdefault("jwpipe", {})["run_step"] = info
    elif not hasattr(item, "save") and isinstance(getattr(item, "meta", None), dict):
        item.meta["jwpipe_run_step"] = info  # an astropy Table (source catalogue)


def run_unit(unit_path: str, unit: dict[str, Any] | None = None) -> None:
    """Run the job described by the unit file ``unit_path``; see the module docstring.

    ``unit``: the unit itself, already read and checked (:func:`check_unit`) from
    ``unit_path``, which then may be a stage units file holding it
    (:mod:`jwpipe.workflow.chain`); ``unit_path`` still locates the workflow directory and is
    recorded in the provenance.
    """
    from jwpipe import __version__
    from jwpipe.atomic import write_text_atomic
    from jwpipe.errors import WorkflowError
    from jwpipe.stpipe import refstore
    from jwpipe.stpipe.registry import resolve_step_class
    from jwpipe.stpipe.resources import measure
    from jwpipe.stpipe.step import parameters_hash

    if unit is None:
        unit = load_unit(unit_path)
    if unit.get("engine", "jwpipe") != "jwpipe":  # another step library runs this job
        if unit["engine"] != "jwst":
            raise WorkflowError(f"unit file {unit_path}: unknown engine {unit['engine']!r}")
        from jwpipe.engines.jwst_run import run_jwst_unit

        return run_jwst_unit(unit_path, unit)
    cls = resolve_step_class(unit["class"], what="step")
    files = _input_files(unit)
    missing = [p for p in files if not os.path.exists(p)]
    if missing:
        raise WorkflowError(f"input(s) do not exist: {', '.join(missing)}")
    from jwpipe.workflow import integrity

    integrity.check_inputs(unit_path, [spec["path"] for spec in unit["inputs"]])
    step = _make_step(cls, unit)
    previous = refstore._ACTIVE[:]
    refstore.set_store(_UnitReferences(unit["references"].get("context")))
    t0 = time.time()
    try:
        with measure() as stats:
            results = _run(step, unit, files)
    finally:
        refstore._ACTIVE[:] = previous
    info = {
        "jwpipe_version": __version__, "step": unit.get("step"), "class": unit["class"],
        "parameters_hash": parameters_hash(unit["parameters"]),
        "unit_file": os.path.abspath(unit_path), "references": unit["references"],
        "inputs": [os.path.basename(p) for p in files],
        "wall_time_s": round(stats["wall_time_s"], 3), "peak_rss_mb": stats["peak_rss_mb"],
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t0)),
    }
    outputs = unit["outputs"]
    if len(results) != len(outputs):
        raise WorkflowError(f"step {unit.get('step')} produced {len(results)} result(s) for "
                            f"{len(outputs)} declared output(s)")
    for obj, spec in zip(results, outputs, strict=True):
        if spec["kind"] == "members":
            _save_members(obj, spec, lambda model: _provenance(model, info))
        else:
            _provenance(obj, info)
            _save(obj, spec)
    # the record: what the outputs were made with, and their fingerprints (checked by the next
    # job, jwpipe verify and status)
    fingerprints = integrity.fingerprints([spec["path"] for spec in outputs],
                                          integrity.workdir_of(unit_path))
    record = unit["record"]
    os.makedirs(os.path.dirname(os.path.abspath(record)), exist_ok=True)
    write_text_atomic(record, json.dumps({**unit, "fingerprints": fingerprints}, sort_keys=True,
                                         indent=1) + "\n")


def _one_line(exc: BaseException) -> str:
    """The error as one line; system errors (disk full, permissions) say what failed."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror}{where} [errno {exc.errno}]"
    if isinstance(exc, MemoryError):
        return "out of memory"
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv: list[str]) -> int:
    """Entry point of ``jwpipe run-step``."""
    ns = _parser().parse_args(argv)
    from jwpipe.stpipe.cmdline import configure_logging

    configure_logging(False, "INFO")
    import signal

    from jwpipe.workflow.integrity import workdir_of
    from jwpipe.workflow.processes import job_record

    # SIGTERM (from `jwpipe resume` ending an orphan, or a scheduler) unwinds normally, so
    # temporary outputs are removed
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        unit = ns.unit
        step, key = Path(unit).parent.name, Path(unit).stem
        with job_record(workdir_of(unit), step, key):
            run_unit(unit)
    except Exception as exc:
        from jwpipe.errors import JwpipeError

        if ns.debug or not isinstance(exc, JwpipeError | OSError | MemoryError):
            import traceback

            traceback.print_exc()
        print(f"jwpipe run-step {ns.unit}: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    return 0
