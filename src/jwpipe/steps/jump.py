"""``JumpStep``: flag cosmic-ray jumps with the two-point-difference method."""

from __future__ import annotations

from typing import Any

import numpy as np

from jwpipe.algorithms import _dq
from jwpipe.algorithms.jump import detect_jumps
from jwpipe.steps._common import (
    check_ramp,
    load_gain_readnoise,
)
from jwpipe.stpipe import Step

__all__ = ["JumpStep"]

#: Parameters of jwst's optional jump features that jwpipe does not implement, and the value
#: that means "off".
_NOT_IMPLEMENTED = {
    "expand_large_events": False,
    "find_showers": False,
    "after_jump_flag_dn1": 0.0,
    "after_jump_flag_time1": 0.0,
    "after_jump_flag_dn2": 0.0,
    "after_jump_flag_time2": 0.0,
}


class JumpStep(Step):
    """Flag JUMP_DET on the group after each outlying first difference (cosmic rays).

    Differences are compared, in electrons, with the pixel's clipped median difference and
    expected noise; thresholds are ``rejection_threshold`` (>= 4 usable differences),
    ``four_group_rejection_threshold`` (3) and ``three_group_rejection_threshold`` (2).
    Jumps between ``min_jump_to_flag_neighbors`` and ``max_jump_to_flag_neighbors`` sigma
    also flag the 4 neighbours. SKIPPED with fewer than 3 groups. Snowball/shower expansion,
    after-jump flagging and sigma clipping over >= 100 integrations are not implemented: their
    parameters are accepted and a warning is logged when they are switched on.
    """

    class_alias = "jump"
    spec = """
    rejection_threshold = float(default=4.0)  # CR sigma rejection threshold
    three_group_rejection_threshold = float(default=6.0)  # Threshold with 3 groups
    four_group_rejection_threshold = float(default=5.0)  # Threshold with 4 groups
    maximum_cores = string(default='1')  # Accepted for compatibility; jwpipe runs one process
    flag_4_neighbors = boolean(default=True)  # Flag the four perpendicular neighbours of each CR
    max_jump_to_flag_neighbors = float(default=1000)  # Max jump sigma flagging neighbours
    min_jump_to_flag_neighbors = float(default=10)  # Min jump sigma flagging neighbours
    after_jump_flag_dn1 = float(default=0)  # After-jump flagging (not implemented)
    after_jump_flag_time1 = float(default=0)  # After-jump flagging (not implemented)
    after_jump_flag_dn2 = float(default=0)  # After-jump flagging (not implemented)
    after_jump_flag_time2 = float(default=0)  # After-jump flagging (not implemented)
    expand_large_events = boolean(default=False)  # Not implemented: snowball flagging
    min_sat_area = float(default=1.0)  # Snowballs (not implemented)
    min_jump_area = float(default=5.0)  # Snowballs (not implemented)
    expand_factor = float(default=2.0)  # Snowballs (not implemented)
    use_ellipses = boolean(default=False)  # Deprecated; snowballs (not implemented)
    sat_required_snowball = boolean(default=True)  # Snowballs (not implemented)
    min_sat_radius_extend = float(default=2.5)  # Snowballs (not implemented)
    sat_expand = integer(default=2)  # Snowballs (not implemented)
    edge_size = integer(default=25)  # Snowballs (not implemented)
    mask_snowball_core_next_int = boolean(default=True)  # Snowballs (not implemented)
    snowball_time_masked_next_int = integer(default=4000)  # Snowballs (not implemented)
    find_showers = boolean(default=False)  # Not implemented: MIRI shower flagging
    max_shower_amplitude = float(default=4)  # Showers (not implemented)
    extend_snr_threshold = float(default=1.2)  # Showers (not implemented)
    extend_min_area = integer(default=90)  # Showers (not implemented)
    extend_inner_radius = float(default=1)  # Showers (not implemented)
    extend_outer_radius = float(default=2.6)  # Showers (not implemented)
    extend_ellipse_expand_ratio = float(default=1.1)  # Showers (not implemented)
    time_masked_after_shower = float(default=15)  # Showers (not implemented)
    min_diffs_single_pass = integer(default=10)  # Min differences for one pass
    max_extended_radius = integer(default=200)  # Showers/snowballs (not implemented)
    minimum_groups = integer(default=3)  # Minimum number of groups to run jump detection
    minimum_sigclip_groups = integer(default=100)  # Sigma clipping (not implemented)
    only_use_ints = boolean(default=True)  # Sigma clipping (not implemented)
    """
    reference_file_types = ["gain", "readnoise"]
    workflow_memory = (2.6, 250.0)

    def process(self, input: Any) -> Any:
        model = self.prepare_input(input)
        check_ramp(model, self.qualified_name)
        for key, off in _NOT_IMPLEMENTED.items():
            if getattr(self, key) != off:
                self.log.warning("%s=%r: not implemented in jwpipe, ignored", key,
                                 getattr(self, key))
        ngroups = model.shape[1]
        if ngroups < 3:
            self.log.warning("NGROUPS=%d: jump detection needs at least 3 groups; step skipped",
                             ngroups)
            self.record_step_status(model, "SKIPPED")
            return model
        gain, readnoise, _ = load_gain_readnoise(self, model)
        result = detect_jumps(
            model.data, model.groupdq, model.pixeldq, gain, readnoise,
            nframes=int(model.meta.exposure.nframes or 1),
            rejection_threshold=self.rejection_threshold,
            three_group_rejection_threshold=self.three_group_rejection_threshold,
            four_group_rejection_threshold=self.four_group_rejection_threshold,
            flag_4_neighbors=self.flag_4_neighbors,
            max_jump_to_flag_neighbors=self.max_jump_to_flag_neighbors,
            min_jump_to_flag_neighbors=self.min_jump_to_flag_neighbors,
            min_diffs_single_pass=self.min_diffs_single_pass,
            minimum_groups=max(3, self.minimum_groups),
        )
        if result.skipped:
            self.log.warning("Too few usable groups for jump detection: step skipped")
            self.record_step_status(model, "SKIPPED")
            return model
        self.log.info("%d jumps flagged (+%d neighbour flags)", result.n_primary,
                      result.n_neighbors)
        self._record_rate(model, result.n_primary)
        return model

    @staticmethod
    def _record_rate(model: Any, n_primary: int) -> None:
        """PRIMECRS: primary cosmic rays per 1000 pixels per second, as jwst computes it."""
        nints, ngroups, ny, nx = model.shape
        tgroup = model.meta.exposure.group_time
        all_dnu = sum(
            int(np.all(model.groupdq[i, g] & _dq.DO_NOT_USE))
            for i in range(nints) for g in range(ngroups)
        )
        n_used = nints * ngroups - all_dnu - nints
        if tgroup and n_used > 0:
            model.meta.exposure.primary_cosmic_rays = float(
                1000.0 * n_primary / (float(tgroup) * n_used * ny * nx))
