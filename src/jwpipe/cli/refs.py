"""``jwpipe refs show``: which reference of each type CRDS selects for a dataset, and why.

``jwpipe refs show DATASET [--refs DIR] [--context PMAP] [--reftype T ...] [--brief]`` selects
through the ``crds`` client from a CRDS cache (``--refs DIR``, else ``$JWPIPE_REFS``, else
``$CRDS_PATH``), offline, in the context ``--context``, else ``$CRDS_CONTEXT``, else the
cache's operational context.
"""

from __future__ import annotations

import argparse

from jwpipe.errors import ReferenceFileError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jwpipe refs", description=__doc__.split("\n\n")[1])
    sub = parser.add_subparsers(dest="action", required=True, metavar="{show}")
    show = sub.add_parser("show", help="show which reference of each type a dataset would use")
    show.add_argument("dataset", help="science FITS file (its primary header is used)")
    show.add_argument("--refs", metavar="DIR",
                      help="CRDS cache (default: $JWPIPE_REFS, else $CRDS_PATH)")
    show.add_argument("--context", metavar="PMAP", help="CRDS context (default: "
                      "$CRDS_CONTEXT, else the cache's operational context)")
    show.add_argument(
        "--reftype", action="append", default=[], metavar="T",
        help="reference type to show (repeatable; default: every type the context has for the "
             "dataset's instrument)",
    )
    show.add_argument("--brief", action="store_true", help="one line per type, no explanation")
    for p in (parser, show):
        p.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str]) -> int:
    """Run ``jwpipe refs``; return the exit status."""
    import os

    args = _parser().parse_args(argv)
    from jwpipe.references import open_cache, parameters_from_file

    path = args.refs or os.environ.get("JWPIPE_REFS")
    if path:
        cache = open_cache(path, args.context)
    elif os.environ.get("CRDS_PATH"):
        cache = open_cache(os.environ["CRDS_PATH"], args.context, use_env_paths=True)
    else:
        raise ReferenceFileError("no CRDS cache: set CRDS_PATH (or give --refs DIR)")
    params = parameters_from_file(args.dataset)
    reftypes = [t.lower() for t in args.reftype] or cache.reftypes(params)
    status = 0
    for reftype in reftypes:
        if args.brief:
            try:
                result = cache.get_reference_file(params, reftype)
            except ReferenceFileError as exc:
                result, status = f"ERROR: {exc}", 1
            print(f"{reftype}: {result}")
        else:
            text = cache.explain(params, reftype)
            status = 1 if "result: ERROR" in text else status
            print(text)
            print()
    return status
