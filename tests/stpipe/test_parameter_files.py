"""Parameter files: ASDF (current, legacy, jwst-written), YAML, .cfg; export, get/update pars."""

from __future__ import annotations

import textwrap

import pytest
from teststeps import AddStep, ScaleStep, TinyModel, TinyPipeline

from jwpipe.errors import ValidationError
from jwpipe.stpipe import Step, load_parameter_file


def _asdf(path, body: str) -> str:
    head = "#ASDF 1.0.0\n#ASDF_STANDARD 1.5.0\n%YAML 1.1\n%TAG ! tag:stsci.edu:asdf/\n" \
           "--- !core/asdf-1.1.0\n"
    path.write_text(head + textwrap.dedent(body).strip() + "\n...\n")
    return str(path)


def test_export_and_reload_round_trip(tmp_cwd):
    pipe = TinyPipeline()
    pipe.add.amount = 7.0
    pipe.scale.mode = "exact"
    pipe.export_config("p.asdf")
    cfg = load_parameter_file("p.asdf")
    assert cfg.class_name == "teststeps.TinyPipeline"
    assert [s.name for s in cfg.steps] == ["add", "scale"]
    again = TinyPipeline.from_config_file("p.asdf")
    assert again.add.amount == 7.0 and again.scale.mode == "exact"
    assert "override_gain" not in cfg.steps[0].parameters  # overrides are never exported
    assert again.get_pars() == pipe.get_pars()


def test_export_with_metadata(tmp_cwd):
    AddStep().export_config("a.asdf", include_metadata=True)
    import asdf

    with asdf.open("a.asdf") as af:
        assert af["meta"]["description"] == "Parameters for calibration step teststeps.AddStep"
        assert af["meta"]["author"] == "<SPECIFY>"


def test_name_optional_at_every_level(tmp_cwd):
    """stpipe raises KeyError: 'name' for these; the schema says name is optional."""
    path = _asdf(tmp_cwd / "noname.asdf", """
        class: teststeps.TinyPipeline
        parameters: {extra_flag: true}
        steps:
        - class: teststeps.AddStep
          parameters: {amount: 4.0, override_gain: N/A}
        - class: teststeps.ScaleStep
          parameters: {factor: 3}
    """)
    result = TinyPipeline.call(TinyModel(0.0, "x.fits"), config_file=path)
    assert result.value == 12.0


def test_legacy_asdf_layout(tmp_cwd):
    path = _asdf(tmp_cwd / "legacy.asdf", """
        parameters:
          class: teststeps.TinyPipeline
          name: tiny
          steps:
            add: {amount: 2.5, override_gain: N/A}
    """)
    assert TinyPipeline.call(TinyModel(0.0, "x.fits"), config_file=path).value == 5.0


def test_plain_yaml_and_cfg_files(tmp_cwd):
    (tmp_cwd / "p.yaml").write_text(
        "class: teststeps.TinyPipeline\nsteps:\n- name: add\n  parameters: {amount: 3}\n")
    kw = {"steps": {"add": {"override_gain": "N/A"}}}
    assert TinyPipeline.call(TinyModel(0.0), config_file="p.yaml", **kw).value == 6.0
    (tmp_cwd / "add.cfg").write_text("name = add\namount = 0.5\n")
    (tmp_cwd / "p.cfg").write_text(
        "class = teststeps.TinyPipeline\n[steps]\n[[add]]\nconfig_file = add.cfg\n"
        "[[scale]]\nfactor = 10\n")
    assert TinyPipeline.call(TinyModel(0.0), config_file="p.cfg", **kw).value == 5.0


def test_jwst_written_file_loads_and_warns_once(tmp_cwd, caplog):
    """Files from jwst's strun --save-parameters: unknown steps/parameters warned about once."""
    path = _asdf(tmp_cwd / "jwst.asdf", """
        class: jwst.pipeline.calwebb_detector1.TinyPipeline
        name: TinyPipeline
        parameters: {extra_flag: false, save_calibrated_ramp: false}
        steps:
        - class: jwst.ipc.ipc_step.IPCStep
          name: ipc
          parameters: {skip: true}
        - class: jwst.add.add_step.AddStep
          name: add
          parameters: {amount: 2.0, maximum_cores: '1', override_gain: N/A}
    """)
    with caplog.at_level("WARNING"):
        result = TinyPipeline.call(TinyModel(0.0), config_file=path)
    assert result.value == 4.0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    for name in ("save_calibrated_ramp", "steps/ipc", "steps/add/maximum_cores"):
        assert name in warnings[0]


