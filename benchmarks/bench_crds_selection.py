"""Benchmark: reference selection per exposure through the crds client, on a CRDS cache.

Usage::

    python benchmarks/bench_crds_selection.py [--workdir DIR] [--exposures 8]

Simulates ``--exposures`` exposures on two detectors (a real-format CRDS cache with their
references) and measures, each in a fresh subprocess:

* ``import crds`` alone (the cost paid once per process);
* the first selection (loads and checksums the context's mappings);
* the warm selection of every reference and parameter reference Detector1, Image2 and Image3
  use, per exposure (what planning a workflow costs per exposure);
* ``make-workflow`` on the image3 association (generation, references included), per exposure.

A second run does the same selection through jwst's own client layer
(``stpipe.crds_client.get_multiple_reference_paths``) when stpipe is importable, on the same
cache and data, for a side-by-side ratio. The machine may be loaded: compare ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

JWPIPE = r"""
import json, sys, time
t0 = time.perf_counter()
from jwpipe.pipeline import Detector1Pipeline, Image2Pipeline, Image3Pipeline
from jwpipe.references import open_cache, parameters_from_file
cache = open_cache(sys.argv[1])
ten = json.loads(sys.argv[2])
files = sys.argv[3:]
types = []
for stage in (Detector1Pipeline, Image2Pipeline, Image3Pipeline):
    types += [stage.get_config_reftype()]
    for cls in stage.step_defs.values():
        types += [t for t in cls.reference_file_types if t not in types]
        types.append(cls.get_config_reftype())
params = [parameters_from_file(f) for f in files]
t = time.perf_counter()
import crds  # noqa: F401
t_import = time.perf_counter() - t
t = time.perf_counter()
cache.best_references(params[0], types)
t_first = time.perf_counter() - t
t = time.perf_counter()
for p in params[1:]:
    cache.best_references(p, types)
t_warm = (time.perf_counter() - t) / max(1, len(params) - 1)
cache._answers.clear()
t = time.perf_counter()
for p in params[1:]:
    cache.best_references(p, ten)
t_ten = (time.perf_counter() - t) / max(1, len(params) - 1)
print(json.dumps({"types": len(types), "import_crds_s": t_import, "first_exposure_s": t_first,
                  "per_exposure_s": t_warm, "per_exposure_10_s": t_ten}))
"""

STPIPE = r"""
import json, os, sys, time
os.environ.update(CRDS_PATH=sys.argv[1], CRDS_MODE="local", CRDS_READONLY_CACHE="1",
                  CRDS_SERVER_URL="https://127.0.0.1:9")
from stpipe import crds_client
from stdatamodels.jwst import datamodels
types = json.loads(sys.argv[2])
files = sys.argv[3:]
params = []
for f in files:
    with datamodels.open(f) as m:
        params.append(m.get_crds_parameters())
t = time.perf_counter()
crds_client.get_multiple_reference_paths(params[0], types, "jwst")
t_first = time.perf_counter() - t
t = time.perf_counter()
for p in params[1:]:
    crds_client.get_multiple_reference_paths(p, types, "jwst")
t_warm = (time.perf_counter() - t) / max(1, len(params) - 1)
print(json.dumps({"first_exposure_s": t_first, "per_exposure_s": t_warm}))
"""

TYPES = ["mask", "saturation", "superbias", "linearity", "dark", "gain", "readnoise", "flat",
         "photom", "area"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", default="bench_crds_selection")
    parser.add_argument("--exposures", type=int, default=8)
    ns = parser.parse_args()
    work = Path(ns.workdir).resolve()
    sim = work / "sim"
    if not (sim / "refs" / "config").is_dir():
        from jwpipe.simulate import simulate_field

        simulate_field(sim, n_exposures=ns.exposures, detectors=("NRCA1", "NRCB2"), size=64,
                       ngroups=3, overwrite=True)
    files = sorted(str(p) for p in sim.glob("*_uncal.fits"))
    cache = str(sim / "refs")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRDS")}
    out = subprocess.run([sys.executable, "-c", JWPIPE, cache, json.dumps(TYPES), *files],
                         env=env,
                         capture_output=True, text=True, check=True)
    jw = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"exposures: {len(files)}; reference types per exposure (with pars-*): {jw['types']}")
    print(f"import crds:                  {jw['import_crds_s']:.3f} s (once per process)")
    print(f"first exposure (mappings):    {jw['first_exposure_s'] * 1e3:.1f} ms")
    print(f"jwpipe per further exposure:  {jw['per_exposure_s'] * 1e3:.2f} ms "
          f"({jw['types']} types); {jw['per_exposure_10_s'] * 1e3:.2f} ms ({len(TYPES)} types)")
    st = subprocess.run([sys.executable, "-c", STPIPE, cache, json.dumps(TYPES), *files],
                        env=env, capture_output=True, text=True)
    if st.returncode == 0:
        s = json.loads(st.stdout.strip().splitlines()[-1])
        print(f"stpipe/jwst client, {len(TYPES)} types, per exposure: "
              f"{s['per_exposure_s'] * 1e3:.2f} ms (first {s['first_exposure_s'] * 1e3:.1f} ms)")
    else:
        print("stpipe comparison skipped:", st.stderr.strip().splitlines()[-1:])
    asn = next(sim.glob("*image3*_asn.json"))
    wf = work / "wf"
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "jwpipe", "make-workflow", str(asn), "--refs", cache,
                    "-o", str(wf)], env=env, check=True, capture_output=True)
    total = time.perf_counter() - t
    print(f"make-workflow (process start, planning, selection, writing): {total:.2f} s, "
          f"{total / len(files) * 1e3:.0f} ms per exposure")


if __name__ == "__main__":
    main()
