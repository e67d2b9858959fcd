"""call/run behaviour, skip and status, references, hooks and their safety, logging, metadata."""

from __future__ import annotations

import os

import pytest
from teststeps import AddStep, NASkipStep, ScaleStep, TinyModel, TinyPipeline

from jwpipe.errors import ReferenceFileError, ValidationError
from jwpipe.stpipe import allow_class_paths, allow_shell_hooks, registry


def test_input_model_not_modified_by_standalone_step():
    model = TinyModel(1.0, "a.fits")
    out = ScaleStep.call(model)
    assert out.value == 2.0 and model.value == 1.0 and out is not model


def test_skip_passes_through_and_records_skipped():
    model = TinyModel(1.0, "a.fits")
    out = TinyPipeline.call(model, steps={"add": {"skip": True}})
    assert out.value == 2.0
    assert out.meta.cal_step.add == "SKIPPED"
    assert out.meta.cal_step.scale == "COMPLETE"


def test_standalone_skip_is_forced_off(caplog):
    with caplog.at_level("INFO"):
        out = ScaleStep.call(TinyModel(1.0), skip=True)
    assert out.value == 2.0 and "skip set to False" in caplog.text


def test_step_can_record_its_own_status(store):
    store.files["flat"] = "N/A"
    out = NASkipStep.call(TinyModel(1.0, "a.fits"))
    assert out.meta.cal_step.naskip == "SKIPPED"
    assert out.meta.ref_file.flat.name == "N/A"


def test_per_instrument_order_is_data():
    assert TinyPipeline.step_names() == ["add", "scale"]
    assert TinyPipeline.step_names("miri") == ["scale", "add"]
    model = TinyModel(1.0, params={"INSTRUME": "MIRI"})
    model.meta.instrument.name = "MIRI"
    assert TinyPipeline.call(model, steps={"add": {"override_gain": "N/A"}}).value == 3.0


def test_reference_from_store_is_recorded(store, tmp_path):
    gain = tmp_path / "jwst_nircam_gain_0001.fits"
    gain.write_text("x")
    store.files["gain"] = str(gain)
    out = AddStep.call(TinyModel(0.0, "a.fits"))
    assert out.extra["gain_ref"].endswith("/references/jwst/nircam/jwst_nircam_gain_0001.fits")
    assert out.meta.ref_file.gain.name == "crds://jwst_nircam_gain_0001.fits"
    assert out.meta.ref_file.crds.context_used == "jwst_0001.pmap"
    assert out.meta.ref_file.crds.sw_version
    prov = out.extra["jwpipe"]["steps"][-1]
    assert prov["step"] == "AddStep" and prov["reference_files"] == {
        "gain": "crds://jwst_nircam_gain_0001.fits"}
    assert prov["wall_time_s"] >= 0 and prov["peak_rss_mb"] > 0


def test_override_path_bypasses_store(store, tmp_path):
    own = tmp_path / "mygain.fits"
    own.write_text("x")
    out = AddStep.call(TinyModel(0.0), override_gain=str(own))
    assert out.extra["gain_ref"] == str(own)
    assert [reftype for _, reftype in store.requests] == ["pars-addstep"]
    step = AddStep(override_gain="rel/gain.fits")
    assert step.get_ref_override("gain") == os.path.abspath("rel/gain.fits")
    assert AddStep(override_gain="N/A").get_ref_override("gain") == "N/A"


def test_override_model_is_returned_as_is():
    ref = TinyModel(5.0, "ref.fits")
    step = AddStep(override_gain=ref)
    assert step.get_reference_file(TinyModel(0.0), "gain") is ref


def test_missing_override_file_is_an_error():
    with pytest.raises(ReferenceFileError, match=r"override_gain file .* does not exist"):
        AddStep.call(TinyModel(0.0), override_gain="/no/such/gain.fits")


def test_no_store_and_no_override_is_a_clear_error():
    with pytest.raises(ReferenceFileError,
                       match="no CRDS cache for the 'gain' reference: set CRDS_PATH"):
        AddStep.call(TinyModel(0.0))


def test_pipeline_prefetch_fails_before_any_step_runs(store):
    calls = []
    pipe = TinyPipeline(steps={"scale": {"pre_hooks": [lambda x: calls.append(1)]}})
    pipe.add.pre_hooks = [lambda x: calls.append(2)]
    with pytest.raises(ReferenceFileError, match="has no 'gain' reference"):
        pipe.run(TinyModel(0.0))
    assert calls == []
    assert pipe.reference_file_types == ["gain"]
    pipe.add.skip = True
    assert pipe.reference_file_types == []


def test_hooks_classes_and_callables():
    seen = []

    def post(model):
        seen.append(model.value)
        model.value += 100
        return model

    out = ScaleStep.call(TinyModel(1.0), pre_hooks=[ScaleStep], post_hooks=[post])
    assert seen == [4.0] and out.value == 104.0


