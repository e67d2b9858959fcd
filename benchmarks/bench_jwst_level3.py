"""Benchmark: peak memory of jwst's coron3, tso3, ami3 and spec3 steps as workflow jobs, two
sizes.

Usage::

    python benchmarks/bench_jwst_level3.py [--workdir DIR] [--small 64,4,6,2,72,64]
        [--large 320,20,300,20,1024,1032] [--pipelines coron3,tso3,ami3,spec3]

``--small``/``--large``: the NIRCam subarray side (coron3 and tso3 members), then the
integrations of each coron3 member, each tso3 segment and each ami3 member (NIRISS AMI is
always SUB80), then the rows and columns of the MIRI LRS fixed-slit exposures of the spec3
association (1024x1032 is MIRIMAGE's full frame, where LRS fixed slit reads). Inputs are
``tests/engines/jwst_level3_data.py``'s stdatamodels-written ``_calints`` and, for spec3,
``tests/engines/jwst_spec_data.py``'s three ``_rate`` files, which the workflow takes through
Spec2 first (its jobs are measured too), with their CRDS caches (the small sizes are the tests'
data). Each association is made a
``--engine jwst`` workflow and run by real Snakemake on one core (jobs one at a time); every
job's peak RSS is read from Snakemake's benchmark file. The jwst steps run with their default
parameters (ami_analyze's ``oversample=3`` included). For every step the script fits the
memory request the engine declares: ``MB = base + factor * (MB of the unit's float32 science
arrays)``, a member unit counting its own member, a product unit all of its members.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "engines"))


def _unit_mb(wf: Path, step: str, key: str) -> float:
    """The float32 MB of the science arrays a unit's step reads (planned inputs that are
    members' ``_calints`` or ``_rate``, or their products, as the planner counts them)."""
    from astropy.io import fits

    unit = json.loads((wf / "units" / step / f"{key}.json").read_text())
    members = unit.get("members") or [key]
    total = 0.0
    for root in members:
        path = next((wf.parent / "data" / "inputs").glob(f"{root}_*.fits"))
        with fits.open(path) as hdul:
            total += 4 * hdul["SCI"].data.size / 2**20
    return total


def run(kind: str, made: dict, root: Path) -> list[dict]:
    """Make and run one workflow; one row per job: step, unit, its science MB, peak RSS."""
    from bench_jwst_engine import make_and_run

    wf = root / "wf"
    wall, jobs = make_and_run(made, "jwst", wf)
    print(f"{kind} {root.name}: {wall:.0f} s", flush=True)
    plan = json.loads((wf / "plan.json").read_text())
    return [{"pipeline": kind, "step": step, "key": key, "sci_mb": _unit_mb(wf, step, key),
             "peak_mb": float(got["max_rss"]), "s": float(got["s"]),
             "requested_mb": plan["units"][step][key]["mem_mb"]} for step, key, got in jobs]


def write_spec3(folder: Path, nints: int = 0) -> dict:
    """The tests' spec3 association of three MIRI LRS ``_rate`` files and its CRDS cache."""
    import jwst_spec_data as spec

    asn = spec.write_lrs_spec3(folder / "inputs")
    cache = folder / "cache"
    spec.lrs_cache(cache, spec.write_lrs_references(folder / "refs"))
    return {"asn": asn, "cache": cache}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("bench-jwst-level3"))
    parser.add_argument("--small", default="64,4,6,2,72,64")
    parser.add_argument("--large", default="320,20,300,20,1024,1032")
    parser.add_argument("--pipelines", default="coron3,tso3,ami3,spec3",
                        help="which associations to run (comma-separated)")
    ns = parser.parse_args()
    import jwst_level3_data as data
    import jwst_spec_data as spec

    os.environ["CRDS_SERVER_URL"] = "https://127.0.0.1:9"
    results: dict[str, list[dict]] = {}
    for label in ("small", "large"):
        side, coron, tso, ami, rows, cols = (int(v) for v in getattr(ns, label).split(","))
        data.SHAPE = (side, side)  # the members' and references' NIRCam subarray
        spec.SHAPE = (rows, cols)  # the LRS exposures' and their flat's
        results[label] = []
        for kind, write, nints in (("coron3", data.write_coron3, coron),
                                   ("tso3", data.write_tso3, tso),
                                   ("ami3", data.write_ami3, ami),
                                   ("spec3", write_spec3, 0)):
            if kind not in ns.pipelines.split(","):
                continue
            root = ns.workdir / f"{label}-{kind}"
            if root.exists():
                shutil.rmtree(root)
            made = write(root / "data", nints=nints)
            results[label] += run(kind, made, root)
        print(f"{label}: NIRCam {side}x{side}, integrations coron3 {coron}, tso3 {tso}, "
              f"ami3 {ami} (SUB80); MIRI LRS {rows}x{cols}", flush=True)
    print(f"\nload average {os.getloadavg()[0]:.1f} (2-core machine shared with other work)")
    (ns.workdir / "results.json").write_text(json.dumps(results, indent=1))
    print("\n| pipeline | step | small: science MB, peak MB | large: science MB, peak MB "
          "| factor | base MB |")
    print("|---|---|---|---|---|---|")
    steps = list(dict.fromkeys((r["pipeline"], r["step"]) for r in results["small"]))
    for kind, step in steps:
        lo = max((r for r in results["small"] if (r["pipeline"], r["step"]) == (kind, step)),
                 key=lambda r: r["peak_mb"])
        hi = max((r for r in results["large"] if (r["pipeline"], r["step"]) == (kind, step)),
                 key=lambda r: r["peak_mb"])
        span = hi["sci_mb"] - lo["sci_mb"]
        factor = max(0.0, (hi["peak_mb"] - lo["peak_mb"]) / span) if span > 0 else 0.0
        base = lo["peak_mb"] - factor * lo["sci_mb"]
        print(f"| {kind} | {step} | {lo['sci_mb']:.2f}, {lo['peak_mb']:.0f} | "
              f"{hi['sci_mb']:.2f}, {hi['peak_mb']:.0f} | {factor:.1f} | {base:.0f} |")
    over = [r for rows in results.values() for r in rows if r["peak_mb"] >= r["requested_mb"]]
    print(f"\njobs over their memory request: {len(over)} of "
          f"{sum(len(rows) for rows in results.values())}")
    for r in over:
        print(f"  {r['pipeline']} {r['step']} {r['key']}: {r['peak_mb']:.0f} MB, requested "
              f"{r['requested_mb']} MB")


if __name__ == "__main__":
    main()
