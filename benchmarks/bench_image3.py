"""Benchmark: Image3 at full frame, jwpipe next to the bare C-drizzle core, back to back.

Usage::

    python benchmarks/bench_image3.py [--workdir DIR] [--counts 2 8] [--size 2048]
        [--memory-only 32] [--what resample image3 core]

For each count N a dithered field of N exposures (``size`` x ``size``, 2048 = NIRCam full
frame) is simulated; rate files are made from the simulator's truth (true count rate plus
noise matching ERR, as in the tests) and calibrated with Image2Pipeline. Then, each in a fresh
subprocess on the same ``_cal`` files, one after the other:

* ``core``: the bare C-drizzle core, what jwst's resample does underneath: astropy WCS from
  each SCI header, the pixel map evaluated for every pixel (``all_pix2world`` then
  ``all_world2pix``), ``drizzle.resample.Drizzle.add_image`` with ivm weights and the three
  variance arrays, the products written with astropy.io.fits;
* ``resample``: jwpipe's ``ResampleStep`` on the association (``_i2d`` written);
* ``image3``: jwpipe's whole ``Image3Pipeline`` (tweakreg, skymatch, outlier detection,
  resample, source catalogue).

Wall time is the child's whole life (interpreter start, imports, reading, writing); peak
memory is the child's high-water mark ``VmHWM`` (not ``ru_maxrss``, which Linux carries over
from the parent through fork and exec). ``--memory-only`` counts are run for ``resample`` and
``image3`` only (the core is not needed to show that memory stays flat in N).
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
    from jwpipe.simulate.pointing import default_dithers

    sim_dir = workdir / f"n{n:03d}_{size}"
    done = sim_dir / "image3_asn.done"
    if done.exists():
        return Path(done.read_text().strip())
    t0 = time.perf_counter()
    # the tests' source density (70 stars, 15 galaxies per 256^2), capped at full frame
    reach = 10 + max(abs(v) for d in default_dithers(n, size) for v in d)
    area = (size + 2 * reach) ** 2 / 256**2
    sim = simulate_rates(sim_dir, n_exposures=n, size=size, seed=3,
                         n_stars=round(min(70 * area, 3000)),
                         n_galaxies=round(min(15 * area, 600)))
    os.environ["JWPIPE_REFS"] = str(sim.sim.store_dir)
    for asn in sim.sim.asn_image2:
        Image2Pipeline.call(str(asn), save_results=True, output_dir=str(sim_dir),
                            configure_log=False)
    for rate in sim.rates:  # only the cal files are needed from here on
        Path(str(rate).replace("_rate.fits", "_uncal.fits")).unlink(missing_ok=True)
    done.write_text(str(sim.sim.asn_image3))
    print(f"N={n}: simulated and calibrated in {time.perf_counter() - t0:.1f} s", flush=True)
    return Path(sim.sim.asn_image3)


# ----------------------------------------------------------------------------- children


def _cal_files(asn: str) -> list[str]:
    with open(asn) as f:
        table = json.load(f)
    base = os.path.dirname(asn)
    return [os.path.join(base, m["expname"]) for p in table["products"]
            for m in p["members"] if m.get("exptype", "science") == "science"]


def run_core(asn: str, outdir: str) -> dict:
    """Astropy WCS pixel maps + drizzle.resample.Drizzle, nothing of jwpipe's resampling."""
    import warnings

    import numpy as np
    from astropy.io import fits
    from astropy.wcs import WCS, FITSFixedWarning
    from drizzle.resample import Drizzle

    from jwpipe.algorithms.image_geometry import make_output_wcs, y_axis_angle

    warnings.simplefilter("ignore", FITSFixedWarning)
    files = _cal_files(asn)
    wcss, shapes = [], []
    for path in files:
        header = fits.getheader(path, "SCI")
        wcss.append(WCS(header))
        shapes.append((int(header["NAXIS2"]), int(header["NAXIS1"])))
    # the same grid as jwpipe's (the first member's orientation and pixel scale)
    out_wcs, out_shape = make_output_wcs(wcss, shapes, rotation=y_axis_angle(wcss[0],
                                                                              shapes[0]))
    var_out = [np.zeros(out_shape, np.float32) for _ in range(3)]
    driz = Drizzle(kernel="square", out_shape=out_shape, fillval=np.nan, fillval2=np.nan,
                   out_img2=var_out, max_ctx_id=len(files) - 1)
    for path, wcs, shape in zip(files, wcss, shapes, strict=True):
        with fits.open(path, memmap=False) as hdul:
            sci = hdul["SCI"].data.astype(np.float32)
            dq = hdul["DQ"].data
            var = [hdul[k].data.astype(np.float32) for k in ("VAR_RNOISE", "VAR_POISSON",
                                                              "VAR_FLAT")]
        yy, xx = np.indices(shape, dtype=np.float64)
        ra, dec = wcs.all_pix2world(xx, yy, 0)
        ox, oy = out_wcs.all_world2pix(ra, dec, 0)
        pixmap = np.dstack([ox, oy])
        good = ((dq & 1) == 0) & np.isfinite(sci) & (var[0] > 0)
        weight = np.where(good, 1.0 / np.where(good, var[0], 1.0), 0.0).astype(np.float32)
        driz.add_image(np.where(good, sci, 0.0).astype(np.float32), exptime=1.0,
                       pixmap=pixmap, data2=[np.where(good, v, 0.0) for v in var],
                       weight_map=weight, pixfrac=1.0, in_units="cps")
        del sci, dq, var, pixmap, ra, dec, ox, oy, xx, yy, weight
    hdus = [fits.PrimaryHDU(header=out_wcs.to_header()),
            fits.ImageHDU(driz.out_img, name="SCI"),
            fits.ImageHDU(np.sqrt(sum(driz.out_img2)), name="ERR"),
            fits.ImageHDU(driz.out_wht, name="WHT"), fits.ImageHDU(driz.out_ctx, name="CON")]
    hdus += [fits.ImageHDU(v, name=k) for v, k in zip(driz.out_img2, ("VAR_RNOISE",
                                                                       "VAR_POISSON",
                                                                       "VAR_FLAT"),
                                                       strict=True)]
    os.makedirs(outdir, exist_ok=True)
    fits.HDUList(hdus).writeto(os.path.join(outdir, "core_i2d.fits"), overwrite=True)
    return {"out_shape": list(out_shape)}


