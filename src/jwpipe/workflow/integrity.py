"""Content integrity of a workflow's products: fingerprints, verification, rebuild commands.

``run-step`` records a fingerprint (size, modification time, SHA-256) of every output in the
unit's state file, and before running checks each input against the fingerprint its producer
recorded; inputs that no unit produced (raw ``_uncal`` files) are checked against their own FITS
``DATASUM``/``CHECKSUM`` cards when they carry them. ``jwpipe status`` compares sizes and
modification times and hashes only files whose time or size moved; ``jwpipe verify`` hashes
everything. A damaged product is reported with the command that rebuilds it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jwpipe.errors import WorkflowError

__all__ = ["Damage", "check_inputs", "damaged_products", "fingerprint", "fingerprints",
           "mismatch", "rebuild_command", "unit_damage", "verify_fits_checksums", "workdir_of"]

def _file_sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _member_files(directory: Path) -> list[Path]:
    """A directory product's files, without hidden ones (Snakemake's ``.snakemake_timestamp``,
    temporary files)."""
    return sorted(f for f in directory.rglob("*") if f.is_file()
                  and not any(part.startswith(".") for part in f.relative_to(directory).parts))


def fingerprint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Size, modification time and SHA-256 of a file, or of a directory's files together."""
    p = Path(path)
    if p.is_dir():
        files = _member_files(p)
        digest = hashlib.sha256()
        size, mtime = 0, 0
        for f in files:
            st = f.stat()
            size, mtime = size + st.st_size, max(mtime, st.st_mtime_ns)
            digest.update(f"{f.relative_to(p)}\0{_file_sha256(f)}\n".encode())
        return {"size": size, "mtime_ns": mtime, "sha256": digest.hexdigest(),
                "files": len(files)}
    st = p.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": _file_sha256(p)}


def fingerprints(paths: list[str], work: Path | None) -> dict[str, dict[str, Any]]:
    """Fingerprints keyed by path relative to the workflow directory (or as given)."""
    return {_key(p, work): fingerprint(p) for p in paths}


def _key(path: str, work: Path | None) -> str:
    if work is None:
        return path
    return os.path.relpath(os.path.abspath(path), work)


def mismatch(path: Path, record: dict[str, Any], *, full: bool) -> str | None:
    """Why ``path`` no longer holds what was recorded, or None if it does.

    Without ``full``, a file whose size and modification time match the record is trusted
    without hashing.
    """
    if not path.exists():
        return "missing"
    now = fingerprint_quick(path)
    if now["size"] != record.get("size"):
        return f"size {record.get('size')} -> {now['size']} bytes"
    if not full and now["mtime_ns"] == record.get("mtime_ns"):
        return None
    if fingerprint(path)["sha256"] != record.get("sha256"):
        return "content differs (SHA-256)"
    return None


def fingerprint_quick(path: Path) -> dict[str, int]:
    """Size and modification time without reading the data."""
    if path.is_dir():
        size, mtime = 0, 0
        for f in _member_files(path):
            st = f.stat()
            size, mtime = size + st.st_size, max(mtime, st.st_mtime_ns)
        return {"size": size, "mtime_ns": mtime}
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def workdir_of(params_file: str | os.PathLike[str]) -> Path | None:
    """The workflow directory of a unit file ``units/<step>/<key>.json`` (None otherwise)."""
    path = Path(params_file).resolve()
    if path.parent.parent.name != "units" or not (path.parents[2] / "plan.json").is_file():
        return None
    return path.parents[2]


def rebuild_command(output: str, work: Path | None = None) -> str:
    """The command that rebuilds one product (and everything made from it).

    In a stage-granularity workflow (:mod:`jwpipe.workflow.chain`) an intermediate is no
    Snakemake output: the command forces its stage job, which redoes the stage from the first
    step whose outputs are not intact.
    """
    plan = (_load(work / "plan.json") or {}) if work is not None else {}
    if plan.get("chains"):
        made_by = [(step, key) for step, units in plan.get("units", {}).items()
                   for key, unit in units.items() if output in unit.get("outputs", [])]
        for step, key in made_by:
            for jobs in plan["chains"].values():
                job = jobs.get(key) or {}
                declared = job.get("outputs") or []
                if step in (job.get("steps") or []) and declared and output not in declared:
                    output = declared[0]
    return f"snakemake --profile profiles/local --forcerun {output}"


