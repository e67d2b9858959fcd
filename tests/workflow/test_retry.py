"""Retries raise memory only after a memory kill (and runtime only after a time-limit kill)."""

from __future__ import annotations

import os
import time

from jwpipe.workflow.retry import retry_resource


def _log(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    time.sleep(0.01)


def test_memory_doubles_only_after_oom(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert retry_resource(600, "jump", "x1", "mem_mb", 1) == 600
    # a failure for another reason: same request
    _log(tmp_path / "logs/slurm/rule_jump/x1/101.log", "error: invalid partition specified")
    assert retry_resource(600, "jump", "x1", "mem_mb", 2) == 600
    # a SLURM memory kill: doubled on the next attempt
    _log(tmp_path / "logs/slurm/rule_jump/x1/102.log",
         "slurmstepd: error: Job 102 exceeded memory limit (700000 > 614400), being killed")
    assert retry_resource(600, "jump", "x1", "mem_mb", 3) == 1200
    assert retry_resource(30, "jump", "x1", "runtime", 3) == 30
    # other units are not affected
    assert retry_resource(600, "jump", "x2", "mem_mb", 2) == 600


def test_group_logs_and_step_log(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _log(tmp_path / "logs/slurm/group_detector1/abc/7.log",
         "rule jump wildcards: exp=x3\nslurmstepd: error: *** JOB 7 CANCELLED DUE TO TIME LIMIT")
    assert retry_resource(30, "jump", "x3", "runtime", 2) == 60
    assert retry_resource(30, "jump", "x31", "runtime", 2) == 30  # exp=x3 is not exp=x31
    _log(tmp_path / "logs/ramp_fit/x4.log", "numpy._core._exceptions: MemoryError: Unable to "
         "allocate 1.2 GiB")
    assert retry_resource(500, "ramp_fit", "x4", "mem_mb", 2) == 1000
    assert os.path.exists("logs")


def test_status_reports_scheduler_kills(tmp_path):
    import json

    from jwpipe.workflow.status import read_states

    plan = {"steps": [{"name": "jump"}], "units": {"jump": {
        "x1": {"inputs": [], "outputs": ["products/x1_jump.fits"]},
        "x2": {"inputs": [], "outputs": ["products/x2_jump.fits"]}}}}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    _log(tmp_path / "logs/slurm/rule_jump/x1/9.log", "error: Job 9 exceeded memory limit")
    states = {s.key: s for s in read_states(tmp_path)}
    assert states["x1"].status == "failed"
    assert "memory limit" in states["x1"].reasons[0] and "9.log" in states["x1"].reasons[0]
    assert states["x2"].status == "pending"
