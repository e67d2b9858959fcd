"""workflow/ (catalog layout) builds the same DAG as make-workflow and is lint-clean."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml
from wfhelpers import job_env, planned_jobs
from wfsteps import STAGES

from jwpipe.workflow.generate import generate_workflow

REPO = Path(__file__).resolve().parents[2]
STAGE_NAMES = ["wfsteps.WfDetStage", "wfsteps.WfImgStage", "wfsteps.WfMosaicStage"]


def _run(cwd, *args, env=None):
    env = env or job_env()
    return subprocess.run([sys.executable, "-m", "snakemake", "-s",
                           str(REPO / "workflow" / "Snakefile"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_catalog_workflow_matches_generated_and_lints_clean(field):
    tmp = field["tmp"]
    overrides = {"inc": {"override_gain": str(field["gain"])}}
    (tmp / "config").mkdir()
    config = {"associations": [field["asn"]], "workdir": "catalog", "overrides": overrides,
              "stages": STAGE_NAMES}
    (tmp / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    dry = _run(tmp, "-n", "--cores", "1")
    assert dry.returncode == 0, dry.stderr
    generate_workflow([field["asn"]], tmp / "generated", stages=STAGES, overrides=overrides)
    assert planned_jobs(tmp / "generated") == planned_jobs(tmp / "catalog") == {
        "inc": 3, "dbl": 3, "scl": 3, "align": 1, "stack": 1}
    # and the report's pictures: _rate and _cal of each exposure, the mosaic, timings, status
    assert planned_jobs(tmp / "catalog", pictures=True) == {
        "inc": 3, "dbl": 3, "scl": 3, "align": 1, "stack": 1,
        "quicklook": 6, "quicklook_mosaic": 1, "timings": 1, "status_table": 1}
    assert (tmp / "catalog" / "Snakefile").read_text() == \
        (tmp / "generated" / "Snakefile").read_text()
    lint = _run(tmp, "--lint")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "good condition" in lint.stdout + lint.stderr


def test_catalog_config_is_validated(field):
    tmp = field["tmp"]
    (tmp / "config").mkdir()
    (tmp / "config" / "config.yaml").write_text(yaml.safe_dump(
        {"associations": [field["asn"]], "bogus_key": 1}))
    result = _run(tmp, "-n")
    assert result.returncode != 0
    assert "bogus_key" in result.stderr + result.stdout


def test_generated_workflow_is_lint_clean(field):
    work = field["tmp"] / "wf"
    generate_workflow([field["asn"]], work, stages=STAGES,
                      overrides={"inc": {"override_gain": str(field["gain"])}})
    env = job_env()
    lint = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=work, env=env,
                          capture_output=True, text=True, timeout=300)
    assert lint.returncode == 0, lint.stdout + lint.stderr


_COUNTER = '''\
import os

if os.environ.get("JWPIPE_TEST_PLAN_CALLS"):
    import jwpipe.workflow.plan as _plan

    _real = _plan.plan_workflow

    def _counted(*args, **kwargs):
        with open(os.environ["JWPIPE_TEST_PLAN_CALLS"], "a") as fh:
            fh.write(f"{os.getpid()}\\n")
        return _real(*args, **kwargs)

    _plan.plan_workflow = _counted
'''


def test_catalog_plans_once_and_a_cluster_job_never_plans(field):
    """Every process that imports jwpipe counts its planner calls (a sitecustomize wrapper):
    the controller's dry run plans once; a job started as a cluster job starts it
    (``--mode remote``, which re-parses workflow/Snakefile) runs without planning."""
    tmp = field["tmp"]
    hooks = tmp / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(_COUNTER)
    calls = tmp / "plan_calls.txt"
    env = job_env(JWPIPE_TEST_PLAN_CALLS=str(calls))
    env["PYTHONPATH"] = os.pathsep.join([str(hooks), env["PYTHONPATH"]])
    (tmp / "config").mkdir()
    (tmp / "config" / "config.yaml").write_text(yaml.safe_dump({
        "associations": [field["asn"]], "workdir": "catalog", "stages": STAGE_NAMES,
        "overrides": {"inc": {"override_gain": str(field["gain"])}}}))

    def n_calls():
        return len(calls.read_text().split()) if calls.exists() else 0

    dry = _run(tmp, "-n", "--cores", "1", env=env)
    assert dry.returncode == 0, dry.stderr
    assert "inc" in dry.stdout and "stack" in dry.stdout  # the default target plans jobs
    assert n_calls() == 1
    root = field["roots"][0]
    job = _run(tmp, "--mode", "remote", "--target-jobs", f"inc:exp={root}",
               "--allowed-rules", "inc", "--cores", "1", "--nolock", "--force", env=env)
    assert job.returncode == 0, job.stdout + job.stderr
    assert (tmp / "catalog" / "products" / f"{root}_inc.fits").is_file()
    assert (tmp / "catalog" / "state" / "inc" / f"{root}.json").is_file()
    assert n_calls() == 1
