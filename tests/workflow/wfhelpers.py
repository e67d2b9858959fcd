"""Helpers for workflow tests: run the real Snakemake CLI, count the jobs a run would execute."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def pythonpath() -> str:
    """The test steps first, then whatever the caller has (the source under test)."""
    return os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p)


def job_env(**extra: str) -> dict[str, str]:
    """The environment of a Snakemake or jwpipe subprocess in these tests."""
    return dict(os.environ, PYTHONPATH=pythonpath(), JWPIPE_ALLOW_IMPORT="wfsteps", **extra)


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run the real snakemake CLI in ``workdir`` with the test steps importable."""
    env = job_env()
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", *args],
                          cwd=workdir, env=env, capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


#: Rules that draw the report's pictures (jwpipe.workflow.report_rules), not pipeline steps.
PICTURE_RULES = frozenset({"quicklook", "quicklook_mosaic", "alignment_residuals", "timings",
                           "status_table"})


def planned_jobs(workdir: Path, pictures: bool = False) -> dict[str, int]:
    """Jobs a run would execute, by rule (from a real dry run); the picture rules only with
    ``pictures``."""
    out = snakemake(workdir, "-n").stdout
    if "Nothing to be done" in out:
        return {}
    counts: dict[str, int] = {}
    table = out.split("Job stats:", 1)[1]
    for line in table.splitlines()[3:]:
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not m:
            if line.strip().startswith("total"):
                break
            continue
        counts[m.group(1)] = int(m.group(2))
    counts.pop("all", None)
    counts.pop("total", None)
    if not pictures:
        counts = {rule: n for rule, n in counts.items() if rule not in PICTURE_RULES}
    return counts


def within_requests(workdir: Path) -> None:
    """Every job of a finished run stayed within the memory its unit requested."""
    plan = json.loads((workdir / "plan.json").read_text())
    for step, units in plan["units"].items():
        for key, planned in units.items():
            made = json.loads((workdir / "state" / step / f"{key}.json").read_text())
            assert made["measured"]["peak_rss_mb"] < planned["mem_mb"], (step, key)
