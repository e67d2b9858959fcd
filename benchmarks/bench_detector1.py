"""Benchmark: whole-process Detector1 on a NIRCam full frame (2048x2048x10), jwpipe vs jwst.

Usage::

    python benchmarks/bench_detector1.py [--workdir DIR] [--size 2048] [--ngroups 10]
        [--repeat 2] [--no-jwst] [--stcal-kernels]

Inputs, both measured:

* ``stdatamodels``: the exposure and its references (mask, saturation, superbias, linearity,
  dark, gain, readnoise) re-written by STScI's ``stdatamodels`` (``Level1bModel``,
  ``MaskModel``, ... ``.save()``) into a temporary directory: the JWST file layout as STScI's
  software writes it (ASDF extension, DQ_DEF tables, uint16 SCI with BZERO).
* ``simulator``: the files as ``jwpipe.simulate`` writes them (cached in ``DIR/sim``).

Every measurement is a fresh Python process, timed by this script from start to exit (imports,
reading, all steps, writing ``_rate`` and ``_rateints``); its CPU time (user + system, all
threads) comes from ``RUSAGE_CHILDREN`` and its peak RSS is the child's own ``ru_maxrss``. On a
machine shared with other jobs the CPU-time ratio is the steadier one. jwpipe and jwst
(``bench`` extra) run back to back on the same files, with ``override_<reftype>`` for every
reference, so neither contacts CRDS (jwst gets an offline ``CRDS_PATH`` with a seeded server
config, as in ``/work/shared/research/perf.md``). Each repetition runs jwst, jwpipe on the
stdatamodels files, then jwpipe on the simulator's files (every other repetition starts with
jwpipe); ratios are taken within a repetition. One extra jwpipe run with ``JWPIPE_THREADS=1``
checks that the threaded products are bit-identical to the single-threaded ones and gives the
thread speed-up. With ``--stcal-kernels``, stcal's jump and OLS_C ramp fit are also timed
against jwpipe's on the same arrays, in one process.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

#: Reference types Detector1 uses on a NIRCam imaging exposure, and the stdatamodels classes.
REFTYPES = {
    "mask": "MaskModel", "saturation": "SaturationModel", "superbias": "SuperBiasModel",
    "linearity": "LinearityModel", "dark": "DarkModel", "gain": "GainModel",
    "readnoise": "ReadnoiseModel",
}
#: Which steps take which overrides (jwpipe's and jwst's step names agree).
OVERRIDES = {
    "dq_init": ("mask",), "saturation": ("saturation",), "superbias": ("superbias",),
    "linearity": ("linearity",), "dark_current": ("dark",), "jump": ("gain", "readnoise"),
    "ramp_fit": ("gain", "readnoise"), "gain_scale": ("gain",),
}


def simulate(workdir: Path, size: int, ngroups: int) -> tuple[Path, Path]:
    from jwpipe.simulate import simulate_field

    sim = workdir / "sim"
    existing = sorted(sim.glob("*_uncal.fits"))
    if existing and (sim / "refs" / "config" / "jwst" / "server_config").exists():
        return existing[0], sim / "refs"
    t0 = time.perf_counter()
    result = simulate_field(sim, n_exposures=1, size=size, ngroups=ngroups, seed=42,
                            overwrite=True)
    print(f"simulated {result.uncal_files[0].name} in {time.perf_counter() - t0:.1f} s")
    return result.uncal_files[0], result.store_dir


def reference_paths(refdir: Path) -> dict[str, str]:
    """Reference type -> file in the simulator's CRDS cache
    (``references/jwst/nircam/jwst_nircam_<type>_N.fits``)."""
    out = {}
    for reftype in REFTYPES:
        found = sorted(refdir.rglob(f"jwst_*_{reftype}_*.fits"))
        if not found:
            raise SystemExit(f"no {reftype} reference in {refdir}")
        out[reftype] = str(found[0])
    return out


def write_with_stdatamodels(uncal: Path, refs: dict[str, str], outdir: Path
                            ) -> tuple[Path, dict[str, str]]:
    """Re-write the exposure and its references with STScI's stdatamodels."""
    from stdatamodels.jwst import datamodels as sdm

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # schema enum warnings about simulated keyword values
        out_uncal = outdir / uncal.name
        with sdm.Level1bModel(str(uncal)) as model:
            model.save(str(out_uncal))
        out_refs = {}
        for reftype, path in refs.items():
            target = outdir / Path(path).name
            with getattr(sdm, REFTYPES[reftype])(path) as ref:
                ref.save(str(target))
            out_refs[reftype] = str(target)
    from stdatamodels import __version__

    print(f"stdatamodels {__version__} wrote the uncal and {len(out_refs)} references in "
          f"{time.perf_counter() - t0:.1f} s")
    return out_uncal, out_refs


