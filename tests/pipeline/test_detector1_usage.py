"""Every documented way of running Detector1Pipeline works (small simulated data + store)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jwpipe import datamodels
from jwpipe.pipeline import Detector1Pipeline
from jwpipe.steps import SaturationStep
from jwpipe.stpipe.refstore import set_store

ROOT = "jw01234001001_02101_00001_nrca1"


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    from jwpipe.simulate import simulate_field

    return simulate_field(tmp_path_factory.mktemp("d1use"), n_exposures=1, size=48, ngroups=6,
                          seed=5, cr_rate=2e-4, frame_time=10.73677)


@pytest.fixture
def uncal(sim, tmp_cwd):
    """A private copy of the uncal in the test's own working directory; store active."""
    path = tmp_cwd / "in" / sim.uncal_files[0].name
    path.parent.mkdir()
    shutil.copy(sim.uncal_files[0], path)
    set_store(sim.store_dir)
    yield str(path)
    set_store(None)


def _ref(sim, reftype: str) -> str:
    return str(next(sim.store_dir.rglob(f"jwst_nircam_{reftype}_*.fits")))


def test_call_save_results_writes_rate_and_rateints_in_cwd(uncal, tmp_cwd):
    before = Path(uncal).read_bytes()
    rate = Detector1Pipeline.call(uncal, save_results=True)
    assert isinstance(rate, datamodels.ImageModel)
    assert sorted(p.name for p in tmp_cwd.glob("*.fits")) == [
        f"{ROOT}_rate.fits", f"{ROOT}_rateints.fits"]
    assert Path(uncal).read_bytes() == before  # the input is never modified
    with datamodels.open(tmp_cwd / f"{ROOT}_rate.fits") as saved:
        assert saved.meta.bunit_data == "DN/s"
        np.testing.assert_array_equal(saved.data, rate.data)
        for key in ("group_scale", "dq_init", "saturation", "superbias", "refpix",
                    "linearity", "dark_sub", "jump", "ramp_fit", "gain_scale"):
            assert getattr(saved.meta.cal_step, key) in ("COMPLETE", "SKIPPED"), key
        assert saved.meta.cal_step.dq_init == "COMPLETE"
        assert saved.meta.cal_step.dark_sub == "COMPLETE"
        assert saved.meta.ref_file.saturation.name.startswith("crds://jwst_nircam_saturation")
        for name in ("var_poisson", "var_rnoise", "err"):
            assert getattr(saved, name).shape == rate.data.shape
    with datamodels.open(tmp_cwd / f"{ROOT}_rateints.fits") as ints:
        assert isinstance(ints, datamodels.CubeModel)
        assert ints.data.shape == (1, 48, 48)
        assert ints.meta.cal_step.gain_scale == "COMPLETE"


def test_call_without_saving_writes_nothing(uncal, tmp_cwd):
    Detector1Pipeline.call(uncal)
    assert not list(tmp_cwd.glob("*.fits"))


def test_output_file(uncal, tmp_cwd):
    Detector1Pipeline.call(uncal, output_file="custom")
    assert sorted(p.name for p in tmp_cwd.glob("*.fits")) == [
        "custom_rate.fits", "custom_rateints.fits"]


def test_output_dir(uncal, tmp_cwd):
    Detector1Pipeline.call(uncal, save_results=True, output_dir="out",
                           save_calibrated_ramp=True)
    assert sorted(p.name for p in (tmp_cwd / "out").glob("*.fits")) == [
        f"{ROOT}_ramp.fits", f"{ROOT}_rate.fits", f"{ROOT}_rateints.fits"]
    assert not list(tmp_cwd.glob("*.fits"))
    with datamodels.open(tmp_cwd / "out" / f"{ROOT}_ramp.fits") as ramp:
        assert isinstance(ramp, datamodels.RampModel)
        assert ramp.meta.cal_step.jump == "COMPLETE"


def test_step_parameter_changes_the_result(uncal):
    base = Detector1Pipeline.call(uncal)
    high = Detector1Pipeline.call(uncal, steps={"jump": {"rejection_threshold": 12.0}})
    assert np.count_nonzero(base.dq & 4) > np.count_nonzero(high.dq & 4)


def test_skip_saturation(uncal):
    rate = Detector1Pipeline.call(uncal, steps={"saturation": {"skip": True}})
    assert rate.meta.cal_step.saturation == "SKIPPED"
    assert rate.meta.cal_step.dq_init == "COMPLETE"


