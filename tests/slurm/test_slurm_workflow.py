"""Generated workflows on a real SLURM (single node on localhost, ``scripts/slurm.sh``).

Every test drives the real ``snakemake --profile profiles/ci-slurm`` with
snakemake-executor-plugin-slurm, real ``sbatch``/``squeue``/``scancel`` and real FITS files, and
compares cluster products with a local run of the same workflow.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml

import local_slurm
from jwpipe import datamodels
from jwpipe.associations import asn_from_list, write_asn
from jwpipe.workflow.generate import generate_workflow

pytestmark = pytest.mark.slurm

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
PROFILE = REPO / "profiles" / "ci-slurm"
TEST_STEP_DIRS = [HERE, HERE.parent / "workflow"]
for _d in TEST_STEP_DIRS:
    if str(_d) not in sys.path:
        sys.path.insert(0, str(_d))

import slurmsteps  # noqa: E402
import wfsteps  # noqa: E402


@pytest.fixture(scope="session")
def slurm():
    """A SLURM that answers: the session's (``tests/conftest.py``), or one started (and later
    stopped) here."""
    if local_slurm.cluster_answers():
        yield
        return
    why = local_slurm.cannot_start()
    if why:
        pytest.skip(why)
    proc = local_slurm.up()
    if proc.returncode == 3:
        pytest.skip(f"cannot start a local SLURM: {proc.stderr.strip().splitlines()[-1]}")
    assert proc.returncode == 0, f"scripts/slurm.sh up failed:\n{proc.stdout}\n{proc.stderr}"
    try:
        yield
    finally:
        local_slurm.down()


@pytest.fixture
def env(monkeypatch):
    """Test steps importable here, in snakemake and in the SLURM jobs (sbatch --export=ALL),
    and the jobs running the jwpipe under test (first on the path)."""
    import jwpipe

    source = str(Path(jwpipe.__file__).resolve().parents[1])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([source, *map(str, TEST_STEP_DIRS)]))
    monkeypatch.setenv("JWPIPE_ALLOW_IMPORT", "wfsteps:slurmsteps")
    return dict(os.environ)


def _run(work: Path, *args: str, profile: Path | str = PROFILE,
         timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snakemake", "--profile", str(profile), *args],
                          cwd=work, capture_output=True, text=True, timeout=timeout)


def _ok(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, f"snakemake failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}"


def _submissions(work: Path) -> Counter:
    """sbatch submissions so far, by rule or group (the plugin writes one log per job)."""
    logs = work / "logs" / "slurm"
    return Counter(p.relative_to(logs).parts[0] for p in logs.rglob("*.log"))


def _jobs_of(work: Path) -> list[dict[str, str]]:
    """Every job squeue still knows (MinJobAge=600 keeps finished ones) of this workflow."""
    out = subprocess.run(["squeue", "-h", "--states=all", "-o", "%i|%T|%m|%k|%Z"],
                         capture_output=True, text=True, check=True).stdout
    jobs = []
    for line in out.splitlines():
        jobid, state, mem, comment, wd = line.split("|", 4)
        if os.path.realpath(wd) == str(work.resolve()):
            jobs.append({"id": jobid, "state": state, "mem": mem, "comment": comment})
    return jobs


def _field(tmp: Path, firsts: list[float], member_suffix: str) -> tuple[str, list[str]]:
    """Exposures (8x8 _uncal) whose first pixel is ``firsts[i]``, and an association."""
    data = tmp / "data"
    data.mkdir()
    roots = [f"jw01234001001_01101_{i + 1:05d}_nrca1" for i in range(len(firsts))]
    for i, (root, first) in enumerate(zip(roots, firsts, strict=True)):
        model = datamodels.ImageModel(data=np.full((8, 8), float(i + 1), np.float32))
        model.meta.instrument.name = "NIRCAM"
        model.meta.instrument.detector = "NRCA1"
        model.data[0, 0] = first
        model.save(str(data / f"{root}_uncal.fits"))
    asn = asn_from_list([f"{r}_{member_suffix}.fits" for r in roots],
                        product_name="jw01234-o001_t001_nircam")
    write_asn(asn, data / "asn.json")
    return str(data / "asn.json"), roots


def _assert_same_products(ref: Path, work: Path) -> int:
    files = sorted((ref / "products").rglob("*.fits"))
    assert files
    for path in files:
        other = work / path.relative_to(ref)
        with datamodels.open(str(path)) as a, datamodels.open(str(other)) as b:
            np.testing.assert_array_equal(a.data, b.data, err_msg=str(other))
    assert sorted(p.relative_to(work) for p in (work / "products").rglob("*.fits")) == \
        [p.relative_to(ref) for p in files]
    return len(files)


def test_cluster_run_equals_local_and_resubmits_only_what_changed(slurm, env, tmp_path):
    asn, roots = _field(tmp_path, [10.0, 20.0, 30.0], "cal")
    (tmp_path / "gain.txt").write_text("0.5\n")
    params = tmp_path / "det.yaml"
    params.write_text(yaml.safe_dump({"class": "wfsteps.WfDetStage", "steps": [
        {"name": "inc", "parameters": {"override_gain": str(tmp_path / "gain.txt")}},
        {"name": "dbl", "parameters": {"factor": 2.0}}]}))

    def generate(work: Path, **overrides: dict) -> None:
        generate_workflow([asn], work, param_files=[str(params)], stages=wfsteps.STAGES,
                          overrides=overrides, pictures=False)

    # the test stage is not Detector1Pipeline, so its chain is grouped from the command line,
    # as a site would in its profile (`groups:`); profiles/ci-slurm packs 3 chains per job
    group = ("--groups", "inc=detector1", "dbl=detector1")

    ref, work = tmp_path / "local", tmp_path / "cluster"
    generate(ref)
    _ok(_run(ref, profile=ref / "profiles" / "local"))
    generate(work)

    # a step sent to a partition that does not exist: its job fails with a message naming the
    # partition, the rule and the unit; everything else runs to the end (keep-going)
    bad = _run(work, *group, "--set-resources", "stack:slurm_partition=nosuchpartition")
    text = bad.stdout + bad.stderr
    assert bad.returncode != 0
    assert re.search(r"Error in rule stack:\s+message: SLURM sbatch failed\. .*invalid partition "
                     r"specified: nosuchpartition.*?wildcards: product=jw01234-o001_t001_nircam",
                     text, re.S), text[-4000:]
    first = _submissions(work)
    assert first == {"group_detector1_dbl_inc": 1, "rule_scl": 3, "rule_align": 1}, first
    assert not (work / "products" / "jw01234-o001_t001_nircam_i2d.fits").exists()
    assert all((work / "products" / f"{r}_cal.fits").exists() for r in roots)

    # the rerun picks up exactly the failed work: one submission, for stack
    _ok(_run(work, *group))
    assert _submissions(work) - first == {"rule_stack": 1}
    assert _assert_same_products(ref, work) == 13  # 3 each of inc, rate, cal, aligned; i2d
    done = _submissions(work)
    assert _run(work, "-n").stdout.count("Nothing to be done") == 1

    # a changed parameter of one step resubmits that step and what depends on it, nothing else
    generate(ref, scl={"factor": 5.0})
    _ok(_run(ref, profile=ref / "profiles" / "local"))
    generate(work, scl={"factor": 5.0})
    _ok(_run(work, *group))
    assert _submissions(work) - done == {"rule_scl": 3, "rule_align": 1, "rule_stack": 1}
    _assert_same_products(ref, work)
    assert all(j["state"] == "COMPLETED" for j in _jobs_of(work)
               if "stack" in j["comment"] or "scl" in j["comment"])


def test_memory_kill_is_reported_and_retried_with_more_memory(slurm, env, tmp_path):
    # first pixel 0: needs nothing; 1: needs 700 MB more than the 600 MB its job gets;
    # -1: bad input (an ordinary failure, not a memory problem)
    asn, roots = _field(tmp_path, [0.0, 1.0, -1.0], "rate")
    work = tmp_path / "cluster"
    generate_workflow([asn], work, stages=[slurmsteps.HogStage],
                      overrides={"hog": {"megabytes": 700}}, pictures=False)
    proc = _run(work)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    products = work / "products"
    assert (products / f"{roots[0]}_rate.fits").exists()  # keep-going: the good unit is done
    assert (products / f"{roots[1]}_rate.fits").exists()  # killed once, then retried bigger
    assert not (products / f"{roots[2]}_rate.fits").exists()

    jobs = {r: [j for j in _jobs_of(work) if j["comment"].endswith(r)] for r in roots}
    hog = jobs[roots[1]]
    assert [j["state"] for j in sorted(hog, key=lambda j: int(j["id"]))] == \
        ["FAILED", "COMPLETED"]
    assert [j["mem"] for j in sorted(hog, key=lambda j: int(j["id"]))] == ["600M", "1200M"]
    first_id = min(int(j["id"]) for j in hog)
    killed = work / "logs" / "slurm" / "rule_hog" / roots[1] / f"{first_id}.log"
    assert "exceeded memory limit" in killed.read_text()
    # the failure message names the job and the logs to read
    assert re.search(rf"Error in rule hog:.*?wildcards: exp={roots[1]}", text, re.S)
    assert f"logs/slurm/rule_hog/{roots[1]}/" in text
    assert f"logs/hog/{roots[2]}.log" in text
    assert "bad on purpose" in (work / "logs" / "hog" / f"{roots[2]}.log").read_text()

    # a rerun would redo exactly the failed unit
    dry = _run(work, "-n").stdout
    assert re.search(r"^hog\s+1$", dry, re.M), dry

    # an ordinary failure is retried with the same memory (needs the OOM-aware lambda of the
    # generated Snakefile; the old rule doubled memory on any retry)
    bad = sorted(jobs[roots[2]], key=lambda j: int(j["id"]))
    assert [j["state"] for j in bad] == ["FAILED", "FAILED"]
    if "retry_resource" not in (work / "Snakefile").read_text():
        pytest.skip("generated Snakefile multiplies memory on every retry (snakefile.py lacks "
                    "retry_resource)")
    assert [j["mem"] for j in bad] == ["600M", "600M"]


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_resume_cancels_orphans_of_a_killed_controller(slurm, env, tmp_path):
    asn, _ = _field(tmp_path, [3.0, 4.0], "rate")
    overrides = {"nap": {"seconds": 8.0, "factor": 3.0}}
    ref, work = tmp_path / "local", tmp_path / "cluster"
    for where in (ref, work):
        generate_workflow([asn], where, stages=[slurmsteps.NapStage], overrides=overrides,
                          pictures=False)
    _ok(_run(ref, profile=ref / "profiles" / "local"))

    controller = subprocess.Popen(
        [sys.executable, "-m", "snakemake", "--profile", str(PROFILE)], cwd=work,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        running = _wait_for(lambda: [j for j in _jobs_of(work) if j["state"] == "RUNNING"],
                            120, "a running SLURM job of the workflow")
    finally:
        os.kill(controller.pid, signal.SIGKILL)  # the controller only, as a crash would
        controller.wait()
    orphans = {j["id"] for j in running}
    still = {j["id"] for j in _jobs_of(work) if j["state"] in ("RUNNING", "PENDING")}
    assert orphans <= still, "the killed controller's jobs should still be running"

    proc = subprocess.run([sys.executable, "-m", "jwpipe", "resume", str(work), "--profile",
                           str(PROFILE)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "cancelling orphaned SLURM jobs" in proc.stderr
    states = {j["id"]: j["state"] for j in _jobs_of(work)}
    assert all(states[i] == "CANCELLED" for i in orphans), states
    assert _assert_same_products(ref, work) == 2
    assert "Nothing to be done" in _run(work, "-n").stdout


@pytest.mark.slow
def test_stage_jobs_packed_by_group_components(slurm, env, tmp_path):
    """``--granularity stage`` on SLURM: the profile's ``groups:`` and ``group-components:``
    pack the stage jobs of several exposures into one sbatch job each; the products equal a
    local run's."""
    asn, roots = _field(tmp_path, [5.0, 6.0, 7.0, 8.0], "cal")
    (tmp_path / "gain.txt").write_text("0.5\n")
    overrides = {"inc": {"override_gain": str(tmp_path / "gain.txt")}}
    ref, work = tmp_path / "local", tmp_path / "cluster"
    for where in (ref, work):
        generate_workflow([asn], where, stages=wfsteps.STAGES, overrides=overrides,
                          pictures=False, granularity="stage")
    _ok(_run(ref, profile=ref / "profiles" / "local"))
    # as profiles/slurm does for detector1 and image2: the stage rules of the test pipelines
    # are wf_det and wf_img; 4 exposures, at most 3 per sbatch job -> 2 jobs per stage
    profile = tmp_path / "profile"
    profile.mkdir()
    config = yaml.safe_load((PROFILE / "config.yaml").read_text())
    config["groups"] = {"wf_det": "wf_det", "wf_img": "wf_img"}
    config["group-components"] = {"wf_det": 3, "wf_img": 3}
    (profile / "config.yaml").write_text(yaml.safe_dump(config))
    dry = _run(work, "-n", profile=profile).stdout
    assert re.search(r"^wf_det\s+4$", dry, re.M) and re.search(r"^wf_img\s+4$", dry, re.M), dry
    _ok(_run(work, profile=profile))
    sent = _submissions(work)
    groups = {k: v for k, v in sent.items() if k.startswith("group_")}
    assert sum(sent.values()) == 5, sent  # 9 stage jobs in 5 sbatch jobs
    assert sorted(groups.values()) == [2, 2] and sent["rule_wf_mosaic"] == 1, sent
    assert _assert_same_products(ref, work) == 17  # 4 each of inc, rate, cal, aligned; i2d
    for root in roots:  # each stage job ran its steps and kept their intermediates
        record = json.loads((work / "state" / "wf_det" / f"{root}.json").read_text())
        assert [s["action"] for s in record["steps"]] == ["ran", "ran"]
    assert "Nothing to be done" in _run(work, "-n", profile=profile).stdout