def test_hook_strings_name_known_steps_with_literal_arguments():
    out = ScaleStep.call(TinyModel(1.0), post_hooks=["teststeps.ScaleStep(factor=10)"])
    assert out.value == 20.0


def test_shell_hook_refused_unless_enabled_in_python(tmp_cwd):
    with pytest.raises(ValidationError, match="would run a shell command"):
        ScaleStep.call(TinyModel(1.0), post_hooks=["touch pwned"])
    assert not os.path.exists("pwned")
    allow_shell_hooks(True)
    try:
        ScaleStep.call(TinyModel(1.0, "a.fits"), post_hooks=["touch {0}.ran"])
    finally:
        allow_shell_hooks(False)
    assert any(name.endswith(".ran") for name in os.listdir("."))


def test_class_in_parameter_file_is_not_imported_unless_allowed(tmp_cwd):
    (tmp_cwd / "evil_mod.py").write_text(
        "open('imported', 'w').close()\nfrom jwpipe.stpipe import Step\n"
        "class Evil(Step):\n    pass\n")
    (tmp_cwd / "evil.yaml").write_text("class: evil_mod.Evil\nparameters: {}\n")
    from jwpipe.stpipe import Step

    with pytest.raises(ValidationError, match="not a known jwpipe step"):
        Step.from_config_file("evil.yaml")
    assert not os.path.exists("imported")
    with pytest.raises(ValidationError, match="not a known jwpipe step"):
        ScaleStep.call(TinyModel(1.0), pre_hooks=["evil_mod.Evil"])
    assert not os.path.exists("imported")


def test_allowed_module_prefix_and_non_step_class(tmp_cwd, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_cwd))
    (tmp_cwd / "labsteps.py").write_text(
        "from jwpipe.stpipe import Step\nclass Thing:\n    pass\n"
        "class Mine(Step):\n    spec = 'k = integer(default=1)'\n"
        "    def process(self, x):\n        return x\n")
    (tmp_cwd / "mine.yaml").write_text("class: labsteps.Mine\nparameters: {k: 3}\n")
    (tmp_cwd / "thing.yaml").write_text("class: labsteps.Thing\n")
    allow_class_paths("labsteps")
    try:
        from jwpipe.stpipe import Step

        assert Step.from_config_file("mine.yaml").k == 3
        with pytest.raises(ValidationError, match="not a Step subclass"):
            Step.from_config_file("thing.yaml")
    finally:
        registry._ALLOWED_PREFIXES.remove("labsteps")


def test_log_records_and_logger_names(caplog):
    pipe = TinyPipeline()
    pipe.add.override_gain = "N/A"
    with caplog.at_level("INFO", logger="jwpipe"):
        pipe.run(TinyModel(0.0, "a.fits"))
    assert any("TinyPipeline.add done" in r for r in pipe.log_records)
    assert {"jwpipe.TinyPipeline.add", "jwpipe.TinyPipeline.scale"} <= \
        {r.name for r in caplog.records}


def test_full_metadata_has_timing_and_memory_for_every_step():
    pipe = TinyPipeline()
    pipe.add.override_gain = "N/A"
    pipe.run(TinyModel(0.0))
    meta = pipe.get_full_metadata()
    assert set(meta) == {"TinyPipeline", "TinyPipeline.add", "TinyPipeline.scale"}
    for entry in meta.values():
        assert entry["status"] == "COMPLETE"
        assert entry["wall_time_s"] >= 0 and entry["peak_rss_mb"] > 10
    assert meta["TinyPipeline"]["peak_rss_mb"] >= meta["TinyPipeline.add"]["peak_rss_mb"]


def test_input_dir_and_primary_input(tmp_path):
    f = tmp_path / "a_uncal.fits"
    f.write_text("x")
    pipe = TinyPipeline()
    pipe.set_primary_input(str(f))
    assert pipe.input_dir == str(tmp_path)
    assert pipe.add.input_dir == str(tmp_path)  # searched up the parent chain
    assert pipe.add.make_input_path("b.fits") == str(tmp_path / "b.fits")
    assert pipe.add.make_input_path("/x/b.fits") == "/x/b.fits"
    pipe.add.set_primary_input(TinyModel(0.0, "other.fits"))
    assert pipe.add.search_attr("_input_filename") == str(f)  # the pipeline's input wins
    assert pipe.add.search_attr("output_dir", "dflt") == "dflt"


def test_spec_merging_and_override_parameters():
    spec = AddStep.load_spec_file()
    assert spec["amount"] == "float(default=1.0)"
    assert spec["override_gain"] == "is_string_or_datamodel(default=None)"
    assert spec.comments["amount"] == "How much to add"
    assert "skip" in spec and "output_ext" in spec

    class Sub(AddStep):
        spec = "amount = float(default=3.0)  # overridden"

    assert Sub().amount == 3.0 and Sub().label == "plain"
    assert "override_gain" not in AddStep().get_pars()


def test_no_dunder_call():
    with pytest.raises(TypeError):
        ScaleStep()(TinyModel(1.0))
