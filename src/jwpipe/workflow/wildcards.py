"""The Snakefile's wildcard constraints: short, and proven unambiguous for the plan.

Snakemake pastes a wildcard's constraint into every output pattern of every rule and scans that
text each time it applies wildcards to a job, so an alternation of every exposure name makes a
dry run quadratic in the number of exposures (26,006 jobs: 287 s instead of ~23 s). The
constraint used instead is the set of names the planner accepts (:func:`jwpipe.workflow.plan.
check_name`), which has constant length.

A generic pattern could let one rule claim another rule's file (``{exp}_rateints.fits`` matching
``X_ramp_fit_rateints.fits`` with ``exp=X_ramp_fit``). :func:`wildcard_constraints` checks every
file the plan names against every step rule's output pattern; only if some file is claimed by a
rule that does not make it does it fall back to the exact alternation of names (correct, but
quadratic in Snakemake), and says so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

__all__ = ["GENERIC_NAME", "ambiguous_files", "wildcard_constraints"]

#: Every name :func:`jwpipe.workflow.plan.check_name` accepts (without its length limit and its
#: ban on ``..``, which the planner enforces before anything reaches a Snakefile).
GENERIC_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"


def _alternatives(names: Iterable[str]) -> str:
    names = sorted(set(names), key=lambda n: (-len(n), n))
    if not names:
        return "(?!x)x"  # matches nothing
    return "|".join(re.escape(n) for n in names)


def _pattern_regex(pattern: str, wildcard: str) -> tuple[str, str, re.Pattern[str]]:
    head, sep, tail = pattern.partition("{" + wildcard + "}")
    if not sep or "{" in head + tail:
        raise ValueError(f"output pattern {pattern!r} must hold {{{wildcard}}} once")
    return head, tail, re.compile(re.escape(head) + f"({GENERIC_NAME})" + re.escape(tail))


def ambiguous_files(steps: list[dict[str, Any]], made: dict[str, tuple[str, str]],
                    named: Iterable[str]) -> list[str]:
    """Files a step rule would claim wrongly under the generic constraint.

    Parameters
    ----------
    steps : list of dict
        The plan's steps (``name``, ``wildcard``, output ``outputs`` patterns).
    made : dict
        Every output path the plan makes -> (step, wildcard value) of the unit that makes it.
    named : iterable of str
        Every other path the plan names (inputs, targets).

    Returns
    -------
    list of str
        Paths matched by a rule that does not make them, or with another wildcard value.
    """
    rules = [(step["name"], *_pattern_regex(p, step["wildcard"]))
             for step in steps for p in step["outputs"]]
    wrong = []
    for path in dict.fromkeys([*made, *named]):
        maker = made.get(path)
        for name, head, tail, regex in rules:
            if not (path.endswith(tail) and path.startswith(head)):
                continue
            m = regex.fullmatch(path)
            if m and maker != (name, m.group(1)):
                wrong.append(path)
                break
    return wrong


def wildcard_constraints(plan: Any) -> tuple[dict[str, str], list[str]]:
    """The constraint of each wildcard (``exp``, ``product``) and notes for the user.

    The generic name pattern when no file of the plan can be claimed by the wrong rule, else
    the alternation of the plan's names.
    """
    made = {path: (u.step, u.key) for u in plan.units for path in u.output_paths}
    named = [path for u in plan.units for path in u.input_paths] + list(plan.targets)
    wrong = ambiguous_files(plan.steps, made, named)
    if not wrong:
        return {"exp": GENERIC_NAME, "product": GENERIC_NAME}, []
    note = (f"output names of different steps overlap (e.g. {wrong[0]}): the Snakefile lists "
            "every exposure and product name in its wildcard constraints, which makes "
            "Snakemake's dry run grow with the square of the number of exposures")
    return {"exp": _alternatives(plan.exposures), "product": _alternatives(plan.products)}, [note]