def step_overrides(refs: dict[str, str], engine: str) -> dict[str, dict[str, str]]:
    """``steps=`` argument giving every reference explicitly."""
    steps = {step: {f"override_{t}": refs[t] for t in types} for step, types in OVERRIDES.items()}
    if engine == "jwst":
        steps["saturation"]["override_superbias"] = refs["superbias"]
        # steps that do not apply to NIRCam imaging but whose references jwst still prefetches
        steps["ipc"] = {"override_ipc": "N/A"}
        steps["refpix"] = {"override_refpix": "N/A", "override_sirskernel": "N/A"}
        steps["rscd"] = {"override_rscd": "N/A"}
        steps["reset"] = {"override_reset": "N/A"}
    return steps


def child_run(engine: str, uncal: str, refs_json: str, outdir: str) -> dict:
    """Run Detector1 in this (fresh) process; called as a subprocess."""
    refs = json.loads(refs_json)
    t0 = time.perf_counter()
    if engine == "jwst":
        from jwst.pipeline import Detector1Pipeline as Jwst
        import_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        Jwst.call(uncal, steps=step_overrides(refs, "jwst"), save_results=True,
                  output_dir=outdir)
        steps: dict[str, list[float]] = {}
    else:
        from jwpipe.pipeline import Detector1Pipeline

        import_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        pipe = Detector1Pipeline(steps=step_overrides(refs, "jwpipe"), save_results=True,
                                 output_dir=outdir)
        pipe.run(uncal)
        steps = {k.split(".", 1)[-1]: [v["wall_time_s"], v["cpu_time_s"]]
                 for k, v in pipe.get_full_metadata().items() if "." in k}
    return {"import_s": import_s, "run_s": time.perf_counter() - t1, "steps_s": steps,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}


def offline_crds_env(root: Path) -> dict[str, str]:
    """Environment in which jwst never contacts a CRDS server (all references overridden)."""
    config = root / "config" / "jwst"
    config.mkdir(parents=True, exist_ok=True)
    (config / "server_config").write_text(repr({
        "observatory": "jwst", "operational_context": "jwst_0000.pmap",
        "latest_context": "jwst_0000.pmap", "force_remote_mode": False, "bad_files": "",
        "bad_files_list": [], "last_synced": "2026-01-01 00:00:00"}))
    return {"CRDS_PATH": str(root), "CRDS_SERVER_URL": "https://127.0.0.1:9",
            "STPIPE_DISABLE_CRDS_STEPPARS": "true"}


def measure(engine: str, uncal: Path, refs: dict[str, str], outdir: Path,
            env: dict[str, str]) -> dict:
    """One whole-process run in a subprocess; wall time measured here, from spawn to exit."""
    outdir.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--_child", engine, str(uncal),
                           json.dumps(refs), str(outdir)], capture_output=True, text=True,
                          env=env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"{engine} run failed:\n{proc.stderr[-3000:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res.update(wall_s=wall, cpu_s=cpu, load=load)
    return res


def same_products(dir_a: Path, dir_b: Path) -> bool:
    """True when every array of every _rate/_rateints product is bit-identical."""
    from astropy.io import fits

    names = sorted(p.name for p in dir_a.glob("*_rate*.fits"))
    if not names or names != sorted(p.name for p in dir_b.glob("*_rate*.fits")):
        return False
    for name in names:
        with fits.open(dir_a / name) as a, fits.open(dir_b / name) as b:
            for ha, hb in zip(a, b, strict=True):
                if ha.name == "ASDF" or ha.data is None:
                    continue
                if ha.data.dtype != hb.data.dtype or ha.data.tobytes() != hb.data.tobytes():
                    return False
    return True


def compile_bytecode() -> None:
    """Byte-compile jwpipe as an installation would (``pip install`` does; jwst's are).

    With ``PYTHONDONTWRITEBYTECODE`` set and jwpipe run from a source tree, every measured
    process would otherwise compile jwpipe's modules again (~0.1 s of CPU).
    """
    import compileall

    import jwpipe

    compileall.compile_dir(os.path.dirname(jwpipe.__file__), quiet=1)


def _range(values: list[float]) -> str:
    return (f"{min(values):.2f}" if len(values) == 1
            else f"{min(values):.2f}-{max(values):.2f} (median {statistics.median(values):.2f})")


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


