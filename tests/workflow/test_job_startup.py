"""Issue 13: what a workflow job process and ``make-workflow`` import, and how a job ends.

A job that does no real work (``group_scale`` of an exposure with NFRAMES=1) is run as a real
``jwpipe run-step`` subprocess with ``-X importtime``; modules only planning, other steps or
other commands need must not be among its imports (each was measured on a job's start-up,
``benchmarks/bench_workflow_overhead.py --startup``). The job process skips the interpreter's
teardown, so its log and error lines must still all arrive and its temporary files go.
``make-workflow`` reads step declarations, not step code: it must not import what only running
a step needs (scipy and the data models cost 0.2 s of a 0.7 s generation of 100 exposures).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from jwpipe.associations import asn_from_list, write_asn
from jwpipe.cli.main import main as cli_main
from jwpipe.pipeline import Detector1Pipeline
from jwpipe.simulate import simulate_field
from jwpipe.workflow.generate import generate_workflow

#: Imported by no step job of the built-in Detector1 steps (prefix match).
NOT_IN_A_JOB = (
    "crds", "asdf", "gwcs", "matplotlib", "snakemake", "scipy", "photutils", "drizzle",
    "astropy.table", "astropy.modeling", "astropy.coordinates", "astropy.time",
    "jwpipe.workflow.plan", "jwpipe.workflow.generate", "jwpipe.workflow.snakefile",
    "jwpipe.references.cache_writer", "jwpipe.references.subarray", "jwpipe.pipeline.",
    "jwpipe.cli.workflow", "jwpipe.cli.strun", "jwpipe.simulate",
    "jwpipe.algorithms.jump", "jwpipe.algorithms.ramp_fit", "jwpipe.algorithms.dark_current",
)

#: Imported by no ``make-workflow`` of an image3 association (the crds client brings astropy).
NOT_IN_PLANNING = (
    "scipy", "gwcs", "matplotlib", "photutils", "drizzle", "snakemake",
    "jwpipe.datamodels.model_base", "jwpipe.datamodels.container", "jwpipe.simulate",
)


def _imported(stderr: str) -> set[str]:
    """Module names of a ``python -X importtime`` listing."""
    return {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines()
            if line.startswith("import time:") and "self [us]" not in line}


def _unwanted(imported: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(m for m in imported for prefix in prefixes
                  if m == prefix.rstrip(".") or m.startswith(prefix.rstrip(".") + "."))


@pytest.fixture(scope="module")
def workflow(tmp_path_factory):
    base = tmp_path_factory.mktemp("startup")
    sim = simulate_field(base / "sim", n_exposures=1, size=32, ngroups=3, seed=3)
    uncal = sim.uncal_files[0]
    root = uncal.name.replace("_uncal.fits", "")
    asn = uncal.parent / "asn.json"
    write_asn(asn_from_list([f"{root}_rate.fits"], asn_type="image2"), asn)
    work = base / "wf"
    generate_workflow([str(asn)], work, refs=str(sim.store_dir), stages=[Detector1Pipeline],
                      pictures=False)
    return work, root


def _job(work: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=work, capture_output=True, text=True,
                          timeout=300)


def test_job_imports_nothing_it_does_not_use(workflow):
    work, root = workflow
    run = _job(work, "-X", "importtime", "-m", "jwpipe", "run-step",
               f"units/group_scale/{root}.json")
    assert run.returncode == 0, run.stderr[-3000:]
    imported = _imported(run.stderr)
    # the job did its work, and the listing is read right
    assert {"jwpipe.workflow.runstep", "jwpipe.stpipe.step", "jwpipe.fits_checksum",
            "astropy.io.fits"} <= imported
    assert (work / "products" / f"{root}_group_scale.fits").is_file()
    assert json.loads((work / "state" / "group_scale" / f"{root}.json").read_text())[
        "fingerprints"]
    assert _unwanted(imported, NOT_IN_A_JOB) == []


def test_make_workflow_imports_no_step_code(tmp_path):
    sim = simulate_field(tmp_path / "sim", n_exposures=2, size=32, ngroups=3, seed=3)
    run = _job(tmp_path, "-X", "importtime", "-m", "jwpipe", "make-workflow", str(sim.asn_image3),
               "--refs", str(sim.store_dir), "-o", str(tmp_path / "wf"))
    assert run.returncode == 0, run.stderr[-3000:]
    imported = _imported(run.stderr)
    # it planned every stage (so it read every step's declaration) and selected references
    assert {"jwpipe.steps.ramp_fit", "jwpipe.steps.outlier_detection",
            "jwpipe.steps.source_catalog", "crds.core.rmap"} <= imported
    assert (tmp_path / "wf" / "units" / "source_catalog").is_dir()
    assert _unwanted(imported, NOT_IN_PLANNING) == []


def test_job_process_output_arrives_without_teardown(workflow, tmp_path):
    work, root = workflow
    ok = _job(work, "-m", "jwpipe", "run-step", f"units/group_scale/{root}.json")
    assert ok.returncode == 0
    assert "group_scale done in" in ok.stderr.strip().splitlines()[-1]  # the log was flushed
    unit = json.loads((work / "units" / "group_scale" / f"{root}.json").read_text())
    unit["inputs"][0]["path"] = str(tmp_path / "missing_uncal.fits")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(unit))
    failed = _job(work, "-m", "jwpipe", "run-step", str(bad))
    assert failed.returncode == 1
    assert failed.stderr.strip().splitlines()[-1] == (
        f"jwpipe run-step {bad}: error: input(s) do not exist: {tmp_path / 'missing_uncal.fits'}")
    leftovers = [p.name for p in (work / "products").iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_in_process_job_command_returns(workflow, monkeypatch):
    """Called with arguments (tests, other tools), the command returns its status."""
    work, root = workflow
    monkeypatch.chdir(work)
    sigterm = signal.getsignal(signal.SIGTERM)  # run-step sets its own; pytest keeps the default
    try:
        assert cli_main(["run-step", f"units/group_scale/{root}.json"]) == 0
    finally:
        signal.signal(signal.SIGTERM, sigterm)
