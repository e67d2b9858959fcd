"""The documented parameter precedence, layer by layer (table driven)."""

from __future__ import annotations

import pytest
from teststeps import AddStep, LayeredPipeline, TinyModel

from jwpipe.stpipe import StepConfig, write_parameter_file

# Highest first, as in docs/framework.md: (layer name, value of add.amount it sets)
PIPELINE_LAYERS = [
    ("kwargs", 1.5),
    ("user_file", 2.0),
    ("referenced_file", 3.0),
    ("store_pipeline_pars", 4.0),
    ("store_step_pars", 5.0),
    ("pipeline_defaults", 6.0),
    ("step_defaults", 1.0),
]


def _write(path, cls_name, params=None, steps=None):
    cfg = StepConfig(cls_name, None, params or {},
                     [StepConfig(None, n, p) for n, p in (steps or {}).items()])
    return write_parameter_file(cfg, path)


def _setup(tmp_path, store, active: set[str]):
    """Create the layers named in ``active``; return call kwargs."""
    kwargs: dict = {}
    files = {}
    if "store_step_pars" in active:
        files["pars-addstep"] = _write(tmp_path / "pars-addstep.asdf", "AddStep",
                                       {"amount": 5.0})
    if "store_pipeline_pars" in active:
        files["pars-layeredpipeline"] = _write(
            tmp_path / "pars-layeredpipeline.asdf", "LayeredPipeline", {},
            {"add": {"amount": 4.0}})
    store.files.update(files)
    entry = {}
    if "referenced_file" in active:
        _write(tmp_path / "ref_add.asdf", "AddStep", {"amount": 3.0})
        entry["config_file"] = "ref_add.asdf"
    if "user_file" in active:
        entry["amount"] = 2.0
    if entry or "user_file" in active:
        kwargs["config_file"] = _write(tmp_path / "user.asdf", "LayeredPipeline", {},
                                       {"add": entry})
    if "kwargs" in active:
        kwargs["steps"] = {"add": {"amount": 1.5}}
    return kwargs


@pytest.mark.parametrize("top", range(len(PIPELINE_LAYERS)))
def test_seven_layers_for_a_step_in_a_pipeline(tmp_cwd, store, top):
    """With layers ``top`` .. 7 present, layer ``top`` decides the value."""
    active = {name for name, _ in PIPELINE_LAYERS[top:]}
    kwargs = _setup(tmp_cwd, store, active)
    kwargs.setdefault("steps", {}).setdefault("add", {})["override_gain"] = "N/A"
    result = LayeredPipeline.call(TinyModel(0.0, "x_uncal.fits"), **kwargs)
    # the pipeline adds 'amount' then scales by 2
    expected = PIPELINE_LAYERS[top][1]
    if PIPELINE_LAYERS[top][0] == "step_defaults":  # LayeredPipeline always has coded defaults
        expected = 6.0
    assert result.value == pytest.approx(2 * expected)


def test_referenced_file_beats_store_pars(tmp_cwd, store):
    """stpipe's call() let the store beat a file referenced from the user's file; not here."""
    kwargs = _setup(tmp_cwd, store, {"referenced_file", "store_pipeline_pars",
                                     "store_step_pars"})
    kwargs["steps"] = {"add": {"override_gain": "N/A"}}
    result = LayeredPipeline.call(TinyModel(0.0, "x.fits"), **kwargs)
    assert result.value == pytest.approx(6.0)


STEP_LAYERS = [("kwargs", 1.5), ("user_file", 2.0), ("store_step_pars", 5.0),
               ("step_defaults", 1.0)]


@pytest.mark.parametrize("top", range(len(STEP_LAYERS)))
def test_four_layers_for_a_step_alone(tmp_cwd, store, top):
    active = {name for name, _ in STEP_LAYERS[top:]}
    kwargs: dict = {"override_gain": "N/A"}
    if "store_step_pars" in active:
        store.files["pars-addstep"] = _write(tmp_cwd / "pars.asdf", "AddStep", {"amount": 5.0})
    if "user_file" in active:
        kwargs["config_file"] = _write(tmp_cwd / "user.asdf", "AddStep", {"amount": 2.0})
    if "kwargs" in active:
        kwargs["amount"] = 1.5
    result = AddStep.call(TinyModel(10.0, "x.fits"), **kwargs)
    assert result.value == pytest.approx(10.0 + STEP_LAYERS[top][1])


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "True", "yes", "Y", "on", "t"])
@pytest.mark.parametrize("var", ["STPIPE_DISABLE_CRDS_STEPPARS", "JWPIPE_DISABLE_REF_STEPPARS"])
def test_env_disables_store_pars_with_any_truthy_spelling(tmp_cwd, store, monkeypatch, var,
                                                          value):
    store.files["pars-addstep"] = _write(tmp_cwd / "pars.asdf", "AddStep", {"amount": 5.0})
    monkeypatch.setenv(var, value)
    result = AddStep.call(TinyModel(0.0, "x.fits"), override_gain="N/A")
    assert result.value == 1.0


@pytest.mark.parametrize("value", ["0", "false", "no", ""])
def test_env_falsy_keeps_store_pars(tmp_cwd, store, monkeypatch, value):
    store.files["pars-addstep"] = _write(tmp_cwd / "pars.asdf", "AddStep", {"amount": 5.0})
    monkeypatch.setenv("STPIPE_DISABLE_CRDS_STEPPARS", value)
    assert AddStep.call(TinyModel(0.0, "x.fits"), override_gain="N/A").value == 5.0


def test_run_uses_only_coded_defaults_and_attributes(tmp_cwd, store):
    store.files["pars-addstep"] = _write(tmp_cwd / "pars.asdf", "AddStep", {"amount": 5.0})
    pipe = LayeredPipeline()
    pipe.add.override_gain = "N/A"
    assert pipe.run(TinyModel(0.0, "x.fits")).value == pytest.approx(12.0)  # coded 6.0
    pipe.add.amount = 0.5
    assert pipe.run(TinyModel(0.0, "x.fits")).value == pytest.approx(1.0)


def test_instance_call_ignores_instance_attributes(tmp_cwd):
    step = AddStep(override_gain="N/A")
    step.amount = 99.0
    # call() is a class method: a new instance with every layer, not this one
    assert step.call(TinyModel(0.0), override_gain="N/A").value == 1.0
    assert step.run(TinyModel(0.0)).value == 99.0


def test_get_config_from_reference(tmp_cwd, store):
    store.files["pars-addstep"] = _write(tmp_cwd / "pars.asdf", "AddStep", {"amount": 5.0})
    store.files["pars-layeredpipeline"] = _write(
        tmp_cwd / "pp.asdf", "LayeredPipeline", {"extra_flag": True}, {"scale": {"factor": 3}})
    cfg = LayeredPipeline.get_config_from_reference({"INSTRUME": "NIRCAM"})
    assert cfg["extra_flag"] is True
    assert cfg["steps"]["add"]["amount"] == 5.0
    assert cfg["steps"]["scale"]["factor"] == 3.0
    assert AddStep.get_config_from_reference({"INSTRUME": "NIRCAM"}, disable=True) == {}
    # the store saw the dataset's selection parameters
    assert store.requests[0][0] == {"INSTRUME": "NIRCAM"}
