"""Step libraries a workflow can run: jwpipe's own steps (``jwpipe``) or STScI's ``jwst``.

The workflow generator, the unit files, ``status``/``plan``/``resume`` and the Snakefile are
the same for both; an engine supplies the stages the planner walks (:mod:`jwpipe.workflow.plan`
knows steps only through their declarations) and the code a job runs (``jwpipe run-step``
dispatches on the unit file's ``engine``).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from os import PathLike

from jwpipe.errors import WorkflowError

__all__ = ["ENGINES", "engine_stages", "require_jwst"]

#: The engines ``make-workflow --engine`` accepts.
ENGINES = ("jwpipe", "jwst")


def require_jwst() -> None:
    """Raise a one-line :class:`WorkflowError` saying how to install jwst when it is missing."""
    if importlib.util.find_spec("jwst") is None or importlib.util.find_spec("stpipe") is None:
        raise WorkflowError("--engine jwst needs STScI's jwst package, which is not installed: "
                            "pip install 'jwpipe[jwst]'")


def engine_stages(engine: str | None, asn_paths: Sequence[str | PathLike[str]] = ()
                  ) -> list | None:
    """The stages the planner walks for ``engine`` (None: the planner's default, jwpipe's);
    for jwst, the chain the associations need (spec2: Detector1 and Spec2)."""
    if engine in (None, "jwpipe"):
        return None
    if engine != "jwst":
        raise WorkflowError(f"unknown engine {engine!r} (choose from {', '.join(ENGINES)})")
    require_jwst()
    from jwpipe.engines.jwst_stages import chain_for, jwst_stages

    return jwst_stages(chain_for(asn_paths))
