"""jwst's parameter files and class names (issue 17 point 5; issue 15 item 3).

Uses jwst's own files (tests/data/pars, see the README there) and the installed jwst package's
pipelines to check jwpipe's class-name table against every step class jwst's imaging pipelines
use.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jwpipe.errors import ValidationError
from jwpipe.pipeline import Detector1Pipeline, Image2Pipeline, Image3Pipeline
from jwpipe.steps import JumpStep, SuperbiasStep, TweakRegStep
from jwpipe.stpipe import registry, resolve_step_class

PARS = Path(__file__).parents[1] / "data" / "pars"
JWPIPE = {"Detector1Pipeline": Detector1Pipeline, "Image2Pipeline": Image2Pipeline,
          "Image3Pipeline": Image3Pipeline}


def _jwst_pipelines():
    pytest.importorskip("jwst")
    from jwst.pipeline import Detector1Pipeline as J1
    from jwst.pipeline import Image2Pipeline as J2
    from jwst.pipeline import Image3Pipeline as J3

    return [J1, J2, J3]


def test_table_covers_every_jwst_imaging_step_class():
    for jpipe in _jwst_pipelines():
        ours = JWPIPE[jpipe.__name__]
        assert registry.JWST_CLASSES[jpipe.__name__] == ours.__name__
        path = f"{jpipe.__module__}.{jpipe.__name__}"
        assert resolve_step_class(path) is ours
        for name, jstep in jpipe.step_defs.items():
            full = f"{jstep.__module__}.{jstep.__name__}"
            assert jstep.__name__ in registry.JWST_CLASSES, full
            mapped = registry.JWST_CLASSES[jstep.__name__]
            if mapped is None:
                assert name not in ours.step_defs, f"{full} is implemented as {name}"
                with pytest.raises(ValidationError, match="jwst class that jwpipe does not"):
                    resolve_step_class(full)
                continue
            cls = resolve_step_class(full)
            assert cls.__name__ == mapped
            # the jwst step sits at a jwpipe pipeline step of the same class (resample is in
            # jwst's Image2 but only in jwpipe's Image3)
            owners = [n for p in JWPIPE.values() for n, c in p.step_defs.items() if c is cls]
            assert owners, full
            if name in ours.step_defs:
                assert ours.step_defs[name] is cls


def test_superbias_spelled_as_jwst_does():
    assert resolve_step_class("jwst.superbias.SuperBiasStep") is SuperbiasStep
    assert resolve_step_class("jwst.superbias.superbias_step.SuperBiasStep") is SuperbiasStep
    config, _ = SuperbiasStep.build_config(None, config_file=str(PARS / "superbias.cfg"))
    assert config["name"] == "superbias"


def test_pipeline_step_entry_without_name_is_matched_by_class(tmp_path):
    path = tmp_path / "det1.yaml"
    path.write_text(
        "class: jwst.pipeline.Detector1Pipeline\n"
        "steps:\n"
        "- class: jwst.superbias.superbias_step.SuperBiasStep\n"
        "  parameters: {skip: true}\n"
        "- class: jwst.jump.JumpStep\n"
        "  parameters: {rejection_threshold: 6.5}\n")
    config, _ = Detector1Pipeline.build_config(None, config_file=str(path))
    assert config["steps"]["superbias"]["skip"] is True
    assert config["steps"]["jump"]["rejection_threshold"] == 6.5


def test_real_pipeline_files_load():
    """jwst's calwebb_detector1.cfg / calwebb_image2.cfg / calwebb_image3.cfg and their step
    files load; the steps jwpipe does not implement are ignored with one warning."""
    config, _ = Detector1Pipeline.build_config(None,
                                                config_file=str(PARS / "calwebb_detector1.cfg"))
    assert config["steps"]["jump"]["rejection_threshold"] == 4.0
    config, _ = Image2Pipeline.build_config(None, config_file=str(PARS / "calwebb_image2.cfg"))
    assert config["save_results"] is True
    config, _ = Image3Pipeline.build_config(None, config_file=str(PARS / "calwebb_image3.cfg"))
    assert config["steps"]["tweakreg"]["fitgeometry"] == "general"
    assert config["steps"]["source_catalog"]["save_results"] is True


@pytest.mark.parametrize("name", ["jwst_generic_pars-tweakreg_0001.asdf",
                                  "jwst_miri_pars-tweakreg_0001.asdf", "tweakreg.cfg"])
def test_fitgeometry_general_is_accepted(name):
    config, _ = TweakRegStep.build_config(None, config_file=str(PARS / name))
    assert config["fitgeometry"] == "general"


def test_fitgeometry_rscale_is_refused_listing_allowed_values(tmp_path):
    path = tmp_path / "tw.cfg"
    path.write_text((PARS / "tweakreg.cfg").read_text().replace("general", "rscale"))
    with pytest.raises(ValidationError) as err:
        TweakRegStep.build_config(None, config_file=str(path))
    msg = str(err.value)
    assert "'fitgeometry'" in msg and '"rscale"' in msg
    assert "(allowed: shift, rshift, general)" in msg


def test_ignored_warning_is_printed_once(caplog, tmp_path):
    cfg = tmp_path / "calwebb_detector1.cfg"
    for f in PARS.glob("*.cfg"):
        shutil.copy(f, tmp_path / f.name)
    with caplog.at_level(logging.WARNING, logger="jwpipe"):
        for params in ({"READPATT": "RAPID"}, {"READPATT": "BRIGHT1"}):
            Detector1Pipeline.build_config(params, config_file=str(cfg))
    assert caplog.text.count("were ignored") == 1


@pytest.mark.parametrize("cls", ["Detector1Pipelin", "os.system", "subprocess.Popen"])
def test_unknown_class_is_an_error_in_every_entry_point(tmp_path, cls):
    path = tmp_path / "bad.cfg"
    path.write_text(f'class = "{cls}"\nrejection_threshold = 99\n')
    # Step.call / build_config with config_file
    with pytest.raises(ValidationError, match=f"'{cls}' names no step or pipeline"):
        Detector1Pipeline.build_config(None, config_file=str(path))
    with pytest.raises(ValidationError, match=f"'{cls}' names no step or pipeline"):
        JumpStep.call(str(tmp_path / "nothing.fits"), config_file=str(path))
    # strun FILE, and strun FILE -h
    for extra in ([], ["-h"]):
        proc = subprocess.run([sys.executable, "-m", "jwpipe", "strun", str(path), *extra],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 1
        assert len(proc.stderr.strip().splitlines()) == 1
        assert cls in proc.stderr and "Traceback" not in proc.stderr


def test_strun_help_fails_for_a_file_that_does_not_load(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("class: jwst.pipeline.Detector1Pipeline\n"
                   "parameters: {save_calibrated_ramp: notabool}\n")
    proc = subprocess.run([sys.executable, "-m", "jwpipe", "strun", str(bad), "-h"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "save_calibrated_ramp" in proc.stderr
    good = subprocess.run([sys.executable, "-m", "jwpipe", "strun",
                           str(PARS / "calwebb_detector1.cfg"), "-h"],
                          capture_output=True, text=True, timeout=120)
    assert good.returncode == 0 and "--steps.jump.rejection_threshold" in good.stdout
