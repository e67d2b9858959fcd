"""Write a workflow directory from a plan, touching only files whose content changes.

Layout of a workflow directory::

    Snakefile                    rules (one per step)
    plan.json                    per-unit inputs, outputs, memory, runtime; targets (for rules)
    units/<step>/<key>.json      one job's whole contract (run-step reads only this); at
                                 --granularity stage, units/<stage>/<key>.json holds the
                                 units of a stage job's steps instead
    state/<step>/<key>.json      what the outputs were made with (a declared output of the job)
    products/                    every output (intermediates and final products)
    logs/, benchmarks/           per job
    profiles/local/config.yaml   the local Snakemake profile
    generation.json              how it was generated (for `jwpipe make-workflow --again`)
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from jwpipe.atomic import umask, write_text_atomic
from jwpipe.workflow.plan import Plan, plan_workflow
from jwpipe.workflow.snakefile import render_snakefile
from jwpipe.workflow.software import conda_env_text, generating_command
from jwpipe.workflow.wildcards import wildcard_constraints

__all__ = ["canonical_json", "generate_workflow", "write_if_changed", "write_unit_file"]

#: The local Snakemake profile: the one copy (the repository's ``profiles/local`` links to it).
LOCAL_PROFILE = Path(__file__).with_name("profiles") / "local" / "config.yaml"


def canonical_json(data: Any) -> str:
    """Sorted keys, fixed separators: the same meaning always gives the same bytes.

    That is ``json.dumps(data, sort_keys=True, indent=1, separators=(",", ": "))``; written
    by :func:`_encode` where it can (several times faster), by ``json`` otherwise.
    """
    try:
        return _encode(data, "\n") + "\n"
    except _Unusual:
        return json.dumps(data, sort_keys=True, indent=1, separators=(",", ": ")) + "\n"


def unit_text(record: dict[str, Any], memo: dict[int, tuple[Any, str]]) -> str:
    """``canonical_json(record)`` for a unit file, byte for byte, faster: one recursive pass
    without the generator machinery ``json`` uses when indenting, and each distinct
    ``parameters`` dict (units of one step share it: :func:`jwpipe.workflow.plan.
    _unit_parameters`) serialized once. ``memo`` holds those texts (and the dicts, so their ids
    stay unique). Anything unusual (a key that is not a string, a value that is not a JSON
    type, a float that is not finite) is serialized by ``canonical_json`` itself.
    """
    try:
        parts = []
        for key in sorted(record):
            value = record[key]
            if key == "parameters":
                known = memo.get(id(value))
                if known is None or known[0] is not value:
                    known = (value, _encode(value, "\n "))
                    memo[id(value)] = known
                text = known[1]
            else:
                text = _encode(value, "\n ")
            parts.append(f"\n {_string(key)}: {text}")
    except _Unusual:
        return json.dumps(record, sort_keys=True, indent=1, separators=(",", ": ")) + "\n"
    return "{" + ",".join(parts) + "\n}\n" if parts else "{}\n"


class _Unusual(Exception):
    pass


_string = json.encoder.encode_basestring_ascii  # what json.dumps uses (ensure_ascii)


def _encode(value: Any, pad: str) -> str:
    """``value`` as ``json.dumps(sort_keys=True, indent=1, separators=(",", ": "))`` writes
    it at the nesting level whose line start is ``pad``."""
    kind = type(value)
    if kind is str:
        return _string(value)
    if kind is dict:
        if not value:
            return "{}"
        inner = pad + " "
        if not all(type(k) is str for k in value):
            raise _Unusual
        return "{" + ",".join(f"{inner}{_string(k)}: {_encode(value[k], inner)}"
                              for k in sorted(value)) + pad + "}"
    if kind is list or kind is tuple:
        if not value:
            return "[]"
        inner = pad + " "
        return "[" + ",".join(inner + _encode(v, inner) for v in value) + pad + "]"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if kind is int:
        return int.__repr__(value)
    if kind is float and math.isfinite(value):
        return float.__repr__(value)
    raise _Unusual


def write_if_changed(path: Path, text: str) -> bool:
    """Write ``text`` atomically unless the file already holds it; return True if written."""
    try:
        if path.read_text() == text:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text)
    return True


def _write_bytes_if_changed(path: Path, data: bytes) -> None:
    from jwpipe.atomic import atomic_path

    try:
        if path.read_bytes() == data:
            return
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)


def write_unit_file(path: Path, record: dict[str, Any], *, fresh: bool = False,
                    text: str | None = None) -> bool:
    """Write a unit file unless it already holds ``record``; return True if written.

    A new reference context alone does not rewrite it: the job depends on the reference files
    the context selects (their paths, sizes and times are in the file), and the context written
    is the one the existing products were made under, which selected the same files.
    ``fresh``: the file is new, in a directory renamed into place only when complete (written
    directly, not through a temporary file). ``text``: ``canonical_json(record)`` if known.
    """
    return _write_unit(path, record, fresh, text)[0]


def _write_unit(path: Path, record: dict[str, Any], fresh: bool, text: str | None
                ) -> tuple[bool, str]:
    """:func:`write_unit_file`; also the text the file holds afterwards."""
    if text is None:
        text = canonical_json(record)
    if fresh:
        path.write_text(text)
        return True, text
    try:
        old_text = path.read_text()
    except OSError:
        old_text = None
    if old_text == text:
        return False, text
    try:
        old = json.loads(old_text) if old_text is not None else None
    except ValueError:
        old = None
    if _only_context_moved(old, record):
        assert old_text is not None
        return False, old_text
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text)
    return True, text


def _only_context_moved(old: Any, record: dict[str, Any]) -> bool:
    """Whether the unit ``old`` equals ``record`` but for the reference context (which then
    selected the same files: see :func:`write_unit_file`)."""
    if isinstance(old, dict) and isinstance(old.get("references"), dict):
        new_refs = record["references"]
        if old["references"].get("context") is not None and new_refs.get("context") is not None:
            same = {**record, "references": {**new_refs,
                                             "context": old["references"]["context"]}}
            return canonical_json(old) == canonical_json(same)
    return False


def _plan_json(plan: Plan) -> dict[str, Any]:
    constraints, notes = wildcard_constraints(plan)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    units: dict[str, dict[str, Any]] = {}
    for u in plan.units:
        units.setdefault(u.step, {})[u.key] = {
            "inputs": u.input_paths, "outputs": u.output_paths, "mem_mb": u.mem_mb,
            "runtime": u.runtime, "members": u.members, "scope": u.scope,
        }
    return {
        "jwpipe": generating_command(),
        "steps": plan.steps,
        "units": units,
        "targets": plan.targets,
        "exposures": plan.exposures,
        "products": plan.products,
        "exp_regex": constraints["exp"],
        "product_regex": constraints["product"],
        "reference_context": plan.context,
    }


def plan_for_workflow(
    asn_paths: list[str],
    *,
    param_files: list[str] | None = None,
    overrides: dict[str, Any] | None = None,
    input_dir: str | None = None,
    refs: str | None = None,
    stages: list | None = None,
    keep_going: bool = False,
    insert_after: list[str] | None = None,
    until: str | None = None,
) -> Plan:
    """Plan a workflow without writing anything (the reference store from ``refs`` or the
    active one). With ``keep_going``, associations that cannot be planned are listed in
    ``plan.refused`` (see :func:`jwpipe.workflow.plan.plan_workflow`)."""
    from jwpipe.stpipe import refstore

    store = None
    if refs:
        from jwpipe.references import open_cache

        store = open_cache(refs)
    else:
        store = refstore.get_store()
    previous = refstore._ACTIVE[:]
    refstore.set_store(store)  # parameter references are looked up in the same store
    try:
        return plan_workflow(asn_paths, param_files=param_files or [],
                             overrides=overrides or {}, input_dir=input_dir, store=store,
                             stages=stages, keep_going=keep_going,
                             insert_after=insert_after or [], until=until)
    finally:
        refstore._ACTIVE[:] = previous


def generate_workflow(
    asn_paths: list[str],
    workdir: str | os.PathLike[str],
    *,
    param_files: list[str] | None = None,
    overrides: dict[str, Any] | None = None,
    input_dir: str | None = None,
    refs: str | None = None,
    keep: list[str] | None = None,
    group_detector1: bool = False,
    stages: list | None = None,
    keep_going: bool = False,
    pictures: bool = True,
    insert_after: list[str] | None = None,
    until: str | None = None,
    granularity: str = "step",
    engine: str = "jwpipe",
) -> tuple[Plan, dict[str, int]]:
    """Plan and write (or update) a workflow directory.

    ``granularity`` is ``"step"`` (one job per step and exposure) or ``"stage"`` (one job per
    stage and exposure, :mod:`jwpipe.workflow.chain`).

    With ``keep_going``, associations that cannot be planned are listed in ``plan.refused``
    instead of stopping the generation.

    Returns
    -------
    plan, counts
        The plan, and how many unit files (stage units files at stage granularity) were
        written, unchanged and removed.
    """
    if stages is None and engine != "jwpipe":
        from jwpipe.engines import engine_stages

        stages = engine_stages(engine, asn_paths)
    plan = plan_for_workflow(asn_paths, param_files=param_files, overrides=overrides,
                             input_dir=input_dir, refs=refs, stages=stages,
                             keep_going=keep_going, insert_after=insert_after, until=until)
    counts = write_workflow(plan, workdir, asn_paths=asn_paths, param_files=param_files,
                            overrides=overrides, input_dir=input_dir, refs=refs, keep=keep,
                            group_detector1=group_detector1, pictures=pictures,
                            insert_after=insert_after, until=until,
                            granularity=granularity, engine=engine)
    return plan, counts


def write_workflow(
    plan: Plan,
    workdir: str | os.PathLike[str],
    *,
    asn_paths: list[str],
    param_files: list[str] | None = None,
    overrides: dict[str, Any] | None = None,
    input_dir: str | None = None,
    refs: str | None = None,
    keep: list[str] | None = None,
    group_detector1: bool = False,
    pictures: bool = True,
    insert_after: list[str] | None = None,
    until: str | None = None,
    granularity: str = "step",
    engine: str = "jwpipe",
) -> dict[str, int]:
    """Write (or update) the workflow directory of a plan; return the unit-file counts.

    With ``pictures``, the Snakefile also draws the report's pictures
    (:mod:`jwpipe.workflow.report_rules`; ``snakemake --report report.html``).

    A new workflow is written next to its final name and renamed into place when complete, so
    a failure leaves nothing behind.
    """
    target = Path(workdir)
    fresh = not target.exists()
    work = _staging_dir(target) if fresh else target
    try:
        counts = _write_workflow(work, plan, asn_paths, param_files, overrides, input_dir, refs,
                                 keep, group_detector1, pictures,
                                 {"insert_after": list(insert_after or []), "until": until},
                                 granularity, fresh=fresh, engine=engine)
    except BaseException:
        if fresh:
            shutil.rmtree(work, ignore_errors=True)
        raise
    if fresh:
        os.rename(work, target)
    return counts


def _write_stage_units(work: Path, plan: Plan, texts: dict[str, tuple[dict[str, Any], str]],
                       fresh: bool) -> tuple[set[Path], int]:
    """Write each stage job's ``units/<stage>/<key>.json``, holding its steps' units (only where
    its content changes); return their paths and how many were written. ``texts``: each unit's
    record path -> (the unit, its text). A unit that differs from the one in the file only by
    the reference context is kept as it is (:func:`write_unit_file`)."""
    from jwpipe.workflow.chain import stage_units, stage_units_text

    files = []
    for stage, key, units in stage_units(plan):
        files.append((work / "units" / stage / f"{key}.json", stage, key,
                      [texts[u.record_path] for u in units]))

    def write(item: tuple[Path, str, str, list[tuple[dict[str, Any], str]]]) -> bool:
        path, stage, key, members = item
        text = stage_units_text(stage, key, [t for _, t in members])
        if fresh:
            path.write_text(text)
            return True
        try:
            old_text = path.read_text()
        except OSError:
            old_text = None
        if old_text == text:
            return False
        if old_text is not None:
            try:
                old = {u.get("step"): u for u in json.loads(old_text).get("units", [])}
            except (ValueError, AttributeError):
                old = {}
            kept = [(u, canonical_json(old[u["step"]]) if _only_context_moved(
                old.get(u["step"]), u) else t) for u, t in members]
            text = stage_units_text(stage, key, [t for _, t in kept])
        return write_if_changed(path, text)

    if fresh:
        for directory in {item[0].parent for item in files}:
            directory.mkdir(parents=True, exist_ok=True)
    written = _in_threads(write, files)
    return {item[0] for item in files}, sum(written)


def _in_threads(work: Any, items: list[Any]) -> list[Any]:
    """``[work(i) for i in items]`` in four threads, a quarter each: creating and comparing
    files waits on the file system more than on Python, so the waits overlap."""
    if len(items) < 256:
        return [work(i) for i in items]
    from concurrent.futures import ThreadPoolExecutor

    step = -(-len(items) // 4)
    chunks = [items[i:i + step] for i in range(0, len(items), step)]
    with ThreadPoolExecutor(max_workers=len(chunks)) as pool:
        done = pool.map(lambda chunk: [work(i) for i in chunk], chunks)
        return [result for chunk in done for result in chunk]


def _staging_dir(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    work.chmod(0o777 & ~umask())
    return work


def _write_workflow(work: Path, plan: Plan, asn_paths: list[str], param_files: list[str] | None,
                    overrides: dict[str, Any] | None, input_dir: str | None, refs: str | None,
                    keep: list[str] | None, group_detector1: bool, pictures: bool,
                    shape: dict[str, Any], granularity: str = "step", *,
                    fresh: bool = False, engine: str = "jwpipe") -> dict[str, int]:
    from jwpipe import __version__
    from jwpipe.workflow.report_rules import picture_targets, report_caption

    counts = {"written": 0, "unchanged": 0, "removed": 0}
    wanted = set()
    memo: dict[int, tuple[Any, str]] = {}
    jobs = []
    for u in plan.units:
        record = u.record(plan.context)
        jobs.append((work / "units" / u.step / f"{u.key}.json", record,
                     unit_text(record, memo)))
    if granularity == "stage":  # the units go into the stage units files, not files of their own
        paths, written = _write_stage_units(
            work, plan, {record["record"]: (record, text) for _, record, text in jobs}, fresh)
        wanted |= paths
        counts["written"], counts["unchanged"] = written, len(paths) - written
        jobs = []
    if fresh:
        for directory in {path.parent for path, _, _ in jobs}:
            directory.mkdir(parents=True, exist_ok=True)
    done = _in_threads(lambda job: _write_unit(job[0], job[1], fresh, job[2]), jobs)
    for (path, _, _), (written, _) in zip(jobs, done, strict=True):
        wanted.add(path)
        counts["written" if written else "unchanged"] += 1
    for stale in [] if fresh else sorted((work / "units").glob("*/*.json")):
        if stale not in wanted:
            stale.unlink()
            counts["removed"] += 1
    drawn = None
    if pictures:
        drawn = picture_targets(plan.exposures, plan.products,
                                {path for u in plan.units for path in u.output_paths})
        write_if_changed(work / "report" / "workflow.rst",
                         report_caption(len(plan.exposures), plan.products))
    extra: dict[str, Any] = {"pictures": drawn.files() if drawn else []}
    if granularity == "stage":
        from jwpipe.workflow.chain import chain_table

        extra.update(granularity=granularity,
                     chains=chain_table(plan, drawn.inputs() if drawn else set()))
    write_if_changed(work / "plan.json", canonical_json({**_plan_json(plan), **extra}))
    write_if_changed(work / "Snakefile", render_snakefile(
        plan, version=__version__, keep=set(keep) if keep is not None else None,
        group_detector1=group_detector1, pictures=drawn, granularity=granularity))
    write_if_changed(work / "profiles" / "local" / "config.yaml", LOCAL_PROFILE.read_text())
    write_if_changed(work / "envs" / "jwpipe.yaml", conda_env_text())
    generation = {
        "associations": [os.path.abspath(a) for a in asn_paths],
        "param_files": [os.path.abspath(p) for p in param_files or []],
        "overrides": overrides or {},
        "input_dir": os.path.abspath(input_dir) if input_dir else None,
        "refs": os.path.abspath(refs) if refs else None,
        "keep": keep,
        "group_detector1": group_detector1,
        "pictures": pictures,
        **shape,
        "granularity": granularity,
        **({"engine": engine} if engine != "jwpipe" else {}),
    }
    write_if_changed(work / "generation.json", canonical_json(generation))
    for rel, data in plan.files.items():  # e.g. jwst pipeline files without inserted steps
        _write_bytes_if_changed(work / rel, data)
    for sub in ("products", "logs", "benchmarks"):
        (work / sub).mkdir(exist_ok=True)
    return counts
