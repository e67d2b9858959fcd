"""``jwpipe list [PATTERN] [--pipelines-only | --steps-only]``: the built-in steps and pipelines."""

from __future__ import annotations

import argparse
import fnmatch
import sys


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="jwpipe list", description=__doc__)
    parser.add_argument("pattern", nargs="?", default="*",
                        help="glob matched against class names and aliases (case-insensitive)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--pipelines-only", action="store_true")
    group.add_argument("--steps-only", action="store_true")
    ns = parser.parse_args(argv)
    from jwpipe.stpipe.registry import builtin_entries

    pattern = ns.pattern.lower()
    rows = []
    for entry in sorted(builtin_entries(), key=lambda e: e.class_name):
        if (ns.pipelines_only and not entry.is_pipeline) or (ns.steps_only and entry.is_pipeline):
            continue
        names = (entry.class_name.lower(), (entry.alias or "").lower())
        if any(fnmatch.fnmatchcase(n, pattern) for n in names):
            rows.append(f"{entry.path} ({entry.alias})" if entry.alias else entry.path)
    if not rows:
        print("(no matching classes)", file=sys.stderr)
    print("\n".join(rows))
    return 0
