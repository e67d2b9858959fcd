"""The step framework: :class:`Step`, :class:`Pipeline`, parameter files, naming, the strun CLI.

The Python and command-line interface follow STScI's ``stpipe``; the deliberate differences are
listed in ``docs/framework.md``.
"""

from jwpipe.errors import ValidationError
from jwpipe.stpipe.config_file import StepConfig, load_parameter_file, write_parameter_file
from jwpipe.stpipe.hooks import allow_shell_hooks
from jwpipe.stpipe.pipeline import Pipeline
from jwpipe.stpipe.refstore import get_store, set_store
from jwpipe.stpipe.registry import allow_class_paths, resolve_step_class
from jwpipe.stpipe.step import Step, preserve_step_pars

__all__ = [
    "Pipeline",
    "Step",
    "StepConfig",
    "ValidationError",
    "allow_class_paths",
    "allow_shell_hooks",
    "get_store",
    "load_parameter_file",
    "preserve_step_pars",
    "resolve_step_class",
    "set_store",
    "write_parameter_file",
]
