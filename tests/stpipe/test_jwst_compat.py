"""Compatibility with files and names from STScI's jwst, using the real jwpipe pipelines."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from jwpipe.pipeline import Detector1Pipeline
from jwpipe.steps import JumpStep
from jwpipe.stpipe import Step, preserve_step_pars, resolve_step_class

JWST_FILE = """\
#ASDF 1.0.0
#ASDF_STANDARD 1.5.0
%YAML 1.1
%TAG ! tag:stsci.edu:asdf/
--- !core/asdf-1.1.0
class: jwst.pipeline.calwebb_detector1.Detector1Pipeline
name: Detector1Pipeline
parameters: {input_dir: '', output_dir: null, output_ext: .fits, output_file: null,
  output_use_index: true, output_use_model: false, post_hooks: [], pre_hooks: [],
  save_calibrated_ramp: false, save_results: true, search_output_file: true, skip: false,
  suffix: null}
steps:
- class: jwst.ipc.ipc_step.IPCStep
  name: ipc
  parameters: {skip: true}
- class: jwst.jump.jump_step.JumpStep
  name: jump
  parameters: {rejection_threshold: 7.5, maximum_cores: '1', expand_large_events: false,
    skip: false}
...
"""


def test_jwst_class_names_resolve_to_jwpipe_classes():
    assert resolve_step_class("jwst.jump.jump_step.JumpStep") is JumpStep
    assert resolve_step_class("jwst.pipeline.Detector1Pipeline") is Detector1Pipeline
    assert resolve_step_class("calwebb_detector1") is Detector1Pipeline
    assert resolve_step_class("jwpipe.steps.jump.JumpStep") is JumpStep


def test_jwst_parameter_file_loads_into_detector1(tmp_path, caplog):
    path = tmp_path / "jwst_det1.asdf"
    path.write_text(textwrap.dedent(JWST_FILE))
    with caplog.at_level("WARNING"):
        pipe = Step.from_config_file(str(path))
    assert isinstance(pipe, Detector1Pipeline)
    assert pipe.jump.rejection_threshold == 7.5
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "steps/ipc" in warnings[0]


def test_strun_lists_jwpipe_steps_and_reads_jwst_file(tmp_path):
    path = tmp_path / "jwst_det1.asdf"
    path.write_text(textwrap.dedent(JWST_FILE))
    env = dict(os.environ)
    out = subprocess.run([sys.executable, "-m", "jwpipe", "list"], capture_output=True,
                         text=True, env=env, check=True).stdout
    assert "jwpipe.pipeline.Detector1Pipeline (calwebb_detector1)" in out
    assert "jwpipe.steps.JumpStep (jump)" in out
    r = subprocess.run([sys.executable, "-m", "jwpipe", "strun", str(path), "-h"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0 and "--steps.jump.rejection_threshold" in r.stdout


def test_preserve_step_pars():
    pipe = Detector1Pipeline()
    with preserve_step_pars(pipe):
        pipe.jump.rejection_threshold = 99.0
    assert pipe.jump.rejection_threshold == 4.0
