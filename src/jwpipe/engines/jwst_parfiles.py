"""A jwst pipeline parameter file without the steps a workflow inserts into it.

stpipe reads a whole pipeline file (``Detector1Pipeline.call(config_file=...)``) and refuses a
``steps`` entry the pipeline does not have, so an entry with ``insert_after`` (jwpipe's key: a
user's step inserted as a rule of its own) cannot reach it. The planner takes those entries out
and gives stpipe a filtered copy: the same file (same format: ASDF or cfg) minus those entries,
with relative ``config_file`` paths made absolute (they are relative to the user's file, and
the copy lives elsewhere). The user's file is never modified; the copy is written into the
workflow directory (``params/pipeline_files/``) so what stpipe read can be checked.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from jwpipe.errors import WorkflowError

__all__ = ["without_insertions"]


def _absolute(value: Any, base: Path) -> Any:
    if isinstance(value, str) and value and not os.path.isabs(value):
        return str((base / value).resolve())
    return value


def _asdf_bytes(path: Path, names: set[str]) -> bytes:
    import asdf

    with asdf.open(path, lazy_load=False, memmap=False) as af:
        tree = {k: v for k, v in af.tree.items() if k not in ("asdf_library", "history")}
    steps = []
    for entry in tree.get("steps") or []:
        if entry.get("insert_after") or entry.get("name") in names:
            continue
        entry = dict(entry)
        pars = dict(entry.get("parameters") or {})
        if "config_file" in pars:
            pars["config_file"] = _absolute(pars["config_file"], path.parent)
            entry["parameters"] = pars
        steps.append(entry)
    if "steps" in tree:
        tree["steps"] = steps
    buffer = io.BytesIO()
    asdf.AsdfFile(tree).write_to(buffer)
    return buffer.getvalue()


def _cfg_bytes(path: Path, names: set[str]) -> bytes:
    from configobj import ConfigObj

    cfg = ConfigObj(str(path), raise_errors=True)
    steps = cfg.get("steps") or {}
    for name in list(steps):
        if steps[name].get("insert_after") or name in names:
            del steps[name]
        elif "config_file" in steps[name]:
            steps[name]["config_file"] = _absolute(steps[name]["config_file"], path.parent)
    cfg.filename = None
    return "\n".join(cfg.write()).encode() + b"\n"


def without_insertions(path: str | os.PathLike[str], names: Iterable[str]) -> tuple[str, bytes]:
    """The content of a pipeline parameter file without its inserted steps' entries.

    Parameters
    ----------
    path : path
        The user's pipeline parameter file (ASDF or cfg, the formats stpipe reads).
    names : iterable of str
        Names of its ``steps`` entries that are inserted steps (those with ``insert_after``
        are taken out too).

    Returns
    -------
    name, content
        The copy's file name (the user's, same extension) and its bytes.
    """
    source = Path(path)
    wanted = set(names)
    try:
        if source.suffix.lower() == ".asdf":
            data = _asdf_bytes(source, wanted)
        elif source.suffix.lower() == ".cfg":
            data = _cfg_bytes(source, wanted)
        else:
            raise WorkflowError(f"parameter file {path}: a jwst pipeline file with inserted "
                                "steps must be ASDF or cfg (the formats stpipe reads)")
    except WorkflowError:
        raise
    except Exception as exc:  # asdf / configobj raise many kinds
        raise WorkflowError(f"parameter file {path}: {exc}") from None
    return source.name, data
