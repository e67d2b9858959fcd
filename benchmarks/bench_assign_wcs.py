"""Benchmark: AssignWcs with a CRDS-format (ASDF) distortion reference, jwpipe vs jwst.

Usage::

    python benchmarks/bench_assign_wcs.py [--repeat 3] [--dir /tmp]

Writes (with stdatamodels) a full-frame NIRCam rate file, a 4th-degree polynomial distortion
reference and a filteroffset reference, then times, best of ``--repeat``:

* the AssignWcs step (gWCS + TAN-SIP header fit), jwpipe in this process and jwst's
  ``AssignWcsStep`` in a subprocess (offline: overrides for every reference, an empty CRDS
  cache);
* evaluating each gWCS over the whole detector (4.2 million pixels), forward and inverse;
* opening the product and deserializing its gWCS (jwpipe).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "formats"))

JWST_CHILD = r"""
import json, sys, time, warnings
warnings.simplefilter("ignore")
import numpy as np
from jwst.assign_wcs import AssignWcsStep
rate, dist, fo, repeat = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
over = {f"override_{r}": "N/A" for r in AssignWcsStep.reference_file_types}
over.update(override_distortion=dist, override_filteroffset=fo)
AssignWcsStep(**over).run(rate)  # warm-up (imports, CRDS client)
def best(fn):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)
step = best(lambda: AssignWcsStep(**over).run(rate))
w = AssignWcsStep(**over).run(rate).meta.wcs
yy, xx = np.mgrid[0:2048, 0:2048].astype(np.float64)
ra, dec = w(xx, yy, with_bounding_box=False)
fwd = best(lambda: w(xx, yy, with_bounding_box=False))
inv = best(lambda: w.invert(ra, dec, with_bounding_box=False))
print(json.dumps({"step": step, "forward": fwd, "inverse": inv}))
"""


def best(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=None)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import numpy as np
    from formats_data import offline_crds_env, write_distortion, write_filteroffset, write_rate

    from jwpipe import datamodels
    from jwpipe.steps._image_common import model_wcs
    from jwpipe.steps.assign_wcs import AssignWcsStep

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        dist = write_distortion(os.path.join(tmp, "jwst_nircam_distortion_0001.asdf"))
        fo = write_filteroffset(os.path.join(tmp, "jwst_nircam_filteroffset_0001.asdf"),
                                [{"filter": "F200W", "pupil": "CLEAR", "column_offset": 0.7,
                                  "row_offset": -0.4}])
        rate = write_rate(os.path.join(tmp, "jw01234001001_01101_00001_nrca1_rate.fits"))
        ours = {}
        run = lambda: AssignWcsStep.call(rate, override_distortion=dist,  # noqa: E731
                                         override_filteroffset=fo)
        run()
        ours["step"] = best(run, args.repeat)
        out = run()
        path = out.save(os.path.join(tmp, "out_assign_wcs.fits"))
        wcs = model_wcs(out)
        yy, xx = np.mgrid[0:2048, 0:2048].astype(np.float64)
        ra, dec = wcs.pixel_to_world_values(xx, yy)
        ours["forward"] = best(lambda: wcs.pixel_to_world_values(xx, yy), args.repeat)
        ours["inverse"] = best(lambda: wcs.world_to_pixel_values(ra, dec), args.repeat)
        ours["open_headers"] = best(lambda: datamodels.open(path), args.repeat)
        ours["open_with_gwcs"] = best(lambda: datamodels.open(path).meta.wcs, args.repeat)

        env = offline_crds_env(tmp)
        proc = subprocess.run([sys.executable, "-c", JWST_CHILD, rate, dist, fo,
                               str(args.repeat)], env=env, capture_output=True, text=True,
                              check=True)
        theirs = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"{'':28s}{'jwpipe':>10s}{'jwst':>10s}")
    for key, label in (("step", "AssignWcs step (s)"), ("forward", "gWCS forward 2048^2 (s)"),
                       ("inverse", "gWCS inverse 2048^2 (s)")):
        print(f"{label:28s}{ours[key]:10.3f}{theirs[key]:10.3f}")
    print(f"{'open product (s)':28s}{ours['open_headers']:10.3f}")
    print(f"{'open + meta.wcs (s)':28s}{ours['open_with_gwcs']:10.3f}")


if __name__ == "__main__":
    main()
