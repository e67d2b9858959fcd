"""``jwpipe simulate OUTDIR``: dithered NIRCam exposures with known truth and references.

Writes OUTDIR/*_uncal.fits, image2/image3 associations, OUTDIR/refs (a CRDS cache:
mappings, references, server_config) and OUTDIR/truth (true rate images, sources, cosmic
rays, pointing errors).
"""

from __future__ import annotations

import argparse


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="jwpipe simulate", description=__doc__.split("\n\n")[0].split(": ", 1)[1]
    )
    p.add_argument("outdir", help="output directory (created if needed)")
    p.add_argument("--exposures", type=int, default=4, help="dithered exposures (default 4)")
    p.add_argument("--detectors", nargs="+", default=["nrca1"], metavar="DET",
                   help="SW detectors, e.g. nrca1 nrca2 or nrca1,nrca2; 'sw' for all 8 of a "
                        "NIRCam pointing (default nrca1)")
    p.add_argument("--size", type=int, default=256,
                   help="array size in pixels, 16..2048; 2048 = full frame (default 256)")
    p.add_argument("--ngroups", type=int, default=10, help="groups per integration (default 10)")
    p.add_argument("--nints", type=int, default=1, help="integrations (default 1)")
    p.add_argument("--readpatt", default="RAPID",
                   help="readout pattern: RAPID, BRIGHT1, BRIGHT2, SHALLOW2, SHALLOW4, MEDIUM2, "
                        "MEDIUM8, DEEP2, DEEP8 (default RAPID)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--filter", default="F200W", help="filter (default F200W)")
    p.add_argument("--frame-time", type=float, default=None,
                   help="frame time in s (default: NIRCam timing for the array size)")
    p.add_argument("--cr-rate", type=float, default=2e-5,
                   help="cosmic-ray hits per second per pixel (default 2e-5)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing simulated CRDS cache in OUTDIR/refs")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def main(argv: list[str]) -> int:
    """Run ``jwpipe simulate``; return the exit status."""
    args = _parser().parse_args(argv)
    from jwpipe.simulate import simulate_field

    result = simulate_field(
        args.outdir, n_exposures=args.exposures, detectors=tuple(args.detectors),
        size=args.size, ngroups=args.ngroups, nints=args.nints, readpatt=args.readpatt,
        seed=args.seed, filter=args.filter, frame_time=args.frame_time, cr_rate=args.cr_rate,
        overwrite=args.overwrite,
    )
    print(f"wrote {len(result.uncal_files)} exposures to {result.outdir} "
          f"in {result.timings['total']:.1f} s")
    print(f"CRDS cache: {result.store_dir} (context {result.context}); use it with "
          f"CRDS_PATH={result.store_dir}")
    print(f"image3 association: {result.asn_image3.name}")
    print(f"truth: {result.outdir / 'truth'}")
    return 0
