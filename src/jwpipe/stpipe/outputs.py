"""What a step writes, declared once as data.

Each Step class lists its outputs in ``outputs``, in the order its ``process`` returns them, in
the manner of the "connections" of lsst ``pipe_base``: a step says what it produces, and
everything that names, plans, saves or keeps products reads that one declaration (``Step``
saving, the workflow planner and, through the unit files, ``jwpipe run-step``)::

    class RampFitStep(Step):
        outputs = (Output("rate", "ImageModel"), Output("rateints", "CubeModel"))

    class ResampleStep(Step):
        outputs = (Output("i2d", "ImageModel", per="product", stage_product=True),)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Output"]

_PER = ("exposure", "product")


@dataclass(frozen=True)
class Output:
    """One declared output of a step.

    Parameters
    ----------
    suffix : str or None
        File-name suffix (``rate``, ``crf``, ``i2d``). None: the step's alias (intermediates
        such as ``_jump``).
    model : str or None
        The datamodel class written (``"CubeModel"``), ``"Table"`` for an astropy table (written
        as ECSV), or None for the input's own type.
    per : {"exposure", "product"}
        One output per exposure, or one for the whole association product (the step combines
        the members). A product-scope step's per-exposure output is a directory holding one
        file per member.
    stage_product : bool
        A product users keep (never deleted as an intermediate): ``_crf``, ``_i2d``, ``_cat``.
    """

    suffix: str | None = None
    model: str | None = None
    per: str = "exposure"
    stage_product: bool = False

    def __post_init__(self) -> None:
        if self.per not in _PER:
            raise ValueError(f"Output.per must be one of {', '.join(_PER)}, not {self.per!r}")
        if self.suffix is not None and not self.suffix.replace("_", "").isalnum():
            raise ValueError(f"Output suffix {self.suffix!r} is not a plain word")

    @property
    def kind(self) -> str:
        """``"table"`` for a table, else ``"file"`` (a model)."""
        return "table" if self.model == "Table" else "file"

    @property
    def ext(self) -> str:
        """The file extension of this output."""
        return ".ecsv" if self.kind == "table" else ".fits"
