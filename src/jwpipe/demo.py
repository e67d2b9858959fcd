"""`make demo`: simulate a field, build the workflow, run it with Snakemake, show the products.

``python -m jwpipe.demo [OUTDIR] [--exposures N] [--size N] [--ngroups N] [--cores N]``
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _summary(work: Path, sim) -> None:
    import numpy as np
    from astropy.table import Table

    from jwpipe import datamodels

    products = sorted(p for p in (work / "products").iterdir() if not p.name.startswith("."))
    finals = [p for p in products if p.name.endswith(("_rate.fits", "_cal.fits", "_i2d.fits",
                                                      "_cat.ecsv")) or p.suffix == ".crf"]
    print("\nFinal products:")
    for path in finals:
        size = sum(f.stat().st_size for f in path.rglob("*")) if path.is_dir() else \
            path.stat().st_size
        print(f"  {path.relative_to(work)}  ({_human(size)})")
    print(f"  ... and {len(products) - len(finals)} intermediate products (one per step)")
    for i2d in (p for p in finals if p.name.endswith("_i2d.fits")):
        with datamodels.open(str(i2d)) as m:
            good = np.isfinite(m.data)
            print(f"\nMosaic {i2d.name}: {m.data.shape[1]} x {m.data.shape[0]} pixels, "
                  f"{good.mean():.1%} covered, median {np.nanmedian(m.data):.4g} "
                  f"{m.meta.bunit_data or ''}")
    for cat in (p for p in finals if p.name.endswith("_cat.ecsv")):
        table = Table.read(cat, format="ascii.ecsv")
        print(f"Catalogue {cat.name}: {len(table)} sources detected "
              f"(the simulator injected {len(Table.read(sim.sources, format='ascii.ecsv'))})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jwpipe.demo", description=__doc__)
    parser.add_argument("outdir", nargs="?", default="demo-output")
    parser.add_argument("--exposures", type=int, default=4)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--ngroups", type=int, default=8)
    parser.add_argument("--cores", type=int, default=2)
    ns = parser.parse_args(argv)
    from jwpipe.simulate import simulate_field
    from jwpipe.workflow.generate import generate_workflow

    out = Path(ns.outdir).resolve()
    if out.exists():
        shutil.rmtree(out)
    t0 = time.perf_counter()
    print(f"1. Simulating {ns.exposures} dithered NIRCam exposures ({ns.size}x{ns.size}, "
          f"{ns.ngroups} groups) with known truth in {out}/data ...")
    sim = simulate_field(out / "data", n_exposures=ns.exposures, size=ns.size,
                         ngroups=ns.ngroups, seed=2026)
    print(f"   {len(sim.uncal_files)} uncal files, CRDS cache {sim.store_dir} "
          f"(context {sim.context}), association {sim.asn_image3.name}")
    work = out / "workflow"
    print("2. Generating the Snakemake workflow from the image3 association ...")
    plan, _ = generate_workflow([str(sim.asn_image3)], work, refs=str(sim.store_dir))
    steps = list(dict.fromkeys(u.step for u in plan.units))
    print(f"   {len(plan.units)} jobs, one rule per step: {' -> '.join(steps)}")
    print(f"3. Running it: snakemake --profile profiles/local --cores {ns.cores} (in {work}) ...")
    t1 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--profile", "profiles/local",
                           "--cores", str(ns.cores), "--quiet", "all"], cwd=work)
    if proc.returncode != 0:
        print("demo: the workflow failed; see the logs under", work / "logs", file=sys.stderr)
        return proc.returncode
    print(f"   done in {time.perf_counter() - t1:.1f} s")
    _summary(work, sim)
    print("\n4. The state of every unit (jwpipe status):")
    subprocess.run([sys.executable, "-m", "jwpipe", "status", str(work)], check=False)
    print("\n5. What a second run would do (jwpipe plan):")
    subprocess.run([sys.executable, "-m", "jwpipe", "plan", str(work)], check=False)
    print("\n6. The pictures, in Snakemake's report (snakemake --report report.html):")
    report = work / "report.html"
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--report", str(report), "all"],
                          cwd=work, capture_output=True, text=True)
    if proc.returncode != 0:
        print("demo: the report could not be made:\n" + proc.stderr[-2000:], file=sys.stderr)
        return proc.returncode
    pictures = sorted(p.name for p in (work / "pictures").iterdir())
    print(f"   {report}  ({_human(report.stat().st_size)}; {len(pictures)} pictures: "
          f"quick-looks of every _rate and _cal, the mosaic with its sources, alignment "
          f"residuals, timings, status) -- open it in a browser")
    print(f"\nTotal {time.perf_counter() - t0:.1f} s. Try: jwpipe status {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
