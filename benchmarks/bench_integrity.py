"""Cost of the workflow's integrity checks on a full-frame ramp, beside reading it.

    python benchmarks/bench_integrity.py [--size 2048] [--ngroups 10] [--repeat 3]

Writes one RampModel of (1, ngroups, size, size) float32 with PIXELDQ/GROUPDQ (about 230 MB
for the defaults) and times, best of ``--repeat`` with the file in the page cache:
(a) the anchor: ``datamodels.open`` and reading every array, as a step does;
(b) ``integrity.fingerprint`` (SHA-256 of the file: what run-step checks per input and records
per output);
(c) ``verify_fits_checksums`` (jwpipe's DATASUM/CHECKSUM verification of raw inputs with cards,
``jwpipe.fits_checksum``) beside (c') astropy's (``fits.open(checksum=True)``, every HDU read);
(d) saving the model with checksums against (e) without (the cost of writing the cards).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--ngroups", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    ns = parser.parse_args()
    from astropy.io import fits

    from jwpipe import datamodels
    from jwpipe.workflow.integrity import fingerprint, verify_fits_checksums

    rng = np.random.default_rng(1)
    shape = (1, ns.ngroups, ns.size, ns.size)
    model = datamodels.RampModel(data=rng.random(shape, dtype=np.float32))
    model.pixeldq = np.zeros(shape[2:], np.uint32)
    model.groupdq = np.zeros(shape, np.uint8)
    model.meta.cal_step.dq_init = "COMPLETE"
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        path = Path(tmp) / "ramp_jump.fits"
        with_sums = _best(lambda: model.save(str(path)), ns.repeat)
        plain = Path(tmp) / "plain.fits"

        def save_plain() -> None:
            with open(plain, "wb") as fh:
                model.to_hdulist().writeto(fh)

        without = _best(save_plain, ns.repeat)
        mb = path.stat().st_size / 1e6

        def read_all() -> None:
            with datamodels.open(str(path)) as m:
                for name in ("data", "pixeldq", "groupdq"):
                    getattr(m, name).sum()

        anchor = _best(read_all, ns.repeat)
        digest = _best(lambda: fingerprint(path), ns.repeat)
        sums = _best(lambda: verify_fits_checksums(path), ns.repeat)

        def astropy_sums() -> None:
            with fits.open(path, checksum=True, memmap=False) as hdul:
                for hdu in hdul:
                    _ = hdu.data

        by_astropy = _best(astropy_sums, ns.repeat)
        with fits.open(path) as hdul:
            assert all("CHECKSUM" in h.header for h in hdul)
    print(f"file {mb:.0f} MB, shape {shape}")
    print(f"(a) open + read every array (anchor)  {anchor:7.3f} s")
    print(f"(b) SHA-256 fingerprint                {digest:7.3f} s  ({digest / anchor:.2f}x a)")
    print(f"(c) checksum verification (jwpipe)     {sums:7.3f} s  ({sums / anchor:.2f}x a)")
    print(f"(c') the same by astropy               {by_astropy:7.3f} s  "
          f"({by_astropy / anchor:.2f}x a)")
    print(f"(d) save with DATASUM/CHECKSUM         {with_sums:7.3f} s")
    print(f"(e) save without                       {without:7.3f} s  "
          f"(d/e {with_sums / without:.2f})")


if __name__ == "__main__":
    main()