def _load(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _producers(work: Path) -> dict[str, tuple[str, str]]:
    plan = _load(work / "plan.json") or {}
    out: dict[str, tuple[str, str]] = {}
    for step, units in (plan.get("units") or {}).items():
        for key, unit in units.items():
            for o in unit.get("outputs", []):
                out[o] = (step, key)
    return out


def verify_fits_checksums(path: str | os.PathLike[str]) -> None:
    """Raise WorkflowError if a FITS file's DATASUM/CHECKSUM cards disagree with its content.

    Files (or HDUs) without the cards pass: nothing was recorded to compare with. The bytes are
    summed as stored (:func:`jwpipe.fits_checksum.verify_file`), headers included, so damage to
    a header's blank cards or fill is caught too.
    """
    from jwpipe.fits_checksum import Unreadable, verify_file

    p = os.fspath(path)
    with open(p, "rb") as fh:
        if fh.read(6) != b"SIMPLE":
            return
    try:
        bad = verify_file(p)
    except Unreadable as exc:
        raise WorkflowError(f"input {p} is not a readable FITS file: {exc}") from None
    if bad:
        raise WorkflowError(f"input {p} fails its FITS checksum ({bad[0]}): the file changed "
                            "after it was written; restore or re-download it")


def check_inputs(params_file: str, inputs: list[str]) -> None:
    """Refuse inputs whose content differs from what their producer recorded.

    Raises
    ------
    WorkflowError
        Naming the input, what differs, and the command that rebuilds it.
    """
    work = workdir_of(params_file)
    producers = _producers(work) if work is not None else {}
    for path in inputs:
        key = _key(path, work)
        up = producers.get(key)
        record = None
        if up is not None and work is not None:
            state = _load(work / "state" / up[0] / f"{up[1]}.json") or {}
            record = (state.get("fingerprints") or {}).get(key)
        if record is None:
            files = _member_files(Path(path)) if os.path.isdir(path) else [Path(path)]
            for f in files:
                if f.suffix == ".fits":
                    verify_fits_checksums(f)
            continue
        why = mismatch(Path(path), record, full=True)
        if why:
            raise WorkflowError(
                f"input {key} is not what {up[0]} wrote ({why}): it was modified or truncated "
                f"after it was made; rebuild it with: {rebuild_command(key)}")


@dataclass
class Damage:
    """A product whose content no longer matches what run-step recorded."""

    step: str
    key: str
    path: str
    reason: str
    work: Path | None = None

    @property
    def command(self) -> str:
        return rebuild_command(self.path, self.work)


def damaged_products(workdir: str | os.PathLike[str], *, full: bool = True) -> list[Damage]:
    """Every recorded product whose content changed (``full=False``: only if size or mtime moved).

    Products with no record (never made, or made before fingerprints were recorded) are skipped;
    missing products are reported by ``jwpipe status`` as pending.
    """
    work = Path(workdir)
    plan = _load(work / "plan.json")
    if plan is None:
        raise WorkflowError(f"{work} is not a jwpipe workflow directory (no plan.json)")
    found = []
    for step, units in (plan.get("units") or {}).items():
        for key, unit in units.items():
            found += unit_damage(work, step, key, unit.get("outputs", []), full=full)
    return found


def unit_damage(work: Path, step: str, key: str, outputs: list[str], *,
                full: bool) -> list[Damage]:
    """The outputs of one unit whose content no longer matches its state file's record."""
    state = _load(work / "state" / step / f"{key}.json") or {}
    records = state.get("fingerprints") or {}
    found = []
    for out in outputs:
        record = records.get(out)
        if record is None or not (work / out).exists():
            continue
        why = mismatch(work / out, record, full=full)
        if why:
            found.append(Damage(step, key, out, why, work))
    return found


def restore_times(workdir: str | os.PathLike[str]) -> tuple[int, list[str]]:
    """Give products whose content matches their record their recorded modification times.

    A copied or restored workflow directory (``cp -r``, a backup) has new modification times in
    arbitrary order, so Snakemake would redo unchanged work. For every unit whose parameters are
    unchanged and whose outputs hash to what ``run-step`` recorded, the outputs get back their
    recorded times and the unit file a time just before them; nothing is rewritten. Returns the
    number of units restored and, for the others, why not.
    """
    work = Path(workdir)
    plan = _load(work / "plan.json")
    if plan is None:
        raise WorkflowError(f"{work} is not a jwpipe workflow directory (no plan.json)")
    from jwpipe.workflow.chain import unit_reader

    read_unit = unit_reader(work, plan)
    in_stage = {(step, key) for jobs in (plan.get("chains") or {}).values()
                for key, job in jobs.items() for step in job.get("steps") or []}
    unit_times: dict[tuple[str, str], int] = {}
    restored, skipped = 0, []
    for step, units in (plan.get("units") or {}).items():
        for key, unit in units.items():
            state = _load(work / "state" / step / f"{key}.json")
            current = read_unit(step, key)
            if state is None or current is None:
                continue
            records = state.get("fingerprints") or {}
            made_with = {k: v for k, v in state.items() if k != "fingerprints"}
            if made_with != current:
                skipped.append(f"{step} {key}: parameters or references changed")
                continue
            outputs = unit.get("outputs", [])
            if not outputs or any(o not in records for o in outputs):
                skipped.append(f"{step} {key}: no content record")
                continue
            bad = [o for o in outputs if mismatch(work / o, records[o], full=True)]
            if bad:
                skipped.append(f"{step} {key}: {bad[0]} differs from its record")
                continue
            for o in outputs:
                _set_time(work / o, int(records[o]["mtime_ns"]))
            first = min(int(records[o]["mtime_ns"]) for o in outputs)
            last = max(int(records[o]["mtime_ns"]) for o in outputs)
            unit_times[(step, key)] = first - 1_000_000
            if (step, key) not in in_stage:
                _set_time(work / "units" / step / f"{key}.json", first - 1_000_000)
            _set_time(work / "state" / step / f"{key}.json", last)  # the record is an output too
            restored += 1
    for stage, jobs in (plan.get("chains") or {}).items():
        for key, job in jobs.items():
            # a stage job's one unit input, where all its steps were trusted: dated just before
            # its last step's outputs, as that step's own unit file would be
            stage_file = work / "units" / stage / f"{key}.json"
            times = [unit_times.get((step, key)) for step in job.get("steps") or []]
            if times and None not in times and stage_file.is_file():
                _set_time(stage_file, max(t for t in times if t is not None))
    return restored, skipped


def _set_time(path: Path, mtime_ns: int) -> None:
    if path.is_dir():
        stamp = path / ".snakemake_timestamp"  # what Snakemake dates a directory output by
        if stamp.exists():
            os.utime(stamp, ns=(mtime_ns, mtime_ns))
    os.utime(path, ns=(mtime_ns, mtime_ns))
