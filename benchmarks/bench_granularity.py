"""Step jobs against stage jobs (``--granularity step|stage``), side by side in one run.

    python benchmarks/bench_granularity.py [--demo] [--run-n 20] [--dry-n 100 1000]

* ``--demo``: the demo's data (4 exposures, 256x256, 8 groups, the image3 association): jobs,
  ``snakemake -n`` time, the wall time of the whole run (``--cores 2``), files and bytes the run
  left in the workflow directory (and Snakemake's own metadata), then a changed jump threshold:
  jobs and wall time of the rerun.
* ``--run-n N``: the same run for N copies of a small exposure (32x32, 3 groups), where per-job
  start-up dominates.
* ``--dry-n N ...``: N copies; generation and ``snakemake -n -q`` time and the job count.

Pictures are left out (the same for both granularities). Times are wall / CPU seconds (CPU of
Snakemake and every job it ran): on a shared, loaded 2-core machine compare the two
granularities of one run, and prefer the CPU column.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GRANULARITIES = ("step", "stage")


def _copies(base: Path, n: int) -> tuple[Path, Path]:
    """N copies of one small simulated exposure (distinct names) and one image3 association."""
    from jwpipe.associations import asn_from_list, write_asn
    from jwpipe.simulate import simulate_field

    sim = simulate_field(base / f"sim{n}", n_exposures=1, size=32, ngroups=3, seed=3)
    data = base / f"data{n}"
    data.mkdir()
    names = []
    for i in range(n):
        name = f"jw02000{i // 1000 + 1:03d}001_01101_{i % 1000 + 1:05d}_nrca1"
        shutil.copyfile(sim.uncal_files[0], data / f"{name}_uncal.fits")
        names.append(f"{name}_cal.fits")
    asn = data / "bench_image3_asn.json"
    write_asn(asn_from_list(names, product_name="jw02000-o001_t001_nircam_clear-f200w"), asn)
    return asn, sim.store_dir


def _cpu() -> float:
    """CPU seconds (user + system) of every finished child process and their children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _snakemake(work: Path, *args: str) -> tuple[float, float, str]:
    """Wall and CPU seconds of one snakemake run (with its jobs), and its output."""
    t0, c0 = time.perf_counter(), _cpu()
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2",
                           "--scheduler", "greedy", *args], cwd=work, capture_output=True,
                          text=True)
    elapsed, cpu = time.perf_counter() - t0, _cpu() - c0
    if proc.returncode != 0:
        raise SystemExit(f"snakemake failed in {work}:\n{proc.stdout[-3000:]}\n"
                         f"{proc.stderr[-3000:]}")
    return elapsed, cpu, proc.stdout + proc.stderr


def _jobs(work: Path) -> int:
    _, _, out = _snakemake(work, "-n")
    if "Nothing to be done" in out:
        return 0
    return int(re.search(r"^total\s+(\d+)", out, re.M).group(1)) - 1  # without `all`


def _files(work: Path) -> tuple[int, int, int]:
    """Files and bytes in the workflow directory (without .snakemake), files in .snakemake."""
    ours = [p for p in work.rglob("*") if p.is_file() and ".snakemake" not in p.parts]
    meta = [p for p in (work / ".snakemake").rglob("*") if p.is_file()]
    return len(ours), sum(p.stat().st_size for p in ours), len(meta)


def _run_both(asn: Path, refs: Path, base: Path, label: str) -> list[str]:
    from jwpipe.workflow.generate import generate_workflow

    rows = []
    for g in GRANULARITIES:
        work = base / f"{label}-{g}"
        generate_workflow([str(asn)], work, refs=str(refs), granularity=g, pictures=False)
        jobs = _jobs(work)
        t_dry, c_dry, _ = _snakemake(work, "-n", "-q")
        t_run, c_run, _ = _snakemake(work, "-q")
        files, nbytes, meta = _files(work)
        generate_workflow([str(asn)], work, refs=str(refs), granularity=g, pictures=False,
                          overrides={"jump": {"rejection_threshold": 5.0}})
        rerun_jobs = _jobs(work)
        t_rerun, c_rerun, _ = _snakemake(work, "-q")
        rows.append(f"| {label} | {g} | {jobs} | {t_dry:.1f} / {c_dry:.1f} | {t_run:.1f} / "
                    f"{c_run:.1f} | {files} | {nbytes / 2**20:.1f} | {meta} | {rerun_jobs} | "
                    f"{t_rerun:.1f} / {c_rerun:.1f} |")
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo", action="store_true", help="the demo's data, run for real")
    parser.add_argument("--run-n", type=int, nargs="*", default=[],
                        help="N small exposures, run for real")
    parser.add_argument("--dry-n", type=int, nargs="*", default=[],
                        help="N small exposures, generation and dry run only")
    ns = parser.parse_args()
    from jwpipe.workflow.generate import generate_workflow

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        if ns.demo or ns.run_n:
            print("| data | granularity | jobs | `snakemake -n` wall / CPU s | run wall / CPU s | "
                  "files | MiB | .snakemake files | jobs after jump change | rerun wall / CPU s |")
            print("|---|---|---|---|---|---|---|---|---|---|")
        if ns.demo:
            from jwpipe.simulate import simulate_field

            sim = simulate_field(base / "demo", n_exposures=4, size=256, ngroups=8, seed=2026)
            _run_both(sim.asn_image3, sim.store_dir, base, "demo (4 x 256x256)")
        for n in ns.run_n:
            asn, refs = _copies(base, n)
            _run_both(asn, refs, base, f"{n} x 32x32")
        if ns.dry_n:
            print("\n| exposures | granularity | jobs | generate s | "
                  "`snakemake -n -q` wall / CPU s |")
            print("|---|---|---|---|---|")
        for n in ns.dry_n:
            asn, refs = _copies(base, n)
            for g in GRANULARITIES:
                work = base / f"dry{n}-{g}"
                t0 = time.perf_counter()
                plan, _ = generate_workflow([str(asn)], work, refs=str(refs), granularity=g,
                                            pictures=False)
                t_gen = time.perf_counter() - t0
                t_dry, c_dry, _ = _snakemake(work, "-n", "-q")
                chains = json.loads((work / "plan.json").read_text()).get("chains")
                jobs = sum(map(len, chains.values())) if chains else len(plan.units)
                print(f"| {n} | {g} | {jobs} | {t_gen:.1f} | {t_dry:.1f} / {c_dry:.1f} |",
                      flush=True)
                shutil.rmtree(work)


if __name__ == "__main__":
    main()
