"""Workflow generation and Snakemake dry-run cost for N exposures (documented in the README).

    python benchmarks/bench_workflow.py [--n 100 1000]

For each N: N copies of a small simulated exposure (distinct names), one image3 association, then
times `jwpipe make-workflow` (in process), a no-change regeneration, and `snakemake -n -q` on the
result (Snakemake alone needs ~11 s for 10,000 jobs on this machine, research/snakemake.md 5.1).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path


def _observed_at(raw: bytes, i: int) -> bytes:
    """A copy of the FITS file ``raw`` observed ``i`` x 400 s later: DATE-OBS and TIME-OBS are
    reference-selection keywords, so (as in a real survey) every exposure has its own."""
    from astropy.io.fits import Card

    start = datetime(2023, 6, 1, 12) + timedelta(seconds=400 * i)
    mjd = 60096.5 + 400 * i / 86400
    values = {"DATE-OBS": start.strftime("%Y-%m-%d"), "TIME-OBS": start.strftime("%H:%M:%S.%f")[:12],
              "DATE-BEG": start.strftime("%Y-%m-%dT%H:%M:%S.%f")[:23], "EXPSTART": mjd,
              "EXPMID": mjd + 0.0002, "EXPEND": mjd + 0.0004}
    out = bytearray(raw)
    end = raw.index(b"END" + b" " * 77)  # the primary header only
    for at in range(0, end, 80):
        key = raw[at:at + 8].decode("ascii").strip()
        if key in values:
            out[at:at + 80] = Card(key, values[key]).image.encode("ascii")
    return bytes(out)


def _field(base: Path, n: int) -> tuple[Path, Path]:
    from jwpipe.associations import asn_from_list, write_asn
    from jwpipe.simulate import simulate_field

    sim = simulate_field(base / f"sim{n}", n_exposures=1, size=32, ngroups=3, seed=3)
    data = base / f"data{n}"
    data.mkdir()
    raw = sim.uncal_files[0].read_bytes()
    names = []
    for i in range(n):
        name = f"jw02000{i // 1000 + 1:03d}001_01101_{i % 1000 + 1:05d}_nrca1"
        (data / f"{name}_uncal.fits").write_bytes(_observed_at(raw, i))
        names.append(f"{name}_cal.fits")
    asn = data / "bench_image3_asn.json"
    write_asn(asn_from_list(names, product_name="jw02000-o001_t001_nircam_clear-f200w"), asn)
    return asn, sim.store_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, nargs="+", default=[100, 1000])
    ns = parser.parse_args()
    from jwpipe.workflow.generate import generate_workflow

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        for n in ns.n:
            asn, refs = _field(base, n)
            work = base / f"wf{n}"
            t0 = time.perf_counter()
            plan, _ = generate_workflow([str(asn)], work, refs=str(refs))
            t_gen = time.perf_counter() - t0
            t0 = time.perf_counter()
            generate_workflow([str(asn)], work, refs=str(refs))
            t_regen = time.perf_counter() - t0
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "-q", "--cores", "2"],
                                  cwd=work, capture_output=True, text=True)
            t_dry = time.perf_counter() - t0
            if proc.returncode != 0:
                raise SystemExit(proc.stderr)
            rows.append((n, len(plan.units), t_gen, t_regen, t_dry))
    print(f"{'exposures':>9} {'jobs':>7} {'generate s':>11} {'regenerate s':>13} "
          f"{'snakemake -n s':>15}")
    for n, jobs, g, r, d in rows:
        print(f"{n:>9} {jobs:>7} {g:>11.2f} {r:>13.2f} {d:>15.2f}")


if __name__ == "__main__":
    main()
