"""``jwpipe asn``: create and check association files.

``jwpipe asn create FILE... -o OUT.json --type image2|image3 [--product NAME] [...]``
writes an association whose member names are the files' paths relative to OUT's directory
(files must lie in that directory or below it).
``jwpipe asn check ASN.json...`` validates association files and prints a one-line summary of
each (whether jwpipe's engine processes its type, or which jwst pipeline does), checking every
file even after a failure, then a summary; exit status 1 if any failed.
``--require-files`` also fails a file whose member files are missing.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from jwpipe.associations import asn_from_list, load_asn, write_asn
from jwpipe.errors import AssociationError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jwpipe asn", description="Create and check JWST association files."
    )
    sub = parser.add_subparsers(dest="action", required=True)

    create = sub.add_parser("create", help="write an association from a list of files")
    create.add_argument("files", nargs="+", metavar="FILE", help="member files")
    create.add_argument("-o", "--output", required=True, metavar="OUT.json")
    create.add_argument("--type", dest="asn_type", choices=("image2", "image3"), default="image3")
    create.add_argument("--product", metavar="NAME", help="product name (required for image3)")
    create.add_argument("--exptype", default="science", help="role of every member")
    create.add_argument("--rule", help="asn_rule value")
    create.add_argument("--asn-id", help="asn_id value (default a3001)")
    create.add_argument("--program", help="program value")
    create.add_argument("--target", help="target value")
    create.add_argument("--pool", help="asn_pool value")
    create.add_argument("--force", action="store_true", help="overwrite OUT.json if it exists")
    create.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)

    check = sub.add_parser("check", help="validate association files")
    check.add_argument("asns", nargs="+", metavar="ASN.json")
    check.add_argument(
        "--require-files", action="store_true", help="fail if a member file does not exist"
    )
    check.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    return parser


def _relative_member(file: str, out_dir: Path) -> str:
    path = Path(file).absolute()
    try:
        rel = Path(os.path.relpath(path, out_dir))
    except ValueError:  # different drives (Windows)
        rel = Path("..", path.name)
    if rel.parts and rel.parts[0] == "..":
        raise AssociationError(
            f"{file}: member is not inside the association's directory {out_dir}; "
            "write the association next to (or above) its members"
        )
    return rel.as_posix()


def _create(args: argparse.Namespace) -> int:
    out = Path(args.output)
    if out.exists() and not args.force:
        raise AssociationError(f"{out}: already exists (use --force to overwrite)")
    out_dir = out.absolute().parent
    members = [_relative_member(f, out_dir) for f in args.files]
    asn = asn_from_list(
        members,
        product_name=args.product,
        asn_type=args.asn_type,
        exptype=args.exptype,
        rule=args.rule,
        asn_id=args.asn_id,
        program=args.program,
        target=args.target,
        pool=args.pool,
    )
    written = write_asn(asn, out)
    print(
        f"wrote {written}: {args.asn_type}, {len(asn['products'])} product(s), "
        f"{len(members)} member(s)"
    )
    return 0


def _check_one(name: str, require_files: bool) -> tuple[bool, str, bool]:
    """(ok, one-line summary, for jwpipe's engine) for one association file."""
    from jwpipe.associations.types import UnsupportedAssociationError, dispatch

    try:
        asn = load_asn(name)
    except AssociationError as exc:
        return False, f"FAILED {exc}", False
    counts: dict[str, int] = {}
    for member in asn.members:
        counts[member.exptype] = counts.get(member.exptype, 0) + 1
    roles = ", ".join(f"{n} {role}" for role, n in sorted(counts.items()))
    ours = True
    try:
        kind = dispatch(asn.asn_type, name)
        engine = f"jwpipe engine ({kind.jwst_pipeline} equivalent)"
    except UnsupportedAssociationError as exc:
        ours = False
        engine = f"not for jwpipe's engine: {exc.reason}"
    missing = asn.missing_members()
    line = (f"{name}: OK {asn.asn_type or '?'} ({asn.asn_rule or 'no rule'}), "
            f"{len(asn.products)} product(s), {len(asn.members)} member(s) ({roles}); {engine}"
            + (f"; {len(missing)} member file(s) missing" if missing else ""))
    if missing and require_files:
        return False, f"FAILED {name}: member file not found: {missing[0]}", ours
    return True, line, ours


def _check(args: argparse.Namespace) -> int:
    failed = ours = 0
    for name in args.asns:
        ok, line, engine = _check_one(name, args.require_files)
        failed += not ok
        ours += ok and engine
        print(line, file=sys.stdout if ok else sys.stderr, flush=True)
    if len(args.asns) > 1:
        valid = len(args.asns) - failed
        print(f"{len(args.asns)} file(s) checked: {valid} valid ({ours} for jwpipe's engine, "
              f"{valid - ours} for jwst pipelines), {failed} failed")
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    """Run ``jwpipe asn``; return the exit status."""
    args = _parser().parse_args(argv)
    if args.action == "create":
        return _create(args)
    return _check(args)
