"""Output naming (the suffix scheme) and when files are written."""

from __future__ import annotations

import os

import pytest
from teststeps import AddStep, ScaleStep, SplitStep, TinyModel, TinyPipeline

from jwpipe.stpipe.naming import build_output_name, remove_suffix
from jwpipe.stpipe.outputs import Output


@pytest.mark.parametrize(
    ("stem", "root", "sep"),
    [
        ("jw1_nrca1_uncal", "jw1_nrca1", "_"),
        ("x_uncal_dq_init", "x_uncal", "_"),  # one suffix only
        ("x-cal", "x", "-"),
        ("x-a3001_crf", "x-a3001", "_"),
        ("foo_rate_jump", "foo_rate", "_"),
        ("dq_init2", "dq_init2", "_"),  # not a known suffix
        ("jw1_nrca1_rateints", "jw1_nrca1", "_"),
        ("jw1_nrca1_jumpstep", "jw1_nrca1", "_"),
    ],
)
def test_remove_suffix(stem, root, sep):
    assert remove_suffix(stem) == (root, sep)


def test_build_output_name_components_and_no_suffix():
    assert build_output_name("/data/jw1_nrca1_uncal.fits", suffix="cat", ext="ecsv") == \
        "jw1_nrca1_cat.ecsv"
    assert build_output_name("/data/jw1_nrca1_uncal.fits", suffix=False, ext=".fits") == \
        "jw1_nrca1_uncal.fits"
    assert build_output_name("jw1_nrca1_uncal.fits", suffix="jump", ext="fits",
                             components={"idx": 3, "asn_id": "o001"}) == \
        "jw1_nrca1_3_o001_jump.fits"


def test_standalone_step_suffix_is_the_alias(tmp_cwd):
    """jwst#2827: the same step names its output the same way however it is run."""
    AddStep.call("jw1_nrca1_uncal.fits", save_results=True, override_gain="N/A")
    assert os.listdir(".") == ["jw1_nrca1_add.fits"]
    step = AddStep(save_results=True, override_gain="N/A")
    step.run(TinyModel(0.0, "jw2_nrca1_uncal.fits"))
    assert os.path.exists("jw2_nrca1_add.fits")


def test_nothing_written_unless_asked(tmp_cwd):
    TinyPipeline.call(TinyModel(1.0, "a_uncal.fits"), steps={"add": {"override_gain": "N/A"}})
    AddStep.call(TinyModel(1.0, "a_uncal.fits"), override_gain="N/A")
    assert os.listdir(".") == []


def test_pipeline_and_step_level_save_results(tmp_cwd):
    TinyPipeline.call(TinyModel(1.0, "a_uncal.fits"), save_results=True,
                      steps={"add": {"override_gain": "N/A", "save_results": True}})
    assert sorted(os.listdir(".")) == ["a_add.fits", "a_tiny_pipe.fits"]
    saved = TinyModel.load("a_add.fits")
    assert saved.value == 2.0


def test_output_dir_is_honoured_for_every_product(tmp_cwd):
    TinyPipeline.call(TinyModel(1.0, "a_uncal.fits"), save_results=True, output_dir="out/$USER_X",
                      steps={"add": {"override_gain": "N/A", "save_results": True}})
    assert sorted(os.listdir("out/$USER_X")) == ["a_add.fits", "a_tiny_pipe.fits"]


def test_output_dir_expands_variables(tmp_cwd, monkeypatch):
    monkeypatch.setenv("JWPIPE_TEST_OUT", "expanded")
    ScaleStep.call(TinyModel(1.0, "a_rate.fits"))
    assert os.listdir(".") == []  # nothing was asked to be saved
    ScaleStep.call(TinyModel(1.0, "a_rate.fits"), output_dir="$JWPIPE_TEST_OUT")
    assert os.listdir(".") == ["expanded"]  # output_dir alone means save (seed documents)
    assert os.listdir("expanded") == ["a_scale.fits"]


def test_output_file_base_name_forces_saving(tmp_cwd):
    ScaleStep.call(TinyModel(1.0, "a_rate.fits"), output_file="foo.fits")
    assert os.listdir(".") == ["foo_scale.fits"]


