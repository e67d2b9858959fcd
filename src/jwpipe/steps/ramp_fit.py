"""``RampFitStep``: fit count rates to the calibrated ramps (rate and rateints products)."""

from __future__ import annotations

from typing import Any

import numpy as np

from jwpipe.algorithms import _dq
from jwpipe.algorithms.ramp_fit import RampFitProducts, fit_ramps
from jwpipe.errors import StepInputError, ValidationError
from jwpipe.steps._common import check_ramp, load_gain_readnoise
from jwpipe.stpipe import Step
from jwpipe.stpipe.outputs import Output

__all__ = ["RampFitStep"]


def _product(cls: type, source: Any, fit: RampFitProducts) -> Any:
    """A rate (ImageModel) or rateints (CubeModel) carrying the ramp's metadata."""
    out = cls(source)
    out.data = fit.data
    out.dq = fit.dq
    out.err = fit.err
    out.var_poisson = fit.var_poisson
    out.var_rnoise = fit.var_rnoise
    out.meta.bunit_data = "DN/s"
    out.meta.bunit_err = "DN/s"
    return out


class RampFitStep(Step):
    """Segment-wise optimally weighted least-squares slopes (jwst ``OLS_C``).

    Returns ``(rate, rateints)``: an ImageModel and a CubeModel with SCI, ERR, DQ, VAR_POISSON
    and VAR_RNOISE in DN/s. Ramps are split at JUMP_DET groups; SATURATED and DO_NOT_USE groups
    are excluded. Pixels saturated from group 0 (or with every group unusable) get NaN with
    DO_NOT_USE (and SATURATED) in DQ. Copies GAINFACT from the gain reference to
    ``meta.exposure.gain_factor``. Only ``algorithm='OLS_C'`` with optimal weighting is
    implemented; ``save_opt`` (the _fitopt product) is not.
    """

    class_alias = "ramp_fit"
    spec = """
    algorithm = option('OLS_C', 'LIKELY', default='OLS_C')  # Algorithm (OLS_C only)
    int_name = string(default='')  # Name of the rateints output (unused: the pipeline names it)
    save_opt = boolean(default=False)  # Save the optional _fitopt product (not implemented)
    opt_name = string(default='')  # Name of the optional output (not implemented)
    suppress_one_group = boolean(default=True)  # Ignore one-good-group ramps
    firstgroup = integer(default=None)  # First group fitted (0-based)
    lastgroup = integer(default=None)  # Last group fitted (0-based)
    maximum_cores = string(default='1')  # Accepted for compatibility; jwpipe runs one process
    """
    reference_file_types = ["readnoise", "gain"]
    #: Weighting of the least-squares fit (jwst class attribute; only "optimal" exists).
    weighting = "optimal"
    outputs = (Output("rate", "ImageModel"), Output("rateints", "CubeModel"))
    workflow_memory = (1.6, 250.0)

    def process(self, input: Any) -> tuple[Any, Any]:
        from jwpipe.datamodels import CubeModel, ImageModel

        model = self.prepare_input(input)
        check_ramp(model, self.qualified_name)
        if self.algorithm != "OLS_C":
            raise ValidationError(
                f"{self.qualified_name}: algorithm='{self.algorithm}' is not implemented in "
                "jwpipe; use 'OLS_C'")
        if self.save_opt:
            raise ValidationError(
                f"{self.qualified_name}: save_opt=True (the _fitopt product) is not implemented "
                "in jwpipe")
        gain, readnoise, gain_model = load_gain_readnoise(self, model)
        factor = gain_model.meta.exposure.gain_factor
        if factor is not None:
            model.meta.exposure.gain_factor = float(factor)
        self._limit_groups(model)
        exp = model.meta.exposure
        if not exp.group_time or not exp.frame_time:
            raise StepInputError(
                f"{self.qualified_name}: TGROUP and TFRAME must be set and positive "
                f"(got {exp.group_time}, {exp.frame_time})")
        rate, ints = fit_ramps(
            model.data, model.groupdq, model.pixeldq, readnoise, gain,
            group_time=float(exp.group_time), frame_time=float(exp.frame_time),
            nframes=int(exp.nframes or 1),
            average_dark_current=model.average_dark_current,
            suppress_one_group=self.suppress_one_group,
        )
        if not np.isfinite(rate.data).any():
            if np.isnan(model.data).all():
                raise StepInputError(
                    f"{self.qualified_name}: every value of the ramp is NaN; nothing to fit")
            self.log.warning("No pixel has a usable ramp (all saturated or DO_NOT_USE): the "
                             "rate is NaN everywhere, with the reasons in DQ")
        n_sat0 = int(np.count_nonzero((rate.dq & _dq.DO_NOT_USE) & ~model.pixeldq.astype(bool)))
        self.log.info("Ramps fitted; %d pixels without a usable ramp", n_sat0)
        return _product(ImageModel, model, rate), _product(CubeModel, model, ints)

    def _limit_groups(self, model: Any) -> None:
        ngroups = model.shape[1]
        first, last = self.firstgroup, self.lastgroup
        for name, value in (("firstgroup", first), ("lastgroup", last)):
            if value is not None and not 0 <= value < ngroups:
                raise ValidationError(
                    f"{self.qualified_name}: {name}={value} is outside 0..{ngroups - 1}")
        if first is not None and last is not None and first > last:
            raise ValidationError(
                f"{self.qualified_name}: firstgroup={first} is after lastgroup={last}")
        dnu = np.uint8(_dq.DO_NOT_USE)
        if first:
            model.groupdq[:, :first] |= dnu
        if last is not None and last < ngroups - 1:
            model.groupdq[:, last + 1:] |= dnu
