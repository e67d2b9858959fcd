"""Benchmark: time and peak memory of simulating full-frame NIRCam exposures.

Usage::

    python benchmarks/bench_simulate.py [--size 2048] [--ngroups 10] [--readpatt RAPID]
                                        [--exposures 1] [--dir /tmp]

Runs ``simulate_field`` in a fresh subprocess and reports the wall time of each phase
(reference files, scene, exposures incl. writing uncal/truth files), the time per exposure and
the peak resident set size, as JSON on stdout.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

CHILD = r"""
import json, sys, time
from jwpipe.simulate import simulate_field

out, readpatt = sys.argv[1], sys.argv[4]
size, ngroups, nexp = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[5])
start = time.perf_counter()
res = simulate_field(out, size=size, ngroups=ngroups, readpatt=readpatt, n_exposures=nexp,
                     overwrite=True)
wall = time.perf_counter() - start
with open("/proc/self/status") as f:
    hwm = next(int(l.split()[1]) / 1024 for l in f if l.startswith("VmHWM"))
print(json.dumps({"timings_s": {k: round(v, 2) for k, v in res.timings.items()},
                  "wall_s": round(wall, 2),
                  "per_exposure_s": round(res.timings["exposures"] / len(res.uncal_files), 2),
                  "peak_rss_mib": round(hwm)}))
"""


def main() -> int:
    """Run the benchmark; print a JSON report."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=2048)
    p.add_argument("--ngroups", type=int, default=10)
    p.add_argument("--readpatt", default="RAPID")
    p.add_argument("--exposures", type=int, default=1)
    p.add_argument("--dir", default=None, help="scratch directory (default: system temp)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, tmp, str(args.size), str(args.ngroups), args.readpatt,
             str(args.exposures)],
            check=True, capture_output=True, text=True,
        )
    report = {"size": args.size, "ngroups": args.ngroups, "readpatt": args.readpatt,
              "exposures": args.exposures, **json.loads(proc.stdout.strip().splitlines()[-1])}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
