"""Per-step workflow vs in-process Detector1 on the same full-frame exposure.

    python benchmarks/bench_workflow_overhead.py [--size 2048] [--ngroups 10]

Runs, on one simulated NIRCam exposure (reused from benchmarks/bench_detector1.py's work dir):
(a) ``Detector1Pipeline.call`` in process, writing rate/rateints only; (b) the same, also saving
every intermediate (``steps={name: {save_results: True}}``); (c) the generated workflow (one job
per step, every intermediate kept) with ``snakemake --cores 1``. Prints wall times and ratios.
Target: (c) <= 1.5 x (b).

    python benchmarks/bench_workflow_overhead.py --startup [--repeat 7] [--baseline SRC]

Per-job start-up: ``jwpipe run-step`` on a unit that does no real work (``group_scale`` of a
32x32 exposure with NFRAMES=1: nothing to rescale; it still reads the unit file, verifies and
opens the input, writes the output with provenance and the record), end to end in a fresh
process as a workflow runs it (``python -m jwpipe run-step``), next to the floor every job
pays: Python itself, ``import numpy``, ``import astropy.io.fits``. The cases are run in turn,
``--repeat`` rounds, after one untimed round that compiles every module's bytecode into a
private cache (``PYTHONPYCACHEPREFIX``; an installed jwpipe has its bytecode compiled, a source
checkout run with ``PYTHONDONTWRITEBYTECODE`` would otherwise compile jwpipe in every job).
Best and median wall and CPU (user+sys). ``--baseline SRC`` also times the job with the jwpipe
package under ``SRC`` (e.g. an older checkout's ``src``), on the same unit. Target: <= 0.3 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + sys) seconds of one run of ``cmd``."""
    with tempfile.NamedTemporaryFile("r") as cpu:
        t0 = time.perf_counter()
        subprocess.run(["/usr/bin/time", "-f", "%U %S", "-o", cpu.name, *cmd], cwd=cwd,
                       check=True, capture_output=True, env=env)
        wall = time.perf_counter() - t0
        user, system = map(float, Path(cpu.name).read_text().split()[-2:])
    return wall, user + system


def startup(repeat: int, baseline: str | None = None) -> None:
    """Per-job start-up of a step job that does no real work, next to the import floor."""
    import statistics

    from jwpipe.associations import asn_from_list, write_asn
    from jwpipe.pipeline import Detector1Pipeline
    from jwpipe.simulate import simulate_field
    from jwpipe.workflow.generate import generate_workflow

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        sim = simulate_field(base / "sim", n_exposures=1, size=32, ngroups=3, seed=3)
        uncal = sim.uncal_files[0]
        root = uncal.name.replace("_uncal.fits", "")
        asn = uncal.parent / "asn.json"
        write_asn(asn_from_list([f"{root}_rate.fits"], asn_type="image2"), asn)
        work = base / "wf"
        generate_workflow([str(asn)], work, refs=str(sim.store_dir), stages=[Detector1Pipeline],
                          pictures=False)
        unit = f"units/group_scale/{root}.json"
        py = sys.executable
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(base / "pycache")
        envs = {"": env}
        cases = {
            "python -c pass": [py, "-c", "pass"],
            "python -c 'import numpy'": [py, "-c", "import numpy"],
            "python -c 'import astropy.io.fits'": [py, "-c", "import astropy.io.fits"],
            "jwpipe run-step (group_scale, no work)": [py, "-m", "jwpipe", "run-step", unit],
        }
        if baseline:
            label = f"  same, jwpipe from {baseline}"
            cases[label] = cases["jwpipe run-step (group_scale, no work)"]
            envs[label] = {**env, "PYTHONPATH": os.pathsep.join(
                [str(Path(baseline).resolve()), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
        rows: dict[str, list[tuple[float, float]]] = {label: [] for label in cases}
        for round_ in range(repeat + 1):  # round 0 compiles the bytecode, untimed
            for label, cmd in cases.items():
                timing = _timed(cmd, work, envs.get(label, env))
                if round_:
                    rows[label].append(timing)
        log = (work / "products").iterdir()
        assert any(p.name.endswith("_group_scale.fits") for p in log), "the job wrote nothing"
    print(f"Per-job start-up, {repeat} rounds, fresh processes (load average "
          f"{os.getloadavg()[0]:.1f}):")
    print(f"  {'':42s} {'wall best':>9} {'median':>7} {'cpu best':>9} {'median':>7}")
    for label, runs in rows.items():
        walls, cpus = [w for w, _ in runs], [c for _, c in runs]
        print(f"  {label:42s} {min(walls):9.3f} {statistics.median(walls):7.3f} "
              f"{min(cpus):9.3f} {statistics.median(cpus):7.3f}")
    floor = statistics.median(w for w, _ in rows["python -c 'import astropy.io.fits'"])
    job = statistics.median(w for w, _ in rows["jwpipe run-step (group_scale, no work)"])
    print(f"  job / astropy.io.fits floor (medians): {job / floor:.2f}; target: job <= 0.3 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--ngroups", type=int, default=10)
    parser.add_argument("--workdir", default="bench_detector1_work")
    parser.add_argument("--startup", action="store_true",
                        help="measure per-job start-up instead (a job that does no work)")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--baseline", metavar="SRC",
                        help="with --startup: also time the job with the jwpipe package in SRC")
    ns = parser.parse_args()
    if ns.startup:
        startup(ns.repeat, ns.baseline)
        return
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
