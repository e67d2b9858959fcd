"""``jwpipe run-step``: run one step as a workflow job (see :mod:`jwpipe.workflow.runstep`)."""

from jwpipe.workflow.runstep import main

__all__ = ["main"]
