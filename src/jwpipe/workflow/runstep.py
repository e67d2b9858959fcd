"""``jwpipe run-step``: run one step as one workflow job.

``jwpipe run-step <alias> --params FILE INPUT... -o OUTPUT...``

The step runs exactly as ``Step.call`` would with the resolved parameters in ``FILE`` (a unit
file written by ``make-workflow``, or any parameter file), including the reference files the plan
chose. Outputs are written under a temporary name in their directory and renamed into place, so
an interrupted job never leaves a partial product under a final name. Provenance (jwpipe version,
parameters and their hash, reference files, inputs, wall time, peak memory) goes into each
product. Imports are deferred until the arguments are parsed: every job pays start-up.
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

__all__ = ["main", "run_unit"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jwpipe run-step", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", help="step alias (dq_init, jump, ...) or class name")
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="input files (or one directory of member files)")
    parser.add_argument("--params", required=True, metavar="FILE",
                        help="unit file from make-workflow, or a parameter file")
    parser.add_argument("-o", "--output", nargs="+", required=True, dest="outputs",
                        metavar="OUTPUT", help="output path(s), in the step's output order")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def _load_params(path: str) -> dict[str, Any]:
    from jwpipe.errors import ValidationError

    if path.endswith(".json"):
        try:
            with open(path) as fh:
                unit = json.load(fh)
        except (OSError, json.JSONDecodeError) as exc:
            raise ValidationError(f"unit file {path}: {exc}") from None
        if not isinstance(unit, dict) or not isinstance(unit.get("parameters"), dict):
            raise ValidationError(f"unit file {path}: no 'parameters' mapping")
        return unit
    from jwpipe.stpipe.config_file import load_parameter_file

    cfg = load_parameter_file(path)
    return {"step": None, "class": cfg.class_name, "parameters": cfg.parameters,
            "members": [], "references": {}}


def _member_files(inputs: list[str], members: list[str]) -> list[str]:
    """Expand a directory input into its member files, in association order."""
    if len(inputs) == 1 and os.path.isdir(inputs[0]):
        directory = inputs[0]
        files = sorted(os.listdir(directory))
        ordered = []
        for root in members:
            hits = [f for f in files if f.startswith(f"{root}_")]
            if len(hits) != 1:
                from jwpipe.errors import WorkflowError

                raise WorkflowError(f"{directory}: expected one file for member {root}, "
                                    f"found {hits}")
            ordered.append(os.path.join(directory, hits[0]))
        return ordered or [os.path.join(directory, f) for f in files]
    return list(inputs)


def _tmp_name(path: str) -> str:
    p = Path(path)
    return str(p.with_name(f".{p.name}.{os.getpid()}.part"))


def _save(obj: Any, path: str) -> None:
    """Save a model (datamodels save atomically) or a table to ``path`` atomically."""
    from jwpipe.atomic import atomic_path

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if hasattr(obj, "meta") and hasattr(obj, "save"):
        obj.save(path)
    elif hasattr(obj, "write"):  # astropy Table (source catalogue)
        with atomic_path(path) as tmp:
            obj.write(tmp, format="ascii.ecsv" if path.endswith(".ecsv") else None,
                      overwrite=True)
    else:
        raise TypeError(f"cannot save a {type(obj).__name__} result")


def _save_directory(models: Any, directory: str, names: list[str],
                    prepare: Any) -> None:
    """Save the members of a container one at a time into a directory, renamed into place.

    Members are opened, prepared (references, provenance) and saved one by one, so a product
    of hundreds of exposures never holds more than one in memory.
    """
    tmpdir = _tmp_name(directory.rstrip("/"))
    if os.path.exists(tmpdir):
        shutil.rmtree(tmpdir)
    os.makedirs(tmpdir)
    try:
        for index in range(len(models)):
            model = models[index]
            prepare([model])
            name = names[index] if len(names) == len(models) else f"member{index:04d}.fits"
            model.save(os.path.join(tmpdir, name))
        if os.path.exists(directory):
            shutil.rmtree(directory)
        os.replace(tmpdir, directory)
    finally:
        if os.path.exists(tmpdir):
            shutil.rmtree(tmpdir)


def _reference_context(params_file: str) -> str | None:
    """The store context recorded in the workflow's plan.json (not part of any unit's identity)."""
    plan = Path(params_file).resolve().parent.parent.parent / "plan.json"
    try:
        with open(plan) as fh:
            return json.load(fh).get("reference_context")
    except (OSError, json.JSONDecodeError):
        return None


def _record_references(results: list[Any], unit: dict[str, Any], context: str | None) -> None:
    """Store-selected references are recorded by file name, as in an in-process run."""
    for item in results:
        ref_file = getattr(getattr(item, "meta", None), "ref_file", None)
        if ref_file is None or not hasattr(item, "save"):
            continue
        for reftype, ident in unit.get("references", {}).items():
            if isinstance(ident, dict) and ident.get("source") == "store":
                getattr(ref_file, reftype).name = ident["file"]
        if context and unit.get("references"):
            ref_file.crds.context_used = context


def _provenance(results: list[Any], info: dict[str, Any]) -> None:
    for item in results:
        extra = getattr(item, "extra", None)
        if isinstance(extra, dict):
            extra.setdefault("jwpipe", {})["run_step"] = info
        elif not hasattr(item, "save") and isinstance(getattr(item, "meta", None), dict):
            item.meta["jwpipe_run_step"] = info  # an astropy Table (source catalogue)


def run_unit(step_name: str, params_file: str, inputs: list[str], outputs: list[str]) -> None:
    """Run one unit; see the module docstring."""
    from jwpipe import __version__
    from jwpipe.errors import WorkflowError
    from jwpipe.stpipe.registry import resolve_step_class
    from jwpipe.stpipe.resources import measure
    from jwpipe.stpipe.step import parameters_hash

    unit = _load_params(params_file)
    if unit.get("step") and unit["step"] != step_name:
        raise WorkflowError(f"unit file {params_file} is for step {unit['step']!r}, "
                            f"not {step_name!r}")
    cls = resolve_step_class(unit.get("class") or step_name, what="step")
    for path in inputs:
        if not os.path.exists(path):
            raise WorkflowError(f"input {path} does not exist")
    from jwpipe.workflow import integrity

    integrity.check_inputs(params_file, inputs)
    parameters = dict(unit["parameters"])
    step = cls.from_config_section(parameters, name=cls.class_alias or step_name)
    t0 = time.time()
    with measure() as stats:
        if cls.workflow_scope == "product":
            from jwpipe.datamodels import ModelContainer

            files = _member_files(inputs, unit.get("members") or [])
            results = [step.run(files[0] if len(files) == 1 and not unit.get("members")
                                else ModelContainer(files))]
        else:
            results = [step.run(path) for path in inputs]
    info = {
        "jwpipe_version": __version__, "step": step_name, "class": unit.get("class"),
        "parameters_hash": parameters_hash(parameters), "unit_file": os.path.abspath(params_file),
        "references": unit.get("references", {}), "inputs": [os.path.basename(p) for p in inputs],
        "wall_time_s": round(stats["wall_time_s"], 3), "peak_rss_mb": stats["peak_rss_mb"],
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t0)),
    }
    flat: list[Any] = []
    for result in results:
        flat += list(result) if isinstance(result, tuple) else [result]
    context = _reference_context(params_file)
    if cls.workflow_scope == "product" and len(outputs) == 1 and not outputs[0].endswith(
            (".fits", ".ecsv")):
        suffix = cls.product_suffix or cls.class_alias or step_name
        names = [f"{root}_{suffix}.fits" for root in unit.get("members") or []]

        def prepare(models: list[Any]) -> None:
            _record_references(models, unit, context)
            _provenance(models, info)

        _save_directory(flat[0], outputs[0], names, prepare)
    else:
        if len(flat) != len(outputs):
            raise WorkflowError(f"step {step_name} produced {len(flat)} result(s) for "
                                f"{len(outputs)} output path(s)")
        _record_references(flat, unit, context)
        _provenance(flat, info)
        for obj, path in zip(flat, outputs, strict=True):
            _save(obj, path)
    _write_state(params_file, {**unit, "outputs": integrity.fingerprints(
        outputs, integrity.workdir_of(params_file))})


def _write_state(params_file: str, unit: dict[str, Any]) -> None:
    """Record what the outputs were made with: units/<step>/<key>.json -> state/..."""
    path = Path(params_file).resolve()
    if path.parent.parent.name != "units":
        return
    state = path.parent.parent.parent / "state" / path.parent.name / path.name
    state.parent.mkdir(parents=True, exist_ok=True)
    from jwpipe.atomic import write_text_atomic

    write_text_atomic(state, json.dumps(unit, sort_keys=True, indent=1) + "\n")


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
        with job_record(workdir_of(ns.params), ns.step, Path(ns.params).stem):
            run_unit(ns.step, ns.params, ns.inputs, ns.outputs)
    except Exception as exc:
        from jwpipe.errors import JwpipeError

        if ns.debug or not isinstance(exc, JwpipeError | OSError | MemoryError):
            import traceback

            traceback.print_exc()
        print(f"jwpipe run-step {ns.step}: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    return 0