def run_resample(asn: str, outdir: str) -> dict:
    from jwpipe.steps import ResampleStep

    out = ResampleStep.call(asn, output_dir=outdir, save_results=True)
    return {"out_shape": list(out.data.shape)}


def run_image3(asn: str, outdir: str) -> dict:
    from jwpipe.pipeline import Image3Pipeline

    pipe = Image3Pipeline(save_results=True, output_dir=outdir)
    pipe.run(asn)
    steps = {k.split(".")[-1]: round(v["wall_time_s"], 1)
             for k, v in pipe.get_full_metadata().items() if "." in k}
    return {"steps_s": steps, "nsources": len(pipe.catalog or [])}


def peak_rss_mb() -> float:
    """This process's peak resident memory (MiB) from /proc (ru_maxrss on other systems)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def child(what: str, asn: str, outdir: str, t_start: float) -> None:
    import logging

    logging.disable(logging.INFO)
    extra = {"core": run_core, "resample": run_resample, "image3": run_image3}[what](asn,
                                                                                   outdir)
    print(json.dumps({"wall_s": round(time.time() - t_start, 2),
                      "peak_rss_mb": round(peak_rss_mb(), 1), **extra}))


def run_child(what: str, asn: Path, outdir: Path) -> dict:
    t0 = time.time()
    proc = subprocess.run([sys.executable, __file__, "--child", what, str(asn), str(outdir),
                           repr(t0)], capture_output=True, text=True)
    wall = time.time() - t0
    if proc.returncode:
        print(proc.stderr[-3000:])
        raise SystemExit(f"{what} failed on {asn}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_s"] = round(wall, 2)  # whole process, interpreter start included
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="bench_image3_work")
    parser.add_argument("--counts", type=int, nargs="*", default=[2, 8])
    parser.add_argument("--memory-only", type=int, nargs="*", default=[])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--what", nargs="+", default=["core", "resample", "image3"],
                        choices=["core", "resample", "image3"])
    parser.add_argument("--child", nargs=4, metavar=("WHAT", "ASN", "OUTDIR", "T0"),
                        help=argparse.SUPPRESS)
    ns = parser.parse_args()
    if ns.child:
        child(ns.child[0], ns.child[1], ns.child[2], float(ns.child[3]))
        return
    workdir = Path(ns.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    base = subprocess.run([sys.executable, "-c", "import jwpipe.pipeline.image3, sys;"
                           f"sys.path.insert(0, {str(HERE)!r}); import bench_image3;"
                           "print(bench_image3.peak_rss_mb())"],
                          capture_output=True, text=True, check=True)
    print(f"interpreter + jwpipe imports: {float(base.stdout):.0f} MiB", flush=True)
    plan = [(n, list(ns.what)) for n in ns.counts]
    plan += [(n, [w for w in ns.what if w != "core"]) for n in ns.memory_only]
    rows = []
    for n, whats in plan:
        asn = prepare(workdir, n, ns.size)
        for what in whats:
            res = run_child(what, asn, workdir / f"n{n:03d}_{ns.size}" / f"out_{what}")
            rows.append((n, what, res))
            print(f"N={n:3d} {what:9s} wall {res['wall_s']:7.1f} s  peak RSS "
                  f"{res['peak_rss_mb']:6.0f} MiB  "
                  f"{ {k: v for k, v in res.items() if k not in ('wall_s', 'peak_rss_mb')} }",
                  flush=True)
    print("\n| N | what | wall (s) | peak RSS (MiB) |\n|---|---|---|---|")
    for n, what, res in rows:
        print(f"| {n} | {what} | {res['wall_s']:.1f} | {res['peak_rss_mb']:.0f} |")


if __name__ == "__main__":
    main()
