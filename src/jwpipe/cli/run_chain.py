"""``jwpipe run-chain``: run one stage job of a workflow (see :mod:`jwpipe.workflow.chain`)."""

from jwpipe.workflow.chain import main

__all__ = ["main"]
