"""Benchmark: one image3 workflow run by both engines on the same data, per step.

Usage::

    python benchmarks/bench_jwst_engine.py [--workdir DIR] [--sizes 256,1024] [--ngroups 5]
        [--engines jwst,jwpipe]

Inputs: the simulator's NIRCam ramps (two dithered exposures, ``size`` x ``size`` subarray)
re-written by STScI's stdatamodels, and the simulator's CRDS cache completed with what jwst
needs (``tests/engines/jwst_data.py``). For each size and engine the script generates the
workflow (``make-workflow --engine ...``), runs it with real Snakemake on one core (jobs one at
a time, so each job's time is its own), and reads Snakemake's benchmark file of every job:
wall time from process start to exit (Python start-up and imports included) and peak RSS.
With two sizes it also fits, for every jwst step, the memory request the engine declares:
``MB = base + factor * (MB of the exposure's float32 science array)``.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "engines"))


def make_and_run(made: dict, engine: str, wf: Path) -> tuple[float, list[tuple[str, str, dict]]]:
    """``make-workflow`` of the association ``made["asn"]`` (cache ``made["cache"]``) into
    ``wf`` and a Snakemake run of it on one core (jobs one at a time): its wall time and, per
    job, (rule, unit key, Snakemake's benchmark row)."""
    gen = subprocess.run([sys.executable, "-m", "jwpipe", "make-workflow", str(made["asn"]),
                          "--engine", engine, "--refs", str(made["cache"]), "-o", str(wf),
                          "--no-pictures"], capture_output=True, text=True)
    if gen.returncode != 0:
        raise SystemExit(gen.stderr)
    t0 = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "snakemake", "--profile", "profiles/local",
                          "--cores", "1"], cwd=wf, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if run.returncode != 0:
        raise SystemExit(run.stderr[-3000:])
    jobs = []
    for tsv in sorted((wf / "benchmarks").glob("*/*.tsv")):
        with open(tsv) as fh:
            jobs.append((tsv.parent.name, tsv.stem, next(csv.DictReader(fh, delimiter="\t"))))
    return wall, jobs


def run_workflow(field: dict, engine: str, workdir: Path) -> dict:
    wf = workdir / f"wf-{engine}"
    wall, jobs = make_and_run(field, engine, wf)
    steps: dict[str, dict[str, list[float]]] = {}
    for step, _, row in jobs:
        entry = steps.setdefault(step, {"s": [], "mb": []})
        entry["s"].append(float(row["s"]))
        entry["mb"].append(float(row["max_rss"]))
    order = [s["name"] for s in json.loads((wf / "plan.json").read_text())["steps"]]
    return {"wall_s": wall, "steps": {k: steps[k] for k in order if k in steps}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("bench-jwst-engine"))
    parser.add_argument("--sizes", default="256,1024")
    parser.add_argument("--ngroups", type=int, default=5)
    parser.add_argument("--engines", default="jwst,jwpipe")
    ns = parser.parse_args()
    import os

    from jwst_data import make_field

    os.environ["CRDS_SERVER_URL"] = "https://127.0.0.1:9"
    results: dict[int, dict[str, dict]] = {}
    sizes = [int(s) for s in ns.sizes.split(",")]
    for size in sizes:
        root = ns.workdir / f"size{size}"
        if root.exists():
            import shutil

            shutil.rmtree(root)
        root.mkdir(parents=True)
        field = make_field(root, size=size, ngroups=ns.ngroups)
        results[size] = {"sci_mb": 4.0 * size * size * ns.ngroups / 2**20}
        for engine in ns.engines.split(","):
            results[size][engine] = run_workflow(field, engine, root)
            print(f"size {size} engine {engine}: whole run {results[size][engine]['wall_s']:.1f}"
                  f" s", flush=True)
    print(f"\nload average {os.getloadavg()[0]:.1f} (2-core machine shared with other work)")
    for size in sizes:
        print(f"\n## {size}x{size}x{ns.ngroups} ({results[size]['sci_mb']:.2f} MB float32 "
              "science array per exposure); median job wall s / peak RSS MB")
        engines = ns.engines.split(",")
        print("| step | " + " | ".join(f"{e} s | {e} MB" for e in engines) + " |")
        print("|---|" + "---|---|" * len(engines))
        names = list(dict.fromkeys(n for e in engines for n in results[size][e]["steps"]))
        for name in names:
            cells = []
            for e in engines:
                got = results[size][e]["steps"].get(name)
                cells += ([f"{statistics.median(got['s']):.1f}", f"{max(got['mb']):.0f}"]
                          if got else ["", ""])
            print(f"| {name} | " + " | ".join(cells) + " |")
    if len(sizes) >= 2 and "jwst" in ns.engines:
        small, large = sizes[0], sizes[-1]
        print("\n## jwst memory model: MB = base + factor * science MB")
        for name, got in results[large]["jwst"]["steps"].items():
            lo = max(results[small]["jwst"]["steps"][name]["mb"])
            hi = max(got["mb"])
            span = results[large]["sci_mb"] - results[small]["sci_mb"]
            # product steps see every member: scale by their count (2 exposures)
            members = 2 if name in ("tweakreg", "skymatch", "outlier_detection", "resample",
                                    "source_catalog") else 1
            factor = max(0.0, (hi - lo) / (span * members))
            base = lo - factor * results[small]["sci_mb"] * members
            print(f"{name}: factor {factor:.1f}, base {base:.0f}")


if __name__ == "__main__":
    main()
