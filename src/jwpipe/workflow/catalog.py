"""Support for the repository's ``workflow/`` (Snakemake workflow-catalog layout).

``workflow/Snakefile`` validates ``config/config.yaml``. The controlling Snakemake process calls
:func:`prepare`, which runs the same generator as ``jwpipe make-workflow`` into the configured
work directory (so both entry points build the same DAG) and returns the generated rules file to
include. A job (a cluster job re-parses the Snakefile) calls :func:`generated_rules`, which only
names that file: jobs never plan.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["check_directory", "generated_rules", "prepare"]


def _stages(names: list[str] | None) -> list | None:
    if not names:
        return None
    from jwpipe.stpipe.registry import resolve_step_class

    return [resolve_step_class(n, what="stage in config 'stages'") for n in names]


def _absolute(path: str | None) -> str | None:
    """A config path, relative to the directory Snakemake was started in."""
    if path is None:
        return None
    return str((Path(os.getcwd()) / os.path.expanduser(path)).resolve())


def check_directory(config: dict[str, Any], directory: Any) -> None:
    """With ``snakemake --directory D``, Snakemake ignores the ``workdir:`` directive, so the
    work directory must be D itself (``workdir: .``); anything else is one clear error.

    Raises
    ------
    WorkflowError
        ``--directory`` was given and the config's ``workdir`` is another directory.
    """
    if directory is None:
        return
    workdir = _absolute(config.get("workdir", "jwpipe-workflow"))
    if Path(workdir) != Path(os.getcwd()).resolve():
        from jwpipe.errors import WorkflowError

        raise WorkflowError(f"snakemake --directory {directory}: Snakemake then ignores the "
                            f"workflow's work directory ({workdir}); set 'workdir: .' in the "
                            "config, or run without --directory")


def generated_rules(config: dict[str, Any]) -> tuple[str, str]:
    """The work directory and its generated Snakefile, as :func:`prepare` left them.

    Raises
    ------
    WorkflowError
        The work directory has not been planned (no Snakefile).
    """
    workdir = _absolute(config.get("workdir", "jwpipe-workflow"))
    rules = Path(workdir) / "Snakefile"
    if not rules.is_file():
        from jwpipe.errors import WorkflowError

        raise WorkflowError(f"{workdir} has no generated Snakefile: a job cannot run before "
                            "the controlling snakemake process has planned the workflow")
    return str(workdir), str(rules)


def prepare(config: dict[str, Any]) -> tuple[str, str]:
    """Plan and write (or update) the work directory described by ``config``.

    Returns
    -------
    workdir, snakefile : str
        Absolute work directory and the generated Snakefile to ``include:``.
    """
    from jwpipe.workflow.generate import generate_workflow

    workdir = _absolute(config.get("workdir", "jwpipe-workflow"))
    keep = config.get("keep", "all")
    generate_workflow(
        [_absolute(a) for a in config["associations"]],
        workdir,
        param_files=[_absolute(p) for p in config.get("parameter_files") or []],
        overrides=config.get("overrides") or {},
        input_dir=_absolute(config.get("input_dir")),
        refs=_absolute(config.get("refs")),
        keep=None if keep == "all" else [] if keep == "none" else list(keep),
        group_detector1=bool(config.get("group_detector1", False)),
        granularity=config.get("granularity", "step"),
        stages=_stages(config.get("stages")),
        insert_after=list(config.get("insert_after") or []),
        until=config.get("until"),
        engine=config.get("engine", "jwpipe"),
    )
    return generated_rules(config)