def test_override_saturation(sim, uncal, tmp_cwd):
    # an override that differs from the store's choice: thresholds 150 DN above the bias
    low = datamodels.open(_ref(sim, "saturation")).copy()
    low.data = datamodels.open(_ref(sim, "superbias")).data + np.float32(150.0)
    low.save(str(tmp_cwd / "my_saturation.fits"))
    rate = Detector1Pipeline.call(
        uncal, steps={"saturation": {"override_saturation": str(tmp_cwd / "my_saturation.fits")}})
    assert rate.meta.ref_file.saturation.name.endswith("my_saturation.fits")
    default = Detector1Pipeline.call(uncal)
    assert np.count_nonzero(rate.dq & 2) > np.count_nonzero(default.dq & 2)


def test_config_file(uncal, tmp_cwd):
    pipe = Detector1Pipeline(steps={"jump": {"rejection_threshold": 12.0},
                                    "refpix": {"skip": True}})
    pipe.export_config(str(tmp_cwd / "my_config_file.asdf"))
    rate = Detector1Pipeline.call(uncal, config_file="my_config_file.asdf")
    assert rate.meta.cal_step.refpix == "SKIPPED"
    ref = Detector1Pipeline.call(uncal, steps={"jump": {"rejection_threshold": 12.0},
                                               "refpix": {"skip": True}})
    np.testing.assert_array_equal(rate.data, ref.data)


def test_saturation_save_results_inside_pipeline(uncal, tmp_cwd):
    Detector1Pipeline.call(uncal, steps={"saturation": {"save_results": True}})
    assert [p.name for p in tmp_cwd.glob("*.fits")] == [f"{ROOT}_saturation.fits"]
    with datamodels.open(tmp_cwd / f"{ROOT}_saturation.fits") as sat:
        assert sat.meta.cal_step.saturation == "COMPLETE"
        assert sat.meta.cal_step.superbias is None  # saved right after the step


def test_standalone_saturation_step(uncal, tmp_cwd):
    result = SaturationStep.call(uncal, save_results=True)
    assert [p.name for p in tmp_cwd.glob("*.fits")] == [f"{ROOT}_saturation.fits"]
    assert result.meta.cal_step.saturation == "COMPLETE"


def test_run_with_attributes(uncal):
    pipe = Detector1Pipeline()
    pipe.jump.rejection_threshold = 12
    pipe.ramp_fit.skip = True
    result = pipe.run(uncal)
    assert isinstance(result, datamodels.RampModel)
    assert result.meta.cal_step.ramp_fit == "SKIPPED"
    assert result.meta.cal_step.jump == "COMPLETE"
    assert result.meta.cal_step.gain_scale is None
    assert pipe.jump.rejection_threshold == 12


def test_ramp_fit_skipped_saves_ramp_suffix(uncal, tmp_cwd):
    Detector1Pipeline.call(uncal, save_results=True, steps={"ramp_fit": {"skip": True}})
    assert [p.name for p in tmp_cwd.glob("*.fits")] == [f"{ROOT}_ramp.fits"]


def test_model_input_is_not_modified(uncal):
    model = datamodels.open(uncal)
    before = model.data.copy()
    Detector1Pipeline.call(model)
    np.testing.assert_array_equal(model.data, before)
    assert model.meta.cal_step.dq_init is None


def test_full_metadata_has_every_step(uncal):
    pipe = Detector1Pipeline()
    pipe.run(uncal)
    meta = pipe.get_full_metadata()
    for name in Detector1Pipeline.step_names():
        assert meta[f"Detector1Pipeline.{name}"]["wall_time_s"] >= 0


def test_rate_input_is_refused(uncal, tmp_cwd):
    from jwpipe.errors import StepInputError

    Detector1Pipeline.call(uncal, save_results=True)
    with pytest.raises(StepInputError, match="needs an _uncal ramp"):
        Detector1Pipeline.call(str(tmp_cwd / f"{ROOT}_rate.fits"))


def test_strun_command_line(sim, uncal, tmp_cwd):
    env = {k: v for k, v in os.environ.items() if k != "JWPIPE_REFS"}
    proc = subprocess.run(
        [sys.executable, "-m", "jwpipe", "strun", "calwebb_detector1", uncal,
         "--refs", str(sim.store_dir), "--steps.jump.rejection_threshold=5"],
        cwd=tmp_cwd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_cwd.glob("*.fits")) == [
        f"{ROOT}_rate.fits", f"{ROOT}_rateints.fits"]
    with datamodels.open(tmp_cwd / f"{ROOT}_rate.fits") as rate:
        direct = Detector1Pipeline.call(uncal, steps={"jump": {"rejection_threshold": 5.0}})
        np.testing.assert_array_equal(rate.data, direct.data)
