"""Support for the repository's ``workflow/`` (Snakemake workflow-catalog layout).

``workflow/Snakefile`` validates ``config/config.yaml`` and calls :func:`prepare`, which runs the
same generator as ``jwpipe make-workflow`` into the configured work directory and returns the
generated rules file to include, so both entry points build the same DAG.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["prepare"]


def _stages(names: list[str] | None) -> list | None:
    if not names:
        return None
    from jwpipe.stpipe.registry import resolve_step_class

    return [resolve_step_class(n, what="stage in config 'stages'") for n in names]


def prepare(config: dict[str, Any], basedir: str | os.PathLike[str] = ".") -> tuple[str, str]:
    """Generate (or update) the work directory described by ``config``.

    Returns
    -------
    workdir, snakefile : str
        Absolute work directory and the generated Snakefile to ``include:``.
    """
    from jwpipe.workflow.generate import generate_workflow

    base = Path(os.getcwd())

    def absolute(p: str | None) -> str | None:
        return None if p is None else str((base / os.path.expanduser(p)).resolve())

    workdir = absolute(config.get("workdir", "jwpipe-workflow"))
    keep = config.get("keep", "all")
    generate_workflow(
        [absolute(a) for a in config["associations"]],
        workdir,
        param_files=[absolute(p) for p in config.get("parameter_files") or []],
        overrides=config.get("overrides") or {},
        input_dir=absolute(config.get("input_dir")),
        refs=absolute(config.get("refs")),
        keep=None if keep == "all" else [] if keep == "none" else list(keep),
        group_detector1=bool(config.get("group_detector1", False)),
        stages=_stages(config.get("stages")),
    )
    return str(workdir), str(Path(workdir) / "Snakefile")
