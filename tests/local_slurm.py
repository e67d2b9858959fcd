"""The single-node SLURM of the test session (``scripts/slurm.sh``), shared by every test.

snakemake-executor-plugin-slurm asks ``scontrol show config`` when Snakemake starts, in every
Snakemake process and whichever executor runs. Where SLURM's commands are installed but no
controller answers (CI installs them for the SLURM tests), that question waits about 9 s, so each
``snakemake`` a test starts would pay 9 s of waiting. The session therefore brings the local
cluster up once, before the first test, when it can (root, SLURM installed), and takes it down
at the end only if it started it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "slurm.sh"


def cluster_answers() -> bool:
    """Whether a SLURM controller with an available partition answers here."""
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return False
    try:
        proc = subprocess.run(["sinfo", "-h", "-o", "%a"], capture_output=True, text=True,
                              timeout=15)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0 and "up" in proc.stdout


def cannot_start() -> str | None:
    """Why ``scripts/slurm.sh up`` cannot be tried here, or None."""
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        return "snakemake-executor-plugin-slurm is not installed (pip install jwpipe[slurm])"
    if os.geteuid() != 0:
        return "no SLURM answers here and starting one (scripts/slurm.sh up) needs root"
    if shutil.which("sbatch") is None and shutil.which("apt-get") is None:
        return "no SLURM answers here and apt-get is not available to install one"
    return None


def up() -> subprocess.CompletedProcess:
    """``scripts/slurm.sh up`` (exit 3: it cannot run here)."""
    return subprocess.run(["bash", str(SCRIPT), "up"], capture_output=True, text=True,
                          timeout=900)


def down() -> None:
    subprocess.run(["bash", str(SCRIPT), "down"], capture_output=True, timeout=120)
