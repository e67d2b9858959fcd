"""Benchmark: Image3Pipeline memory and time versus the number of exposures.

Usage::

    python benchmarks/bench_image3.py [--workdir DIR] [--counts 4 16 64] [--size 256]

For each count N a dithered field of N exposures (``size`` x ``size``) is simulated; rate
files are made from the simulator's truth (true count rate plus noise matching ERR, as in the
tests) and calibrated with Image2Pipeline. Image3Pipeline then runs on the image3
association in a fresh subprocess, so the peak RSS printed is Image3's alone (ru_maxrss of
the child). Streaming members from disk keeps the peak nearly flat in N: it grows only with
the output grid and the per-member catalogues, not with N full exposures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def prepare(workdir: Path, n: int, size: int) -> Path:
    """Simulate N exposures and calibrate them; return the image3 association."""
    sys.path.insert(0, str(HERE.parent / "tests" / "steps"))
    from test_image_simdata import simulate_rates

    from jwpipe.pipeline import Image2Pipeline

    sim_dir = workdir / f"n{n:03d}"
    done = sim_dir / "image3_asn.done"
    if done.exists():
        return Path(done.read_text().strip())
    from jwpipe.simulate.pointing import default_dithers

    t0 = time.perf_counter()
    # keep the source density of the tests (70 stars per 256^2) as the dithers spread out
    reach = 10 + max(abs(v) for d in default_dithers(n, size) for v in d)
    n_stars = round(70 * (size + 2 * reach) ** 2 / 256**2)
    sim = simulate_rates(sim_dir, n_exposures=n, size=size, seed=3, n_stars=n_stars)
    os.environ["JWPIPE_REFS"] = str(sim.sim.store_dir)
    for asn in sim.sim.asn_image2:
        Image2Pipeline.call(str(asn), save_results=True, output_dir=str(sim_dir),
                            configure_log=False)
    done.write_text(str(sim.sim.asn_image3))
    print(f"N={n}: simulated and calibrated in {time.perf_counter() - t0:.1f} s", flush=True)
    return Path(sim.sim.asn_image3)


def child(asn: str, outdir: str) -> None:
    import logging

    logging.disable(logging.INFO)
    from jwpipe.pipeline import Image3Pipeline

    t0 = time.perf_counter()
    pipe = Image3Pipeline(save_results=True, output_dir=outdir)
    pipe.run(asn)
    wall = time.perf_counter() - t0
    steps = {k.split(".")[-1]: round(v["wall_time_s"], 2)
             for k, v in pipe.get_full_metadata().items() if "." in k}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"wall_s": round(wall, 2), "peak_rss_mb": round(peak, 1),
                      "steps_s": steps, "nsources": len(pipe.catalog or [])}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="bench_image3_work")
    parser.add_argument("--counts", type=int, nargs="+", default=[4, 16, 64])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--child", nargs=2, metavar=("ASN", "OUTDIR"), help=argparse.SUPPRESS)
    ns = parser.parse_args()
    if ns.child:
        child(*ns.child)
        return
    workdir = Path(ns.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    baseline = subprocess.run([sys.executable, "-c", "import resource, jwpipe.pipeline.image3;"
                               "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"],
                              capture_output=True, text=True, check=True)
    base_mb = int(baseline.stdout) / 1024.0
    print(f"interpreter + imports: {base_mb:.0f} MiB")
    rows = []
    for n in ns.counts:
        asn = prepare(workdir, n, ns.size)
        out = workdir / f"n{n:03d}" / "image3"
        proc = subprocess.run([sys.executable, __file__, "--child", str(asn), str(out)],
                              capture_output=True, text=True)
        if proc.returncode:
            print(proc.stderr[-3000:])
            raise SystemExit(f"Image3Pipeline failed for N={n}")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append((n, result))
        print(f"N={n:3d}: wall {result['wall_s']:7.2f} s  peak RSS {result['peak_rss_mb']:6.0f} "
              f"MiB (+{result['peak_rss_mb'] - base_mb:.0f})  steps {result['steps_s']}  "
              f"sources {result['nsources']}", flush=True)
    cal_mb = sum(p.stat().st_size for p in (workdir / f"n{rows[-1][0]:03d}").glob("*_cal.fits"))
    print(f"all {rows[-1][0]} cal files together: {cal_mb / 2**20:.0f} MiB on disk")


if __name__ == "__main__":
    main()