def prepare_inputs(workdir: Path, tmp: Path, size: int, ngroups: int
                   ) -> tuple[Path, Path, dict[str, str], Path, dict[str, str]]:
    """The simulator's exposure and references, and their stdatamodels re-writes."""
    sim_uncal, sim_refdir = simulate(workdir, size, ngroups)
    sim_refs = reference_paths(sim_refdir)
    (tmp / "stdatamodels").mkdir()
    sdm_uncal, sdm_refs = write_with_stdatamodels(sim_uncal, sim_refs, tmp / "stdatamodels")
    return sim_uncal, sim_refdir, sim_refs, sdm_uncal, sdm_refs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="bench_detector1_work")
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--ngroups", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--no-jwst", action="store_true", help="skip the jwst runs")
    parser.add_argument("--stcal-kernels", action="store_true",
                        help="also time stcal's jump and ramp fit kernels on the same arrays")
    parser.add_argument("--_child", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--_compare", nargs=2, metavar=("UNCAL", "REFS"),
                        help=argparse.SUPPRESS)
    ns = parser.parse_args(argv)
    if ns._child:
        print(json.dumps(child_run(*ns._child)))
        return 0
    if ns._compare:
        print(json.dumps(compare_stcal(*ns._compare)))
        return 0
    try:
        import jwst  # noqa: F401
        have_jwst = not ns.no_jwst
    except ImportError:
        have_jwst = False
        print("jwst is not installed (pip install jwpipe[bench]): jwst runs skipped")
    workdir = Path(ns.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    compile_bytecode()
    env = dict(os.environ, JWPIPE_DISABLE_REF_STEPPARS="1")
    with tempfile.TemporaryDirectory(prefix="bench_detector1_", dir=workdir) as tmp_name:
        tmp = Path(tmp_name)
        # made in a spawned process: a child forked from a parent that grew while writing the
        # data would report the parent's size as its peak RSS (Linux keeps ru_maxrss across exec)
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(1, mp_context=spawn) as pool:
            sim_uncal, sim_refdir, sim_refs, sdm_uncal, sdm_refs = pool.submit(
                prepare_inputs, workdir, tmp, ns.size, ns.ngroups).result()
        jwst_env = dict(env, **offline_crds_env(tmp / "crds"))
        inputs = {"stdatamodels": (sdm_uncal, sdm_refs), "simulator": (sim_uncal, sim_refs)}
        print(f"Detector1 {ns.size}x{ns.size}x{ns.ngroups}, whole process (start, imports, "
              f"read, steps, write rate + rateints); {os.cpu_count()} CPUs, "
              f"threads: {os.environ.get('JWPIPE_THREADS') or 'all usable CPUs'}")
        results: dict[str, list[dict]] = {}
        for rep in range(ns.repeat):
            runs = ([("jwst", "stdatamodels")] if have_jwst else []) + [
                ("jwpipe", "stdatamodels"), ("jwpipe", "simulator")]
            if have_jwst and ns.repeat > 1 and rep % 2:
                runs = runs[1:] + runs[:1]  # alternate who runs first
            for engine, which in runs:
                uncal, refs = inputs[which]
                res = measure(engine, uncal, refs, tmp / f"out_{engine}_{which}",
                              jwst_env if engine == "jwst" else env)
                results.setdefault(f"{engine}/{which}", []).append(res)
                print(f"run {rep + 1} {engine:6s} on {which:12s}: {res['wall_s']:6.2f} s "
                      f"(import {res['import_s']:.2f}, pipeline {res['run_s']:.2f}; CPU "
                      f"{res['cpu_s']:.2f} s), peak RSS {res['peak_rss_mib']:5.0f} MiB, "
                      f"load {res['load']:.1f}")
                for step, (sec, cpu) in res["steps_s"].items():
                    print(f"        {step:14s} {sec:7.3f} s (CPU {cpu:.3f} s)")
        one = measure("jwpipe", sdm_uncal, sdm_refs, tmp / "out_jwpipe_1thread",
                      dict(env, JWPIPE_THREADS="1"))
        identical = same_products(tmp / "out_jwpipe_1thread", tmp / "out_jwpipe_stdatamodels")
        print("\nsummary (wall time of the whole process; ratio = jwst / jwpipe in the same "
              "repetition)")
        for key, runs_ in results.items():
            print(f"    {key:22s} wall {_range([r['wall_s'] for r in runs_])} s, CPU "
                  f"{_range([r['cpu_s'] for r in runs_])} s, peak RSS "
                  f"{_range([r['peak_rss_mib'] for r in runs_])} MiB")
        if "jwst/stdatamodels" in results:
            for which in inputs:
                pairs = list(zip(results["jwst/stdatamodels"], results[f"jwpipe/{which}"],
                                 strict=True))
                print(f"    jwst / jwpipe ({which:12s}) wall "
                      f"{_range([j['wall_s'] / p['wall_s'] for j, p in pairs])}x, CPU "
                      f"{_range([j['cpu_s'] / p['cpu_s'] for j, p in pairs])}x")
        print(f"    jwpipe JWPIPE_THREADS=1 on stdatamodels: {one['wall_s']:.2f} s, products "
              f"{'bit-identical to' if identical else 'DIFFER from'} the threaded run")
        print(f"    load average now {os.getloadavg()[0]:.1f} (other processes share the CPUs)")
        if ns.stcal_kernels:
            proc = subprocess.run([sys.executable, __file__, "--_compare", str(sim_uncal),
                                   str(sim_refdir)], capture_output=True, text=True, env=env)
            lines = proc.stdout.strip().splitlines()
            cmp_ = json.loads(lines[-1]) if proc.returncode == 0 and lines else {
                "skipped": proc.stderr.strip().splitlines()[-1:]}
            if "skipped" in cmp_:
                print(f"stcal comparison skipped: {cmp_['skipped']}")
            else:
                print("stcal kernels (same arrays, same process):")
                for key, value in cmp_.items():
                    print(f"    {key:18s} {value:8.3f}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
