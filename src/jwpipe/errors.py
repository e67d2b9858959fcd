"""Exceptions shared by every layer.

Every error that is the user's to fix (bad input file, bad parameter, missing reference, ...)
derives from :class:`JwpipeError`. The command line prints such errors as one line, without a
traceback, and exits non-zero; anything else is a bug and keeps its traceback.
"""


class JwpipeError(Exception):
    """Base class of all user-facing jwpipe errors."""


class ValidationError(JwpipeError, ValueError):
    """A parameter, parameter file or configuration is invalid."""


class DataModelError(JwpipeError, ValueError):
    """A data file cannot be read as the requested model (not FITS, truncated, wrong shape...)."""


class ReferenceFileError(JwpipeError):
    """A reference file is missing, unreadable or does not match the data."""


class AssociationError(JwpipeError, ValueError):
    """An association file is malformed or unsafe."""


class WorkflowError(JwpipeError):
    """A workflow cannot be generated, run or resumed."""


class StepInputError(JwpipeError, ValueError):
    """The data given to a step cannot be processed by it (wrong dimensionality, all NaN...)."""
