"""Issue 15 item 5: recovery after kills, with the real Snakemake CLI and real processes.

* a job killed by a signal is ``failed (killed by signal 9)`` in ``jwpipe status``;
* killing Snakemake alone leaves its local jobs running; ``jwpipe resume`` ends them (by their
  recorded PID and start time) before it starts the same jobs again;
* ten SIGKILLs at random moments (of the whole process group or of Snakemake alone), each
  followed by the documented ``jwpipe resume``, give the same data as an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from wfhelpers import HERE, planned_jobs
from wfsteps import STAGES

import jwpipe
from jwpipe import datamodels
from jwpipe.workflow.generate import generate_workflow
from jwpipe.workflow.resume import live_snakemake_pids

SRC = str(Path(jwpipe.__file__).resolve().parents[1])


def _env(delay: float = 0.0) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([SRC, str(HERE)]),
                JWPIPE_ALLOW_IMPORT="wfsteps", WFSTEPS_DELAY=str(delay))


def _generate(field, work):
    import yaml

    params = field["tmp"] / "det.yaml"
    params.write_text(yaml.safe_dump({"class": "wfsteps.WfDetStage", "steps": [
        {"name": "inc", "parameters": {"override_gain": str(field["gain"])}}]}))
    generate_workflow([field["asn"]], work, param_files=[str(params)], stages=STAGES)


def _start(args, work, delay):
    return subprocess.Popen(args, cwd=work, env=_env(delay), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def _wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError("timed out")


def _jobs(work: Path) -> list[Path]:
    return sorted((work / ".jwpipe" / "jobs").glob("*.json"))


def _data_hashes(work: Path) -> dict[str, str]:
    out = {}
    for path in sorted((work / "products").rglob("*.fits")):
        with datamodels.open(str(path)) as model:
            out[str(path.relative_to(work))] = hashlib.sha256(
                np.ascontiguousarray(model.data).tobytes()).hexdigest()
    return out


def _jw(*args, work, delay=0.0):
    return subprocess.run([sys.executable, "-m", "jwpipe", *args], cwd=work, env=_env(delay),
                          capture_output=True, text=True, timeout=300)


def test_job_killed_by_signal_is_failed_in_status(field):
    work = field["tmp"] / "wf"
    _generate(field, work)
    proc = _start([sys.executable, "-m", "snakemake", "--cores", "1"], work, delay=30)
    record = _wait_for(lambda: _jobs(work))[0]
    import json

    pid = json.loads(record.read_text())["pid"]
    os.kill(pid, signal.SIGKILL)  # the job only; Snakemake sees it fail
    assert proc.wait(timeout=120) != 0
    out = _jw("status", ".", work=work).stdout
    step, key = record.stem.split(".", 1)
    assert f"{step} {key}: failed (killed by signal 9)" in out
    assert "pending" in out  # everything downstream


def test_resume_ends_orphaned_local_jobs(field):
    work = field["tmp"] / "wf"
    _generate(field, work)
    proc = _start([sys.executable, "-m", "snakemake", "--cores", "2"], work, delay=60)
    records = _wait_for(lambda: _jobs(work))
    snakes = live_snakemake_pids(work)
    assert snakes
    for pid in snakes:
        os.kill(pid, signal.SIGKILL)  # Snakemake alone: its jobs keep running
    proc.wait(timeout=60)
    import json

    orphans = [json.loads(r.read_text())["pid"] for r in records]
    assert all(Path(f"/proc/{p}").exists() for p in orphans)
    ended = _jw("resume", ".", "--dry-run", "--cores", "2", work=work)  # ends them, runs nothing
    assert ended.returncode == 0, ended.stderr[-2000:]
    assert "ended orphaned local jobs of this workflow: " in ended.stderr
    for pid in orphans:  # gone now, long before their 60 s were up
        assert not Path(f"/proc/{pid}").exists() or \
            Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] == "Z"
    resumed = _jw("resume", ".", "--cores", "2", work=work)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert planned_jobs(work) == {}
    assert not _jobs(work)


@pytest.mark.slow
def test_ten_random_kills_then_resume_match_an_uninterrupted_run(field):
    ref = field["tmp"] / "ref"
    _generate(field, ref)
    subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2"], cwd=ref, env=_env(),
                   check=True, capture_output=True, timeout=300)
    expected = _data_hashes(ref)
    work = field["tmp"] / "wf"
    _generate(field, work)
    seed = int(os.environ.get("KILL_SEED", time.time_ns() % 100_000))
    rng = random.Random(seed)
    print(f"kill seed {seed}")
    for moment in range(10):
        # the documented command after any interruption
        proc = _start([sys.executable, "-m", "jwpipe", "resume", ".", "--cores", "2"], work,
                      delay=0.2)
        time.sleep(rng.uniform(0.5, 8.0))  # snakemake start-up ~3 s, then jobs
        if rng.random() < 0.5:
            os.killpg(proc.pid, signal.SIGKILL)  # everything
            how = "group"
        else:
            os.kill(proc.pid, signal.SIGKILL)  # the resume wrapper, then Snakemake alone:
            for pid in live_snakemake_pids(work):  # its jobs are orphaned
                os.kill(pid, signal.SIGKILL)
            how = "snakemake"
        proc.wait(timeout=60)
        print(f"kill {moment}: {how}")
        for path in (work / "products").glob("*.fits"):  # nothing partial under a final name
            datamodels.open(str(path)).close()
    _wait_for(lambda: not live_snakemake_pids(work), timeout=30)  # one caught mid-spawn
    final = _jw("resume", ".", "--cores", "2", work=work)
    assert final.returncode == 0, f"seed {seed}: {final.stderr[-2000:]}"
    assert _data_hashes(work) == expected, f"seed {seed}"
    assert planned_jobs(work) == {}
    assert _jw("verify", ".", work=work).returncode == 0
