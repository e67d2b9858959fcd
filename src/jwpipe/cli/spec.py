"""``jwpipe spec <class | alias>``: print a step's parameter spec."""

from __future__ import annotations

import argparse


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="jwpipe spec", description=__doc__)
    parser.add_argument("step", help="alias, class name or dotted path")
    ns = parser.parse_args(argv)
    from jwpipe.stpipe.registry import resolve_step_class

    resolve_step_class(ns.step, what="step").print_configspec()
    return 0
