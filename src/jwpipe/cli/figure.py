"""``jwpipe figure``: draw one picture of a workflow's report (run by the report rules)."""

from __future__ import annotations

import argparse
from pathlib import Path

from jwpipe.errors import JwpipeError


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="jwpipe figure", description="Draw one picture of a workflow's report.")
    sub = parser.add_subparsers(dest="kind", required=True)
    image = sub.add_parser("image", help="quick-look PNG of a _rate, _cal or _i2d product")
    image.add_argument("image")
    image.add_argument("out")
    image.add_argument("--catalog", help="mark this catalogue's sources (_cat.ecsv)")
    bench = sub.add_parser("benchmarks", help="per-step wall time and peak memory")
    bench.add_argument("out")
    bench.add_argument("tsv", nargs="+",
                       help="Snakemake benchmark files, or directories searched for *.tsv")
    bench.add_argument("--order", default="", help="comma-separated step order")
    align = sub.add_parser("alignment", help="tweakreg residuals before/after")
    align.add_argument("out")
    align.add_argument("members", nargs="+",
                       help="aligned member files, or a directory of them (.tweakreg)")
    status = sub.add_parser("status", help="the status table as HTML")
    status.add_argument("workdir")
    status.add_argument("out")
    ns = parser.parse_args(argv)

    from jwpipe.report import figures

    def expand(paths: list[str], pattern: str) -> list[str]:
        out: list[str] = []
        for path in paths:
            p = Path(path)
            out += sorted(str(f) for f in p.rglob(pattern)) if p.is_dir() else [path]
        if not out:
            raise JwpipeError(f"no {pattern} files in {' '.join(paths)}")
        return out

    if ns.kind == "image":
        figures.image_figure(ns.image, ns.out, catalog=ns.catalog)
    elif ns.kind == "benchmarks":
        order = [s for s in ns.order.split(",") if s]
        figures.benchmark_figure(expand(ns.tsv, "*.tsv"), ns.out, order=order)
    elif ns.kind == "alignment":
        figures.alignment_figure(expand(ns.members, "*.fits"), ns.out)
    else:
        figures.status_page(ns.workdir, ns.out)
    return 0
