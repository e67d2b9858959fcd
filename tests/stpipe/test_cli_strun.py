"""The command line, end to end in subprocesses: strun, spec, list, --version."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from teststeps import TinyModel

HERE = Path(__file__).parent
_PATH = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])


def jwpipe(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=_PATH)
    return subprocess.run([sys.executable, "-m", "jwpipe", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def infile(tmp_path):
    TinyModel(1.5).save(str(tmp_path / "in_uncal.fits"))
    return "in_uncal.fits"


def test_help_from_spec(tmp_path):
    r = jwpipe("strun", "teststeps.ScaleStep", "-h", "--allow-import", "teststeps", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "--factor" in r.stdout and "Multiplier [default=2.0]" in r.stdout
    assert "Multiply the model value." in r.stdout
    r = jwpipe("strun", "-h", cwd=tmp_path)
    assert r.returncode == 0 and "--save-parameters" in r.stdout


def test_run_saves_by_default_and_respects_save_results_false(tmp_path, infile):
    r = jwpipe("strun", "teststeps.ScaleStep", infile, "--factor=4", "--allow-import",
               "teststeps", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert TinyModel.load(str(tmp_path / "in_scale.fits")).value == 6.0
    os.remove(tmp_path / "in_scale.fits")
    r = jwpipe("strun", "teststeps.ScaleStep", infile, "--save_results=false",
               "--allow-import", "teststeps", cwd=tmp_path)
    assert r.returncode == 0 and not (tmp_path / "in_scale.fits").exists()  # jwst#2824


def test_pipeline_step_options_and_save_parameters(tmp_path, infile):
    r = jwpipe("strun", "teststeps.TinyPipeline", infile, "--steps.scale.factor=5",
               "--steps.add.override_gain=N/A", "--steps.add.save_results=true",
               "--save-parameters", "saved.asdf", "--allow-import", "teststeps", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert TinyModel.load(str(tmp_path / "in_tiny_pipe.fits")).value == 12.5
    assert TinyModel.load(str(tmp_path / "in_add.fits")).value == 2.5
    # the saved parameter file runs the same configuration again
    os.remove(tmp_path / "in_tiny_pipe.fits")
    r = jwpipe("strun", "saved.asdf", infile, "--steps.add.override_gain=N/A",
               "--allow-import", "teststeps", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert TinyModel.load(str(tmp_path / "in_tiny_pipe.fits")).value == 12.5


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["teststeps.ScaleStep", "IN", "--bogus=1"], 2, "unrecognized arguments: --bogus=1"),
        (["teststeps.TinyPipeline", "IN", "--steps.nope.x=1"], 2, "unrecognized arguments"),
        (["teststeps.ScaleStep", "IN", "--factor=abc"], 1,
         "'factor': the value \"abc\" is of the wrong type"),
        (["teststeps.ScaleStep", "missing.fits"], 1, "Input file 'missing.fits' does not exist"),
        (["no.such.Step", "IN"], 1, "'no.such.Step' is not a known jwpipe step"),
        (["teststeps.NotAStep", "IN"], 1, "is not a Step subclass"),
        (["nofile.asdf", "IN"], 1, "Parameter file 'nofile.asdf' not found"),
        (["--factor=2"], 2, "error"),
    ],
)
def test_errors_are_one_line_with_exit_codes(tmp_path, infile, args, code, message):
    args = [infile if a == "IN" else a for a in args]
    r = jwpipe("strun", *args, "--allow-import", "teststeps", cwd=tmp_path)
    assert r.returncode == code, (r.stdout, r.stderr)
    assert message in r.stderr
    assert "Traceback" not in r.stderr
    assert sorted(os.listdir(tmp_path)) == [infile]  # nothing written


def test_debug_shows_traceback(tmp_path, infile):
    r = jwpipe("strun", "teststeps.ScaleStep", infile, "--factor=abc", "--debug",
               "--allow-import", "teststeps", cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" in r.stderr


def test_spec_list_and_version(tmp_path):
    r = jwpipe("spec", "teststeps.ScaleStep", cwd=tmp_path)
    assert r.returncode == 1 and "not a known jwpipe step" in r.stderr  # needs --allow-import
    r = jwpipe("--version", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith("jwpipe ")
    r = jwpipe("list", cwd=tmp_path)
    assert r.returncode == 0
    r = jwpipe("nonsense", cwd=tmp_path)
    assert r.returncode == 2 and "unknown command" in r.stderr