def test_output_file_known_suffix_stripped_once(tmp_cwd):
    ScaleStep.call(TinyModel(1.0, "a.fits"), output_file="junk_rate.fits")
    ScaleStep.call(TinyModel(1.0, "a.fits"), output_file="x_nrca1_dq_init2.fits")
    assert sorted(os.listdir(".")) == ["junk_scale.fits", "x_nrca1_dq_init2_scale.fits"]


def test_output_file_with_directory_writes_there(tmp_cwd):
    """stpipe silently drops the directory of output_file; jwpipe writes where asked."""
    ScaleStep.call(TinyModel(1.0, "a.fits"), output_file="sub/dir/name.fits")
    assert os.listdir("sub/dir") == ["name_scale.fits"]


def test_substeps_inherit_pipeline_output_file(tmp_cwd):
    TinyPipeline.call(TinyModel(1.0, "a_uncal.fits"), output_file="foo.fits",
                      steps={"add": {"override_gain": "N/A", "save_results": True}})
    assert sorted(os.listdir(".")) == ["foo_add.fits", "foo_tiny_pipe.fits"]


def test_suffix_parameter(tmp_cwd):
    ScaleStep.call(TinyModel(1.0, "jw1_nrca1_rate.fits"), suffix="myscale", output_dir="out",
                   save_results=True)
    assert os.listdir("out") == ["jw1_nrca1_myscale.fits"]


def test_multiple_results_get_an_index(tmp_cwd):
    SplitStep.call(TinyModel(0.0, "in_uncal.fits"), save_results=True)
    assert sorted(os.listdir(".")) == ["in_0_split.fits", "in_1_split.fits", "in_2_split.fits"]


def test_single_result_in_a_list_gets_no_index(tmp_cwd):
    SplitStep.call(TinyModel(0.0, "in_uncal.fits"), save_results=True, n=1)
    assert os.listdir(".") == ["in_split.fits"]


def test_output_use_model_names_from_each_model(tmp_cwd):
    class RenameSplit(SplitStep):
        def process(self, x):
            return [TinyModel(i, f"m{i}_cal.fits") for i in range(2)]

    RenameSplit.call(TinyModel(0.0, "in_uncal.fits"), save_results=True, output_use_model=True)
    assert sorted(os.listdir(".")) == ["m0_split.fits", "m1_split.fits"]


def test_model_without_filename(tmp_cwd):
    ScaleStep(save_results=True).run(TinyModel(1.0, None))
    assert os.listdir(".") == ["step_ScaleStep_scale.fits"]


def test_default_output_file_and_make_output_path(tmp_cwd):
    step = AddStep(override_gain="N/A")
    step.set_primary_input("/data/jw1_nrca1_uncal.fits")
    assert step.default_output_file() == "/data/jw1_nrca1_uncal.fits"
    assert step.default_suffix() == "add"
    assert step.make_output_path() == "jw1_nrca1_add.fits"
    assert step.make_output_path(suffix="cat", ext="ecsv") == "jw1_nrca1_cat.ecsv"
    assert step.make_output_path(idx=3, asn_id="o001") == "jw1_nrca1_3_o001_add.fits"
    assert step.remove_suffix("x_rate") == ("x", "_")


def test_save_model_explicit(tmp_cwd):
    step = ScaleStep()
    step.set_primary_input("a_uncal.fits")
    model = TinyModel(3.0, "a_uncal.fits")
    assert step.save_model(model, suffix="extra") is None  # not asked to save
    path = step.save_model(model, suffix="extra", force=True)
    assert path == "a_extra.fits" and os.path.exists(path)


def test_declared_result_suffixes_name_multiple_products(tmp_cwd):
    class PairStep(SplitStep):
        outputs = (Output("rate"), Output("rateints"))

    PairStep.call(TinyModel(0.0, "in_uncal.fits"), save_results=True, n=2)
    assert sorted(os.listdir(".")) == ["in_rate.fits", "in_rateints.fits"]
    PairStep.call(TinyModel(0.0, "in_uncal.fits"), save_results=True, n=2, suffix="x")
    assert "in_0_x.fits" in os.listdir(".")