def test_unknown_parameter_in_own_file_is_an_error(tmp_cwd):
    path = _asdf(tmp_cwd / "bad.asdf", """
        class: teststeps.TinyPipeline
        steps:
        - name: add
          parameters: {bogus: 1}
    """)
    with pytest.raises(ValidationError, match=r"bad\.asdf.*Extra value 'bogus' in steps/add"):
        TinyPipeline.call(TinyModel(0.0), config_file=path)


def test_wrong_type_in_file_names_file_and_key(tmp_cwd):
    path = _asdf(tmp_cwd / "bad.asdf", """
        class: teststeps.AddStep
        parameters: {amount: abc}
    """)
    with pytest.raises(ValidationError, match=r"bad\.asdf.*'amount': the value \"abc\" is of the "
                                              r"wrong type"):
        AddStep.call(TinyModel(0.0), config_file=path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("just some text\n", "neither ASDF, YAML nor"),
        ("- a\n- b\n", "neither ASDF, YAML nor"),
        ("class: teststeps.AddStep\nparameters: [1, 2]\n", "'parameters' in the top level must"),
        ("class: teststeps.AddStep\nfoo: 1\n", "unexpected key"),
        ("class: [x]\n", "'class' in the top level must be a string"),
    ],
)
def test_malformed_files(tmp_cwd, content, message):
    (tmp_cwd / "bad.yaml").write_text(content) if content.startswith("class") else None
    path = tmp_cwd / ("bad.yaml" if content.startswith("class") else "bad.txt")
    path.write_text(content)
    with pytest.raises(ValidationError, match=message):
        load_parameter_file(path)


def test_corrupt_asdf(tmp_cwd):
    (tmp_cwd / "c.asdf").write_bytes(b"#ASDF 1.0.0\n\x00\x01garbage")
    with pytest.raises(ValidationError, match="not a readable ASDF"):
        load_parameter_file(tmp_cwd / "c.asdf")


def test_missing_file():
    with pytest.raises(ValidationError, match="not found"):
        AddStep.call(TinyModel(0.0), config_file="/nonexistent/x.asdf")


def test_file_for_another_class_is_refused(tmp_cwd):
    path = _asdf(tmp_cwd / "s.asdf", "class: teststeps.ScaleStep\nparameters: {factor: 2}")
    with pytest.raises(ValidationError, match=r"is for class 'teststeps\.ScaleStep'"):
        AddStep.call(TinyModel(0.0), config_file=path)
    with pytest.raises(ValidationError, match="is for ScaleStep, not AddStep"):
        AddStep.from_config_file(path)
    assert isinstance(Step.from_config_file(path), ScaleStep)


def test_unknown_step_name_in_steps_kwarg():
    with pytest.raises(ValidationError, match="Extra value 'jumpp' in steps"):
        TinyPipeline.call(TinyModel(0.0), steps={"jumpp": {"x": 1}})
    with pytest.raises(ValidationError, match="Extra value 'jumpp' in steps"):
        TinyPipeline(steps={"jumpp": {}})


def test_wrong_types_from_keywords():
    with pytest.raises(ValidationError, match=r"'amount': the value \"x\" is of the wrong type"):
        AddStep(amount="x")
    with pytest.raises(ValidationError, match=r"'mode': the value \"slow\" is unacceptable"):
        ScaleStep(mode="slow")


def test_bad_attribute_surfaces_at_run():
    pipe = TinyPipeline()
    pipe.add.amount = "abc"
    with pytest.raises(ValidationError, match="amount"):
        pipe.run(TinyModel(0.0))


def test_get_pars_partial_and_update_pars():
    step = ScaleStep()
    assert step.get_pars(full_spec=False) == {"factor": 2.0, "mode": "fast"}
    assert step.get_pars()["input_dir"] == ""
    pipe = TinyPipeline()
    pipe.update_pars({"extra_flag": True, "nope": 1, "steps": {"scale": {"factor": 5.0}}})
    assert pipe.extra_flag is True and pipe.scale.factor == 5.0


def test_from_config_section_and_build_config(tmp_cwd):
    config, path = TinyPipeline.build_config(None, steps={"scale": {"factor": "4"}})
    assert path is None and config["steps"]["scale"]["factor"] == 4.0
    pipe = TinyPipeline.from_config_section(config)
    assert pipe.scale.factor == 4.0 and pipe.name == "TinyPipeline"
    assert pipe.scale.qualified_name == "TinyPipeline.scale"


def test_steps_config_file_in_kwargs(tmp_cwd):
    _asdf(tmp_cwd / "scale.asdf", "class: teststeps.ScaleStep\nparameters: {factor: 9}")
    result = TinyPipeline.call(TinyModel(0.0), steps={"scale": {"config_file": "scale.asdf"},
                                                      "add": {"override_gain": "N/A"}})
    assert result.value == 9.0
