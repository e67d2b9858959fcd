"""``jwpipe refs``: inspect and index the reference-file store.

``jwpipe refs show DATASET [--refs DIR] [--reftype T ...]`` prints, for each reference type, the
file that would be used for the dataset and why. ``jwpipe refs index DIR [--name NAME]``
(re)builds ``DIR/index.yaml`` from the headers of the reference files in ``DIR``.
"""

from __future__ import annotations

import argparse

from jwpipe.errors import ReferenceFileError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jwpipe refs", description=__doc__.split("\n\n")[1])
    sub = parser.add_subparsers(dest="action", required=True, metavar="{show,index}")
    show = sub.add_parser("show", help="show which reference of each type a dataset would use")
    show.add_argument("dataset", help="science FITS file (its primary header is used)")
    show.add_argument("--refs", help="store directory (default: $JWPIPE_REFS)")
    show.add_argument(
        "--reftype", action="append", default=[], metavar="T",
        help="reference type to show (repeatable; default: every type in the store)",
    )
    show.add_argument("--brief", action="store_true", help="one line per type, no explanation")
    index = sub.add_parser("index", help="(re)build DIR/index.yaml from the file headers")
    index.add_argument("directory", help="store directory")
    index.add_argument("--name", help="store name used in the context string")
    for p in (parser, show, index):
        p.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str]) -> int:
    """Run ``jwpipe refs``; return the exit status."""
    args = _parser().parse_args(argv)
    from jwpipe.references import build_index, get_store, parameters_from_file

    if args.action == "index":
        path = build_index(args.directory, name=args.name)
        store = get_store(args.directory)
        assert store is not None
        print(f"wrote {path}: {len(store.entries())} entries, context {store.context}")
        return 0
    store = get_store(args.refs)
    if store is None:
        raise ReferenceFileError("no reference store: give --refs DIR or set JWPIPE_REFS")
    params = parameters_from_file(args.dataset)
    reftypes = [t.lower() for t in args.reftype] or store.reftypes
    status = 0
    for reftype in reftypes:
        if args.brief:
            try:
                result = store.get_reference_file(params, reftype)
            except ReferenceFileError as exc:
                result, status = f"ERROR: {exc}", 1
            print(f"{reftype}: {result}")
        else:
            text = store.explain(params, reftype)
            status = 1 if "result: ERROR" in text else status
            print(text)
            print()
    return status
