"""Benchmark: Detector1Pipeline on a simulated NIRCam full frame (2048x2048, 10 groups, 1 int).

Usage::

    python benchmarks/bench_detector1.py [--workdir DIR] [--size 2048] [--ngroups 10]

The exposure and its reference store are simulated once into ``DIR/sim`` (reused later). The
pipeline then runs in a fresh subprocess, from reading the uncal to writing ``_rate`` and
``_rateints``, so the peak RSS reported is the pipeline's alone. Printed: wall time per step
(``pipe.get_full_metadata()``), total, peak RSS. When the ``jwst`` package (with stcal) is
importable, stcal's jump detection and OLS_C ramp fit run on the same arrays in the same
subprocess and the time ratios are printed; otherwise that comparison is reported as skipped.
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


def simulate(workdir: Path, size: int, ngroups: int) -> tuple[Path, Path]:
    from jwpipe.simulate import simulate_field

    sim = workdir / "sim"
    existing = sorted(sim.glob("*_uncal.fits"))
    if existing and (sim / "refs" / "index.yaml").exists():
        return existing[0], sim / "refs"
    t0 = time.perf_counter()
    result = simulate_field(sim, n_exposures=1, size=size, ngroups=ngroups, seed=42,
                            overwrite=True)
    print(f"simulated {result.uncal_files[0].name} in {time.perf_counter() - t0:.1f} s")
    return result.uncal_files[0], result.store_dir


def run_pipeline(uncal: str, refs: str, outdir: str) -> dict:
    """Run Detector1 (in this process) and return timings; called in a fresh subprocess."""
    t_import = time.perf_counter()
    from jwpipe.pipeline import Detector1Pipeline
    from jwpipe.stpipe.refstore import set_store

    import_s = time.perf_counter() - t_import
    set_store(refs)
    pipe = Detector1Pipeline(save_results=True, output_dir=outdir)
    t0 = time.perf_counter()
    pipe.run(uncal)
    total = time.perf_counter() - t0
    steps = {k.split(".", 1)[-1]: v["wall_time_s"] for k, v in pipe.get_full_metadata().items()
             if "." in k}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return {"import_s": import_s, "total_s": total, "steps_s": steps, "peak_rss_mib": peak}


def compare_stcal(uncal: str, refs: str) -> dict | None:
    """Time stcal's jump and OLS_C ramp fit against jwpipe's on the same calibrated ramp."""
    try:
        import jwst  # noqa: F401
        from stcal.jump.jump import detect_jumps_data
        from stcal.jump.jump_class import JumpData
        from stcal.ramp_fitting import ramp_fit, ramp_fit_class
        from stdatamodels.jwst.datamodels import dqflags
    except ImportError as exc:
        return {"skipped": f"jwst/stcal not importable ({exc})"}
    import numpy as np

    from jwpipe.algorithms import detect_jumps, fit_ramps
    from jwpipe.pipeline import Detector1Pipeline
    from jwpipe.stpipe.refstore import set_store

    set_store(refs)
    pipe = Detector1Pipeline()
    pipe.jump.skip = True
    pipe.ramp_fit.skip = True
    ramp = pipe.run(uncal)
    from jwpipe import datamodels
    from jwpipe.references import open_cache

    store = open_cache(refs)
    params = ramp.get_crds_parameters()
    gain = datamodels.open(store.get_reference_file(params, "gain")).data
    rnoise = datamodels.open(store.get_reference_file(params, "readnoise")).data
    tg = float(ramp.meta.exposure.group_time)
    data, gdq0, pdq = ramp.data, ramp.groupdq, ramp.pixeldq
    ny, nx = data.shape[2:]
    out = {}
    gdq = gdq0.copy()
    t = time.perf_counter()
    detect_jumps(data, gdq, pdq.copy(), gain, rnoise)
    out["jwpipe_jump_s"] = time.perf_counter() - t
    t = time.perf_counter()
    fit_ramps(data, gdq.copy(), pdq, rnoise, gain, group_time=tg, frame_time=tg)
    out["jwpipe_ramp_fit_s"] = time.perf_counter() - t
    jd = JumpData(gain2d=gain, rnoise2d=rnoise, dqflags=dqflags.pixel)
    jd.init_arrays_from_arrays(data.copy(), gdq0.copy(), pdq.copy())
    jd.nframes = 1
    jd.dt_group = np.ones(1)
    jd.n_reads_groupdiff = np.ones(1) * 2
    jd.set_detection_settings(4.0, 6.0, 5.0, 1000.0, 10.0, True)
    jd.set_after_jump(0.0, 0, 0.0, 0)
    jd.set_snowball_info(False, 5.0, 1.0, 2.0, True, 2.5, 4, 25)
    jd.set_shower_info(False, 1.2, 90, 1.0, 2.6, 1.1, 10, 400)
    jd.set_sigma_clipping_info(3, 100, True)
    jd.max_cores = "1"
    jd.grps_masked_after_shower = int(15 // tg)
    jd.mask_persist_grps_next_int = True
    jd.persist_grps_flagged = int(4000 // tg)
    jd.max_shower_amplitude *= tg
    t = time.perf_counter()
    sgdq, spdq, _, _ = detect_jumps_data(jd)
    out["stcal_jump_s"] = time.perf_counter() - t
    rd = ramp_fit_class.RampData()
    rd.set_arrays(data, sgdq, spdq, np.zeros((ny, nx), np.float32))
    rd.set_meta(name="NIRCAM", frame_time=tg, group_time=tg, groupgap=0, nframes=1,
                drop_frames1=None)
    rd.algorithm = "OLS_C"
    rd.set_dqflags(dqflags.pixel)
    rd.start_row = 0
    rd.num_rows = ny
    rd.suppress_one_group_ramps = True
    t = time.perf_counter()
    ramp_fit.ramp_fit_data(rd, False, rnoise.copy(), gain.copy(), "OLS_C", "optimal", "1")
    out["stcal_ramp_fit_s"] = time.perf_counter() - t
    out["jump_speedup"] = out["stcal_jump_s"] / out["jwpipe_jump_s"]
    out["ramp_fit_speedup"] = out["stcal_ramp_fit_s"] / out["jwpipe_ramp_fit_s"]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="bench_detector1_work")
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--ngroups", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--_child", nargs=3, metavar=("UNCAL", "REFS", "OUT"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--_compare", nargs=2, metavar=("UNCAL", "REFS"),
                        help=argparse.SUPPRESS)
    ns = parser.parse_args(argv)
    if ns._child:
        print(json.dumps(run_pipeline(*ns._child)))
        return 0
    if ns._compare:
        print(json.dumps(compare_stcal(*ns._compare)))
        return 0
    workdir = Path(ns.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    uncal, refs = simulate(workdir, ns.size, ns.ngroups)
    out = workdir / "out"
    env = dict(os.environ, JWPIPE_DISABLE_REF_STEPPARS="1")
    for i in range(ns.repeat):
        proc = subprocess.run([sys.executable, __file__, "--_child", str(uncal), str(refs),
                               str(out)], capture_output=True, text=True, env=env, check=True)
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"run {i + 1}: Detector1 {ns.size}x{ns.size}x{ns.ngroups}: total "
              f"{res['total_s']:.2f} s (read uncal -> rate + rateints written), import "
              f"{res['import_s']:.2f} s, peak RSS {res['peak_rss_mib']:.0f} MiB")
        for step, sec in res["steps_s"].items():
            print(f"    {step:14s} {sec:7.3f} s")
        inside = sum(res["steps_s"].values())
        print(f"    {'(other: open, products, save)':14s} {res['total_s'] - inside:7.3f} s")
    proc = subprocess.run([sys.executable, __file__, "--_compare", str(uncal), str(refs)],
                          capture_output=True, text=True, env=env)
    lines = proc.stdout.strip().splitlines()
    cmp_ = json.loads(lines[-1]) if proc.returncode == 0 and lines else {
        "skipped": proc.stderr.strip().splitlines()[-1:]}
    if "skipped" in cmp_:
        print(f"stcal comparison skipped: {cmp_['skipped']}")
    else:
        print("stcal comparison (same arrays, same process):")
        for key, value in cmp_.items():
            print(f"    {key:18s} {value:8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
