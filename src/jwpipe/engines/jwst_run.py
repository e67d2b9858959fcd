"""Run one jwst-engine unit: ``jwpipe run-step`` on a unit file whose ``engine`` is ``jwst``.

The job runs the jwst step class through stpipe (``Step.call``) with exactly what the unit file
says, and nothing else:

* its resolved parameters, written as an ASDF parameter file (``params/<step>/<key>.asdf``:
  ``class``, ``name``, ``parameters``, the layout ``strun --save-parameters`` writes) that the
  job runs with; CRDS parameter references are disabled inside the job
  (``STPIPE_DISABLE_CRDS_STEPPARS``): they were applied when the unit was planned, so the file is
  the single source of the job's parameters;
* every reference file as ``override_<reftype>`` (a path, or ``N/A``), so CRDS selects nothing
  in the job; ``CRDS_PATH`` and ``CRDS_CONTEXT`` name the planner's cache and context, which
  jwst records in the products (``CRDS_CTX``);
* its inputs: each file on its own (``call: each``), the association members as one jwst
  ``ModelLibrary`` (``members``), or the one combined product (``single``); for the steps of
  calwebb_coron3, calwebb_tso3 and calwebb_ami3, the positional arguments the unit declares
  (``jwst.flow``, :mod:`jwpipe.engines.jwst_level3`).

Outputs are written under a temporary name and renamed into place (members: a temporary
directory renamed into place), carry provenance (``jwpipe_run_step`` in the ASDF tree, the
``meta`` of a table), and the record with the outputs' fingerprints is written last, as for the
jwpipe engine (:mod:`jwpipe.workflow.runstep`).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from typing import Any

from jwpipe.errors import WorkflowError

__all__ = ["parameter_file_path", "run_jwst_unit", "write_parameter_file"]


def _jwst_class(path: str, inserted: str | None = None) -> type:
    """The jwst step class a unit names; only classes in jwst's own package are imported, or
    the user's step the unit declares as inserted (its class was checked against the import
    allow-list when the workflow was planned)."""
    plain = path.replace(".", "").replace("_", "").isalnum()
    if not (path.startswith("jwst.") or path == inserted) or not plain:
        raise WorkflowError(f"unit class {path!r} is not a class of STScI's jwst package nor "
                            "the unit's inserted step")
    module, _, name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise WorkflowError(f"cannot import {path}: {exc} (is jwst installed? pip install "
                            "'jwpipe[jwst]')") from None
    from stpipe import Step

    if not (isinstance(cls, type) and issubclass(cls, Step)):
        raise WorkflowError(f"{path} is not an stpipe step")
    return cls


def parameter_file_path(unit: dict[str, Any]) -> str:
    """Where a unit's ASDF parameter file goes: ``params/<step>/<key>.asdf``, next to
    ``state/`` (the record's directory tree)."""
    state_dir = os.path.dirname(os.path.dirname(unit["record"]))
    return os.path.join(os.path.dirname(state_dir) if state_dir.endswith("state") else ".",
                        "params", unit["step"], f"{unit['key']}.asdf")


def write_parameter_file(unit: dict[str, Any], path: str) -> str:
    """Write the unit's parameters as an stpipe ASDF parameter file, atomically."""
    import asdf

    from jwpipe.atomic import atomic_path

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tree = {"class": unit["class"], "name": unit["step"], "parameters": unit["parameters"]}
    with atomic_path(path) as tmp:
        asdf.AsdfFile(tree).write_to(tmp)
    return path


@contextlib.contextmanager
def _job_environment(unit: dict[str, Any]) -> Iterator[None]:
    info = unit.get("jwst") or {}
    env = {"STPIPE_DISABLE_CRDS_STEPPARS": "true"}
    if info.get("crds_path"):
        env.update(CRDS_PATH=info["crds_path"], CRDS_READONLY_CACHE="1")
    context = (unit["references"] or {}).get("context")
    if context:
        env["CRDS_CONTEXT"] = context
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _library(files: list[str], key: str) -> Any:
    """The members as jwst's ModelLibrary, built as calwebb_image3 builds it from an
    association (science members, in memory)."""
    from jwst.datamodels import ModelLibrary

    asn = {"asn_id": "o000", "asn_pool": "jwpipe", "asn_type": "image3",
           "products": [{"name": key, "members": [
               {"expname": os.path.abspath(f), "exptype": "science"} for f in files]}]}
    return ModelLibrary(asn, asn_exptypes=["science"], on_disk=False)


def _container(files: list[str], held: dict[str, Any]) -> Any:
    """The members as jwst's ModelContainer, as calwebb_spec3 holds them: opened, each under
    its association name, recording the association's pool and file name."""
    from jwst.datamodels import ModelContainer

    container = ModelContainer(files)
    association = held.get("association", {})
    for model, name in zip(container, held.get("names", files), strict=True):
        model.meta.filename = os.path.basename(name)
        model.meta.asn.pool_name = association.get("pool_name")
        model.meta.asn.table_name = association.get("table_name")
    return container


def _opened_as_declared(step: str, path: str) -> Any:
    """The input as the datamodel jwst's pipeline converts it to before ``step`` for its
    EXP_TYPE (:data:`jwpipe.engines.jwst_stages.INPUT_AS`: the MIRI LRS image as a SlitModel
    whose corner and size are the subarray's), else the path itself."""
    from jwpipe.engines.jwst_stages import INPUT_AS

    if not any(name == step for name, _ in INPUT_AS):
        return path
    from stdatamodels.jwst import datamodels

    model = datamodels.open(path)
    target = INPUT_AS.get((step, model.meta.exposure.type))
    if target is None or type(model).__name__ == target:
        return model
    converted = getattr(datamodels, target)(model)
    for attr in ("xstart", "ystart", "xsize", "ysize"):
        setattr(converted, attr, getattr(model.meta.subarray, attr))
    model.close()
    return converted


def _call(cls: type, unit: dict[str, Any], files: list[str], pars_file: str) -> list[Any]:
    overrides = {f"override_{t}": p for t, p in unit["references"].get("files", {}).items()}
    if (unit.get("jwst") or {}).get("flow") is not None:  # coron3, tso3, ami3 steps
        from jwpipe.engines.jwst_level3 import call_flow

        return call_flow(cls, unit, files, pars_file, overrides)
    held = (unit.get("jwst") or {}).get("members_as")
    if unit["call"] == "members" and held == "container":
        inputs: list[Any] = [_container(files, unit["jwst"])]
    elif unit["call"] == "members":
        inputs = [_library(files, unit["key"])]
    elif unit["call"] == "single":
        inputs = [files[0]]
    else:
        inputs = [_opened_as_declared(unit.get("step", ""), f) for f in files]
    flat: list[Any] = []
    for item in inputs:
        result = cls.call(item, config_file=pars_file, **overrides)
        members = unit["outputs"][0]["kind"] == "members"  # Spec3's members, saved each
        if type(result).__name__ == "ModelContainer" and not members:  # cube_build's cubes
            if len(result) != 1:
                raise WorkflowError(f"jwst's {unit['class']} returned {len(result)} models; "
                                    "the unit declares one (_s3d: Spec2's one cube)")
            result = result[0]
        flat += list(result) if isinstance(result, tuple) else [result]
    if any(r is None for r in flat):
        raise WorkflowError(f"jwst's {unit['class']} returned no product (see its log above)")
    return flat


def _provenance(obj: Any, info: dict[str, Any]) -> None:
    if hasattr(obj, "save") and hasattr(obj, "meta"):
        obj.jwpipe_run_step = info  # kept in the product's ASDF tree
    elif isinstance(getattr(obj, "meta", None), dict):
        obj.meta["jwpipe_run_step"] = info  # an astropy table (source catalogue)


def _save_model(model: Any, path: str) -> None:
    """Save a datamodel under a temporary name and rename it into place (its FILENAME is the
    final name)."""
    directory, name = os.path.split(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    # a temporary directory, not name: stdatamodels records the name it saves to (FILENAME)
    tmpdir = os.path.join(directory, f".{name}.{os.getpid()}.part")
    shutil.rmtree(tmpdir, ignore_errors=True)
    os.makedirs(tmpdir)
    try:
        model.save(os.path.join(tmpdir, name))
        os.replace(os.path.join(tmpdir, name), path)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _save(obj: Any, spec: dict[str, Any], info: dict[str, Any]) -> None:
    from jwpipe.atomic import atomic_path

    path = spec["path"]
    if spec["kind"] == "members":
        _save_members(obj, spec, info)
    elif spec["kind"] == "table":
        if not hasattr(obj, "write"):
            raise WorkflowError(f"{path}: jwst returned a {type(obj).__name__}, not a table")
        _provenance(obj, info)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with atomic_path(path) as tmp:
            obj.write(tmp, format="ascii.ecsv", overwrite=True)
    else:
        _provenance(obj, info)
        _save_model(obj, path)


def _save_members(library: Any, spec: dict[str, Any], info: dict[str, Any]) -> None:
    """Save the members of a ModelLibrary (one at a time) or of a ModelContainer into a
    directory renamed into place."""
    directory, names = spec["path"], spec["names"]
    if len(library) != len(names):
        raise WorkflowError(f"{directory}: jwst returned {len(library)} member(s) for "
                            f"{len(names)} declared name(s)")
    tmpdir = os.path.join(os.path.dirname(os.path.abspath(directory)),
                          f".{os.path.basename(directory)}.{os.getpid()}.part")
    shutil.rmtree(tmpdir, ignore_errors=True)
    os.makedirs(tmpdir)

    def save(model: Any, name: str) -> None:
        _provenance(model, info)
        model.meta.filename = name
        model.save(os.path.join(tmpdir, name))

    try:
        if not hasattr(library, "borrow"):  # a ModelContainer, already in memory
            for model, name in zip(library, names, strict=True):
                save(model, name)
        else:
            with library:
                for index, name in enumerate(names):
                    model = library.borrow(index)
                    try:
                        save(model, name)
                    finally:
                        library.shelve(model, index, modify=False)
        if os.path.exists(directory):
            shutil.rmtree(directory)
        os.replace(tmpdir, directory)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def run_jwst_unit(unit_path: str, unit: dict[str, Any]) -> None:
    """Run the jwst unit ``unit`` (read from ``unit_path``); see the module docstring."""
    from jwpipe import __version__
    from jwpipe.atomic import write_text_atomic
    from jwpipe.stpipe.resources import measure
    from jwpipe.stpipe.step import parameters_hash
    from jwpipe.workflow import integrity
    from jwpipe.workflow.runstep import _input_files

    files = _input_files(unit)
    missing = [p for p in files if not os.path.exists(p)]
    if missing:
        raise WorkflowError(f"input(s) do not exist: {', '.join(missing)}")
    integrity.check_inputs(unit_path, [spec["path"] for spec in unit["inputs"]])
    pars_file = write_parameter_file(unit, parameter_file_path(unit))
    t0 = time.time()
    with _job_environment(unit):
        cls = _jwst_class(unit["class"], (unit.get("jwst") or {}).get("inserted_class"))
        with measure() as stats:
            results = _call(cls, unit, files, pars_file)
    from jwst import __version__ as jwst_version

    info = {
        "jwpipe_version": __version__, "engine": "jwst", "jwst_version": jwst_version,
        "step": unit.get("step"), "class": unit["class"],
        "parameters_hash": parameters_hash(unit["parameters"]),
        "parameter_file": os.path.abspath(pars_file),
        "unit_file": os.path.abspath(unit_path), "references": unit["references"],
        "inputs": [os.path.basename(p) for p in files],
        "wall_time_s": round(stats["wall_time_s"], 3), "peak_rss_mb": stats["peak_rss_mb"],
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t0)),
    }
    outputs = unit["outputs"]
    if len(results) != len(outputs):
        raise WorkflowError(f"jwst step {unit.get('step')} produced {len(results)} result(s) "
                            f"for {len(outputs)} declared output(s)")
    for obj, spec in zip(results, outputs, strict=True):
        _save(obj, spec, info)
    fingerprints = integrity.fingerprints([spec["path"] for spec in outputs],
                                          integrity.workdir_of(unit_path))
    record = unit["record"]
    os.makedirs(os.path.dirname(os.path.abspath(record)), exist_ok=True)
    write_text_atomic(record, json.dumps({**unit, "fingerprints": fingerprints,
                                          "measured": {"wall_time_s": info["wall_time_s"],
                                                       "peak_rss_mb": info["peak_rss_mb"]}},
                                         sort_keys=True, indent=1) + "\n")
