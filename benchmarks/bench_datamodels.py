"""Benchmark: peak RSS and time of opening a full-frame uncal ramp, and of saving it.

Usage::

    python benchmarks/bench_datamodels.py [--ngroups 10] [--dir /tmp]

Writes a synthetic 1 x NGROUPS x 2048 x 2048 uint16 ``_uncal`` file (BZERO-scaled, as JWST
writes them), then in fresh subprocesses measures the peak resident set size (VmHWM) above
the interpreter baseline for (a) ``datamodels.open`` + reading ``data``, ``pixeldq`` and
``groupdq``, (b) astropy's own scaled read for comparison, and (c) saving the RampModel.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import json, os, sys, time
import numpy as np

def hwm():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024
    return float("nan")

def reset_hwm():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")

mode, path, out = sys.argv[1], sys.argv[2], sys.argv[3]
from astropy.io import fits
from jwpipe import datamodels
import asdf  # imported up front so its size is not counted as data
reset_hwm()
base = hwm()
t0 = time.perf_counter()
if mode == "open":
    m = datamodels.open(path)
    d = m.data; p = m.pixeldq; g = m.groupdq
    assert d.dtype == np.float32
elif mode == "astropy":
    with fits.open(path, memmap=False) as h:
        d = h["SCI"].data.astype(np.float32)
elif mode == "save":
    m = datamodels.open(path)
    d = m.data; p = m.pixeldq; g = m.groupdq
    reset_hwm(); base = hwm()
    t0 = time.perf_counter()
    m.save(out)
elapsed = time.perf_counter() - t0
print(json.dumps({"mode": mode, "seconds": elapsed, "peak_mib_above_baseline": hwm() - base}))
"""


def make_uncal(path: str, ngroups: int) -> None:
    import numpy as np
    from astropy.io import fits

    rng = np.random.default_rng(0)
    data = rng.integers(10000, 60000, (1, ngroups, 2048, 2048), dtype=np.uint16)
    primary = fits.Header()
    for key, value in [
        ("DATAMODL", "Level1bModel"),
        ("TELESCOP", "JWST"),
        ("INSTRUME", "NIRCAM"),
        ("DETECTOR", "NRCA1"),
        ("NINTS", 1),
        ("NGROUPS", ngroups),
        ("NFRAMES", 1),
        ("GROUPGAP", 0),
        ("READPATT", "RAPID"),
        ("SUBARRAY", "FULL"),
    ]:
        primary[key] = value
    fits.HDUList([fits.PrimaryHDU(header=primary), fits.ImageHDU(data, name="SCI")]).writeto(
        path, overwrite=True
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ngroups", type=int, default=10)
    parser.add_argument("--dir", default=tempfile.gettempdir())
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    path = os.path.join(args.dir, f"bench_dm_{args.ngroups}_uncal.fits")
    out = os.path.join(args.dir, f"bench_dm_{args.ngroups}_ramp.fits")
    if not os.path.exists(path):
        make_uncal(path, args.ngroups)
    float32_mib = args.ngroups * 2048 * 2048 * 4 / 2**20
    dq_mib = (args.ngroups * 2048 * 2048 + 2048 * 2048 * 4) / 2**20
    print(
        f"file {path}: {os.path.getsize(path) / 2**20:.0f} MiB on disk; one float32 copy "
        f"{float32_mib:.0f} MiB, pixeldq+groupdq {dq_mib:.0f} MiB"
    )
    for mode in ("open", "astropy", "save"):
        for _ in range(args.repeat):
            result = subprocess.run(
                [sys.executable, "-c", CHILD, mode, path, out],
                capture_output=True,
                text=True,
                check=True,
            )
            print(json.dumps(json.loads(result.stdout)))
    for p in (out,):
        if os.path.exists(p):
            os.unlink(p)


if __name__ == "__main__":
    start = time.perf_counter()
    main()
    print(f"total {time.perf_counter() - start:.1f} s")
