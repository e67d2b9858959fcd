"""The Snakefile's wildcard constraints: short, and proven unambiguous for the plan.

Snakemake pastes a wildcard's constraint into every output pattern of every rule and scans that
text each time it applies wildcards to a job, so an alternation of every exposure name makes a
dry run quadratic in the number of exposures (26,006 jobs: 287 s instead of ~23 s). The
constraint used instead has a length that depends on the steps only: the names the planner
accepts (:func:`jwpipe.workflow.plan.check_name`), minus the names that would let one rule claim
another rule's file. Detector1 writes ``{exp}_ramp_fit_rateints.fits`` and
``{exp}_rateints.fits``; the second pattern matches the first file with ``exp=X_ramp_fit``, so
``exp`` may not end with ``_ramp_fit``.

:func:`wildcard_constraints` then checks every file the plan names against every step rule's
output pattern. Only if a file would still be claimed by a rule that does not make it (or a
name of the plan is excluded, such as an exposure really named ``..._ramp_fit``) does it fall
back to the exact alternation of names (correct, but quadratic in Snakemake), and says so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

__all__ = ["GENERIC_NAME", "ambiguous_files", "constraints_for", "wildcard_constraints"]

#: Every name :func:`jwpipe.workflow.plan.check_name` accepts (without its length limit and its
#: ban on ``..``, which the planner enforces before anything reaches a Snakefile).
GENERIC_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"


def _alternatives(names: Iterable[str]) -> str:
    names = sorted(set(names), key=lambda n: (-len(n), n))
    if not names:
        return "(?!x)x"  # matches nothing
    return "|".join(re.escape(n) for n in names)


def _split(pattern: str, wildcard: str) -> tuple[str, str]:
    head, sep, tail = pattern.partition("{" + wildcard + "}")
    if not sep or "{" in head + tail:
        raise ValueError(f"output pattern {pattern!r} must hold {{{wildcard}}} once")
    return head, tail


def _rules(steps: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """(step, wildcard, head, tail) of every output pattern."""
    return [(s["name"], s["wildcard"], *_split(p, s["wildcard"]))
            for s in steps for p in s["outputs"]]


def constraints_for(steps: list[dict[str, Any]]) -> dict[str, str]:
    """Each wildcard's constraint: a planner-valid name that cannot turn one rule's output
    pattern into another's (it may not start with what one pattern's head adds to another's,
    nor end with what one tail adds to another's)."""
    rules = _rules(steps)
    starts: dict[str, set[str]] = {"exp": set(), "product": set()}
    ends: dict[str, set[str]] = {"exp": set(), "product": set()}
    for _, _, head_a, tail_a in rules:
        for _, wildcard, head_b, tail_b in rules:
            if (head_a, tail_a) == (head_b, tail_b) or not (
                    head_a.startswith(head_b) and tail_a.endswith(tail_b)):
                continue
            extra_head = head_a[len(head_b):]
            extra_tail = tail_a[:len(tail_a) - len(tail_b)]
            if extra_tail:
                ends.setdefault(wildcard, set()).add(extra_tail)
            else:
                starts.setdefault(wildcard, set()).add(extra_head)
    out = {}
    for wildcard in sorted(set(starts) | set(ends)):
        ahead = "".join(f"(?!{re.escape(s)})" for s in sorted(starts.get(wildcard, ())))
        behind = "".join(f"(?<!{re.escape(e)})" for e in sorted(ends.get(wildcard, ())))
        out[wildcard] = ahead + GENERIC_NAME + behind
    return out


def ambiguous_files(steps: list[dict[str, Any]], made: dict[str, tuple[str, str]],
                    named: Iterable[str], constraints: dict[str, str] | None = None
                    ) -> list[str]:
    """Files the step rules would not resolve to exactly the unit that makes them.

    Parameters
    ----------
    steps : list of dict
        The plan's steps (``name``, ``wildcard``, output ``outputs`` patterns).
    made : dict
        Every output path the plan makes -> (step, wildcard value) of the unit that makes it.
    named : iterable of str
        Every other path the plan names (inputs, targets).
    constraints : dict, optional
        Wildcard -> regex (default: :data:`GENERIC_NAME` for all).

    Returns
    -------
    list of str
        Paths matched by a rule that does not make them (or with another wildcard value), and
        made paths their own rule does not match.
    """
    constraints = constraints or {}
    rules = [(name, head, tail,
              re.compile(re.escape(head) + f"({constraints.get(wc, GENERIC_NAME)})"
                         + re.escape(tail)))
             for name, wc, head, tail in _rules(steps)]
    wrong = []
    for path in dict.fromkeys([*made, *named]):
        maker = made.get(path)
        claims = []
        for name, head, tail, regex in rules:
            if path.endswith(tail) and path.startswith(head):
                m = regex.fullmatch(path)
                if m:
                    claims.append((name, m.group(1)))
        if claims != ([maker] if maker else []):
            wrong.append(path)
    return wrong


def wildcard_constraints(plan: Any) -> tuple[dict[str, str], list[str]]:
    """The constraint of each wildcard (``exp``, ``product``) and notes for the user.

    :func:`constraints_for` the plan's steps when every file of the plan resolves to the unit
    that makes it, else the alternation of the plan's names.
    """
    constraints = {"exp": GENERIC_NAME, "product": GENERIC_NAME, **constraints_for(plan.steps)}
    made = {path: (u.step, u.key) for u in plan.units for path in u.output_paths}
    named = [path for u in plan.units for path in u.input_paths] + list(plan.targets)
    wrong = ambiguous_files(plan.steps, made, named, constraints)
    if not wrong:
        return constraints, []
    note = (f"output names of different steps overlap (e.g. {wrong[0]}): the Snakefile lists "
            "every exposure and product name in its wildcard constraints, which makes "
            "Snakemake's dry run grow with the square of the number of exposures")
    return {"exp": _alternatives(plan.exposures), "product": _alternatives(plan.products)}, [note]
