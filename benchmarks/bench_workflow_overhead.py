"""Per-step workflow vs in-process Detector1 on the same full-frame exposure.

    python benchmarks/bench_workflow_overhead.py [--size 2048] [--ngroups 10]

Runs, on one simulated NIRCam exposure (reused from benchmarks/bench_detector1.py's work dir):
(a) ``Detector1Pipeline.call`` in process, writing rate/rateints only; (b) the same, also saving
every intermediate (``steps={name: {save_results: True}}``); (c) the generated workflow (one job
per step, every intermediate kept) with ``snakemake --cores 1``. Prints wall times and ratios.
Target: (c) <= 1.5 x (b).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--ngroups", type=int, default=10)
    parser.add_argument("--workdir", default="bench_detector1_work")
    ns = parser.parse_args()
    from bench_detector1 import simulate

    from jwpipe.associations import asn_from_list, write_asn
    from jwpipe.pipeline import Detector1Pipeline
    from jwpipe.workflow.generate import generate_workflow

    uncal, refs = simulate(Path(ns.workdir).resolve(), ns.size, ns.ngroups)
    names = list(Detector1Pipeline.step_defs)
    code = (
        "import sys,time\nfrom jwpipe.pipeline import Detector1Pipeline\n"
        "from jwpipe.stpipe import set_store\nset_store(sys.argv[2])\n"
        "steps = {n: {'save_results': True} for n in sys.argv[4:]}\n"
        "t=time.perf_counter()\nDetector1Pipeline.call(sys.argv[1], save_results=True, "
        "output_dir=sys.argv[3], steps=steps)\nprint(time.perf_counter()-t)\n"
    )
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        base = Path(tmp).resolve()
        times = {}
        for label, saved in (("in-process, products only", []),
                             ("in-process, every intermediate saved", names)):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", code, str(uncal), str(refs),
                            str(base / label.split(",")[1].strip().replace(" ", "_")), *saved],
                           check=True, capture_output=True)
            times[label] = time.perf_counter() - t0
        root = uncal.name.replace("_uncal.fits", "")
        data = base / "data"
        data.mkdir()
        shutil.copyfile(uncal, data / uncal.name)
        asn = data / "asn.json"
        write_asn(asn_from_list([f"{root}_rate.fits"], asn_type="image2"), asn)
        t0 = time.perf_counter()
        generate_workflow([str(asn)], base / "wf", refs=str(refs), stages=[Detector1Pipeline])
        gen = time.perf_counter() - t0
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", "--quiet", "all"],
                       cwd=base / "wf", check=True, capture_output=True)
        times["workflow, one job per step (snakemake --cores 1)"] = time.perf_counter() - t0
    ref = times["in-process, every intermediate saved"]
    print(f"Detector1 on {ns.size}x{ns.size}x{ns.ngroups} (each in a fresh process):")
    for label, t in times.items():
        print(f"  {label:52s} {t:6.2f} s   {t / ref:4.2f} x")
    print(f"  (workflow generation {gen:.2f} s, not included)")


if __name__ == "__main__":
    main()
