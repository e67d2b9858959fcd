"""Resume an interrupted workflow safely.

1. Refuse while a live Snakemake process works in the directory (its lock is real).
2. End this workflow's orphaned local ``run-step`` jobs (recorded by PID and start time, see
   :mod:`jwpipe.workflow.processes`) and, on a cluster, cancel its orphaned SLURM jobs: a
   killed controller leaves jobs running, and a rerun next to an orphan writing the same
   output corrupted a product in our measurements.
3. Remove leftover temporary outputs (``.*.tmp`` and ``.*.part.fits`` files, ``.*.part``
   directories) and Snakemake's stale lock.
4. Rerun with ``--rerun-incomplete`` (in every jwpipe profile), which redoes exactly the
   unfinished jobs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["live_snakemake_pids", "orphan_slurm_jobs", "resume"]


def live_snakemake_pids(workdir: Path) -> list[int]:
    """PIDs of snakemake processes whose working directory is ``workdir``."""
    target = workdir.resolve()
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = Path(os.readlink(proc / "cwd")).resolve()
        except OSError:
            continue
        if "snakemake" in cmdline and "slurm-jobstep" not in cmdline and cwd == target:
            pids.append(int(proc.name))
    return pids


def orphan_slurm_jobs(workdir: Path) -> list[str]:
    """IDs of the user's queued/running SLURM jobs whose working directory is ``workdir``."""
    if shutil.which("squeue") is None:
        return []
    user = os.environ.get("USER") or os.environ.get("LOGNAME") or "root"
    proc = subprocess.run(["squeue", "-h", "-u", user, "-o", "%i %Z"], capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        return []
    target = str(workdir.resolve())
    return [line.split()[0] for line in proc.stdout.splitlines()
            if len(line.split()) == 2 and os.path.realpath(line.split()[1]) == target]


def resume(workdir: str | Path, snakemake_args: list[str], *, dry_run: bool = False) -> int:
    """Make the directory runnable again and rerun it; return Snakemake's exit status."""
    from jwpipe.errors import WorkflowError

    work = Path(workdir)
    if not (work / "Snakefile").is_file():
        raise WorkflowError(f"{work} is not a workflow directory (no Snakefile)")
    live = live_snakemake_pids(work)
    if live:
        raise WorkflowError(f"snakemake is still running in {work} (pid "
                            f"{', '.join(map(str, live))}); stop it first, or wait")
    from jwpipe.workflow.processes import end_orphans

    ended = end_orphans(work)
    if ended:
        print("ended orphaned local jobs of this workflow: " + ", ".join(
            f"{j['step']} {j['key']} (pid {j['pid']})" for j in ended), file=sys.stderr)
    jobs = orphan_slurm_jobs(work)
    if jobs:
        print(f"cancelling orphaned SLURM jobs of this workflow: {' '.join(jobs)}",
              file=sys.stderr)
        subprocess.run(["scancel", *jobs], check=False)
    # temporaries: directories (``.*.part``), files (``.*.tmp``), and the jwst engine's
    # datamodels (``.*.part.fits``, a suffix stdatamodels needs to pick its format)
    leftovers = [*work.glob("products/**/.*.part"), *work.glob("products/**/.*.tmp"),
                 *work.glob("products/**/.*.part.fits"), *work.glob("params/**/.*.tmp")]
    for part in leftovers:
        if part.is_dir():
            shutil.rmtree(part, ignore_errors=True)
        else:
            part.unlink(missing_ok=True)
    snakemake = [sys.executable, "-m", "snakemake"]
    if (work / ".snakemake" / "locks").is_dir() and any((work / ".snakemake" / "locks").iterdir()):
        subprocess.run([*snakemake, "--unlock"], cwd=work, check=False, capture_output=True)
    args = list(snakemake_args) or ["--profile", "profiles/local"]
    if "--rerun-incomplete" not in args and "--ri" not in args:
        args.append("--rerun-incomplete")
    if dry_run:
        args.append("-n")
    return subprocess.run([*snakemake, *args], cwd=work, check=False).returncode
