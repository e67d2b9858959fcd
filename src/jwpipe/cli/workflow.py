"""``jwpipe make-workflow``, ``plan``, ``status``, ``resume`` and ``verify``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from jwpipe.errors import WorkflowError


def _overrides(extra: list[str]) -> dict[str, Any]:
    """``--steps.<name>.<par>=value`` options into ``{name: {par: value}}``."""
    from jwpipe.stpipe.spec import parse_cli_value

    out: dict[str, dict[str, Any]] = {}
    for item in extra:
        if not item.startswith("--steps.") or "=" not in item:
            raise WorkflowError(f"unrecognized argument {item!r} (step parameters are given as "
                                "--steps.<step>.<parameter>=<value>)")
        dotted, value = item[len("--steps."):].split("=", 1)
        parts = dotted.split(".")
        if len(parts) != 2 or not all(parts):
            raise WorkflowError(f"bad override {item!r}: use --steps.<step>.<parameter>=<value>")
        parsed = parse_cli_value(value)
        out.setdefault(parts[0], {})[parts[1]] = None if parsed in ("None", "none") else \
            (str(parsed) if isinstance(parsed, str) else parsed)
    return out


def _expand_associations(items: list[str]) -> list[str]:
    """Files as given; a directory stands for its ``*_asn.json`` files (else its ``*.json``)."""
    out: list[str] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(path.glob("*_asn.json")) or sorted(path.glob("*.json"))
            if not found:
                raise WorkflowError(f"{item}: directory holds no association (*.json) files")
            out += [str(p) for p in found]
        else:
            out.append(item)
    return out


_EXPOSURE_SUFFIXES = (".fits", ".fits.gz")


def _associations_from_exposures(files: list[str], workdir: str) -> tuple[list[str], str]:
    """Group exposure files into image3 associations written to ``<workdir>/associations``.

    Returns the association paths and the input directory (the files' common directory).
    """
    from jwpipe.associations import write_asn
    from jwpipe.associations.from_exposures import associations_from_exposures

    dirs = {os.path.dirname(os.path.abspath(f)) for f in files}
    if len(dirs) != 1:
        raise WorkflowError("exposure files given on the command line must be in one directory "
                            f"(found {len(dirs)}); write association files for the others")
    missing = [f for f in files if not os.path.isfile(f)]
    if missing:
        raise WorkflowError(f"exposure file(s) not found: {', '.join(missing[:5])}")
    asns, skipped = associations_from_exposures(files)
    for line in skipped:
        print(f"note: {line}", file=sys.stderr)
    where = Path(workdir) / "associations"
    where.mkdir(parents=True, exist_ok=True)
    paths = []
    for asn in asns:
        name = asn["products"][0]["name"]
        paths.append(write_asn(asn, where / f"{name}_image3_asn.json"))
        print(f"association {paths[-1]}: {len(asn['products'][0]['members'])} exposure(s) "
              f"-> {name}", file=sys.stderr)
    return [str(p) for p in paths], dirs.pop()


def _report_refused(refused: list[Any]) -> None:
    """One line per refused association, then counts by reason."""
    if not refused:
        return
    for r in refused:
        print(f"refused: {r.message}", file=sys.stderr)
    reasons = Counter(r.reason for r in refused)
    print(f"{len(refused)} association(s) refused: "
          + ", ".join(f"{n} {reason}" for reason, n in reasons.most_common()), file=sys.stderr)


def make_workflow(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="jwpipe make-workflow",
        description="Turn associations and parameter files into a Snakemake workflow directory.",
        epilog="Step parameters: --steps.<step>.<parameter>=<value> (e.g. "
               "--steps.jump.rejection_threshold=5). Rerunning the command after editing a "
               "parameter file updates only what changed.")
    parser.add_argument("asn", nargs="*",
                        help="association JSON file(s), directories of *_asn.json files, or "
                             "exposure files (_uncal/_rate/_cal .fits, one directory), grouped "
                             "into image3 associations as the imaging rules group them")
    parser.add_argument("-p", "--params", action="append", default=[], metavar="FILE",
                        help="parameter file (ASDF/YAML); repeat for several pipelines")
    parser.add_argument("--input-dir", help="where member files are (default: next to the asn)")
    parser.add_argument("--refs", metavar="DIR",
                        help="CRDS cache to select references from at generation (default: "
                             "$JWPIPE_REFS, else $CRDS_PATH; context: $CRDS_CONTEXT, else the "
                             "cache's operational context)")
    parser.add_argument("-o", "--output", default="workflow", metavar="WORKDIR",
                        help="workflow directory to create or update [workflow]")
    parser.add_argument("--keep", default="all", metavar="STEPS",
                        help="intermediates to keep: 'all', 'none', or step names separated "
                             "by commas; others are temporary [all]")
    parser.add_argument("--granularity", choices=("step", "stage"), default="step",
                        help="one job per step and exposure, or one per stage and exposure "
                             "(all Detector1 steps of an exposure in one process, resuming "
                             "from the last valid intermediate; for very large runs and "
                             "clusters) [step]")
    parser.add_argument("--group-stages", "--group-detector1", dest="group_stages",
                        action="store_true",
                        help="put each exposure's step jobs of a stage into the stage's group "
                             "(a cluster profile's group-components then packs them into one "
                             "cluster job)")
    parser.add_argument("--no-pictures", action="store_true",
                        help="leave out the rules that draw the report's pictures (quick-looks "
                             "add one job per exposure)")
    parser.add_argument("--until", metavar="STAGE_OR_STEP",
                        help="stop after this stage (Detector1Pipeline, detector1, "
                             "calwebb_detector1, ...) or step (jump, or an inserted step); "
                             "its outputs are the targets")
    parser.add_argument("--insert-after", action="append", default=[], metavar="AFTER=CLASS",
                        help="insert a user's Step class after a step or a stage, as a rule of "
                             "its own, e.g. jump=mypkg.ColumnCleanStep (an entry-point name in "
                             "the jwpipe.steps group, or a dotted path allowed by "
                             "JWPIPE_ALLOW_IMPORT); repeatable; see docs/workflow.md")
    parser.add_argument("--strict", action="store_true",
                        help="fail (and write nothing) if any association cannot be planned; "
                             "by default those are reported and the others planned")
    parser.add_argument("--engine", choices=("jwpipe", "jwst"), default="jwpipe",
                        help="step library the jobs run: jwpipe's own steps, or STScI's jwst "
                             "pipelines step by step (pip install 'jwpipe[jwst]') [jwpipe]")
    parser.add_argument("--again", metavar="WORKDIR",
                        help="regenerate WORKDIR with the arguments it was made with")
    ns, extra = parser.parse_known_args(argv)
    overrides = _overrides(extra)
    from jwpipe.workflow.generate import plan_for_workflow, write_workflow

    if ns.again:
        gen = json.loads((Path(ns.again) / "generation.json").read_text())
        ns.asn, ns.params = gen["associations"], gen["param_files"]
        ns.input_dir, ns.refs, ns.output = gen["input_dir"], gen["refs"], ns.again
        overrides = {**gen["overrides"], **overrides}
        keep = gen["keep"]
        group = gen["group_detector1"]
        pictures = gen.get("pictures", True)
        ns.until = ns.until or gen.get("until")
        ns.insert_after = gen.get("insert_after", []) + ns.insert_after
        granularity = gen.get("granularity", "step")
        ns.engine = gen.get("engine", "jwpipe")
    else:
        if not ns.asn:
            parser.error("give at least one association file (or --again WORKDIR)")
        keep = None if ns.keep == "all" else [] if ns.keep == "none" else \
            [s for s in ns.keep.split(",") if s]
        group = ns.group_stages
        pictures = not ns.no_pictures
        granularity = ns.granularity
    from jwpipe.engines import engine_stages

    stages = engine_stages(ns.engine)  # before anything is written: says how to install jwst
    exposures = [a for a in ns.asn if a.lower().endswith(_EXPOSURE_SUFFIXES)]
    if exposures and not ns.again:
        if len(exposures) != len(ns.asn):
            parser.error("give either association files or exposure files, not both")
        ns.asn, ns.input_dir = _associations_from_exposures(exposures, ns.output)
    asns = _expand_associations(ns.asn)
    if stages is not None:  # the engine's chain for these associations (jwst: spec2's)
        stages = engine_stages(ns.engine, asns)
    try:
        plan = plan_for_workflow(asns, param_files=ns.params, overrides=overrides,
                                 input_dir=ns.input_dir, refs=ns.refs, keep_going=True,
                                 insert_after=ns.insert_after, until=ns.until,
                                 stages=stages)
    except WorkflowError as exc:
        if len(getattr(exc, "refused", [])) > 1:
            _report_refused(exc.refused)  # type: ignore[attr-defined]
        raise
    for note in plan.notes:
        print(f"note: {note}", file=sys.stderr)
    _report_refused(plan.refused)
    if ns.strict and plan.refused:
        raise WorkflowError(f"--strict: {len(plan.refused)} of {len(asns)} association(s) "
                            "cannot be planned; nothing written")
    counts = write_workflow(plan, ns.output, asn_paths=asns, param_files=ns.params,
                            overrides=overrides, input_dir=ns.input_dir, refs=ns.refs,
                            keep=keep, group_detector1=group, pictures=pictures,
                            insert_after=ns.insert_after, until=ns.until,
                            granularity=granularity, engine=ns.engine)
    per_step = Counter(u.step for u in plan.units)
    jobs = len(plan.units)
    if granularity == "stage":
        jobs = len({(s["group"], u.key) for s in plan.steps for u in plan.units_of(s["name"])})
    print(f"workflow in {ns.output}: {len(plan.exposures)} exposure(s), "
          f"{len(plan.products)} product(s), {jobs} {granularity} job(s) over "
          f"{len(per_step)} step(s)")
    if ns.until:
        print(f"stops after {ns.until}: its outputs are the targets")
    print(f"unit files: {counts['written']} written, {counts['unchanged']} unchanged, "
          f"{counts['removed']} removed")
    print(f"run it with:  cd {ns.output} && snakemake --profile profiles/local")
    if pictures:
        print("then see the pictures:  snakemake --report report.html")
    print(f"after an interruption (a killed Snakemake too):  jwpipe resume {ns.output}")
    return 0


def status(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="jwpipe status",
                                     description="Table of units x steps: done, pending, "
                                                 "failed, stale.")
    parser.add_argument("workdir", nargs="?", default=".")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--no-snakemake", action="store_true",
                        help="do not ask Snakemake what it would rerun (faster)")
    ns = parser.parse_args(argv)
    states = _states(ns.workdir, not ns.no_snakemake)
    if ns.json:
        print(json.dumps([s.__dict__ for s in states], indent=1))
        return 0
    steps = list(dict.fromkeys(s.step for s in states))
    keys = list(dict.fromkeys(s.key for s in states))
    table = {(s.key, s.step): s.status for s in states}
    width = max([len(k) for k in keys] + [4])
    cols = [max(len(st), 7) for st in steps]
    print(f"{'unit':<{width}}  " + "  ".join(f"{st:<{c}}" for st, c in zip(steps, cols,
                                                                            strict=True)))
    for key in keys:
        row = [table.get((key, st), "") for st in steps]
        print(f"{key:<{width}}  " + "  ".join(f"{v:<{c}}" for v, c in zip(row, cols,
                                                                         strict=True)))
    totals = Counter(s.status for s in states)
    print("\n" + ", ".join(f"{n} {k}" for k, n in sorted(totals.items())))
    for s in states:
        if s.status in ("failed", "damaged"):
            detail = s.reasons[0] if s.reasons else ""
            if s.status == "failed" and detail.startswith("killed by signal"):
                head, _, detail = detail.partition(": ")
                print(f"{s.step} {s.key}: failed ({head}): {detail}")
            else:
                print(f"{s.step} {s.key}: {s.status}: {detail}")
    return 0


def plan(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="jwpipe plan",
                                     description="Show what a run would (re)do and why.")
    parser.add_argument("workdir", nargs="?", default=".")
    parser.add_argument("--no-snakemake", action="store_true",
                        help="do not ask Snakemake what it would rerun (faster)")
    ns = parser.parse_args(argv)
    states = _states(ns.workdir, not ns.no_snakemake)
    todo = [s for s in states if s.status != "done"]
    if not todo:
        print("nothing to do: every unit is up to date")
        return 0
    for s in todo:
        print(f"{s.step} {s.key}: {s.status}")
        for reason in s.reasons:
            print(f"    {reason}")
    runs = [s for s in todo if any(r.startswith("snakemake: ") for r in s.reasons)]
    if ns.no_snakemake:
        print(f"\n{len(todo)} unit(s) not up to date")
    else:
        other = len(todo) - len(runs)
        plan_data = json.loads((Path(ns.workdir) / "plan.json").read_text())
        jobs, kind = len(runs), "step"
        if plan_data.get("granularity") == "stage":
            group = {st["name"]: st["group"] for st in plan_data["steps"]}
            jobs, kind = len({(group[s.step], s.key) for s in runs}), "stage"
        print(f"\nsnakemake would run {jobs} {kind} job(s) (and redraw the report's "
              "pictures that show them)" +
              (f"; {other} other unit(s) need attention (see above)" if other else ""))
    return 0


def _states(workdir: str, ask: bool) -> list:
    """jwpipe's unit states, with Snakemake's verdict merged in unless ``ask`` is False."""
    from jwpipe.workflow.status import read_states

    states = read_states(workdir)
    if ask:
        from jwpipe.workflow.snakemake_query import ask_snakemake, merge_into_states

        plan_data = json.loads((Path(workdir) / "plan.json").read_text())
        view = ask_snakemake(workdir, plan_data)
        if view.error:
            print(f"(could not ask snakemake: {view.error})", file=sys.stderr)
        merge_into_states(states, view)
    return states


def resume(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="jwpipe resume",
        description="Resume an interrupted workflow: cancel orphaned cluster jobs, unlock, and "
                    "rerun incomplete and remaining jobs. Extra arguments go to snakemake "
                    "(default: --profile profiles/local).")
    parser.add_argument("workdir", nargs="?", default=".")
    parser.add_argument("-n", "--dry-run", action="store_true")
    parser.add_argument("--trust-content", action="store_true",
                        help="for a copied or restored directory: give products whose content "
                             "matches what run-step recorded their recorded times, so Snakemake "
                             "does not redo them")
    ns, extra = parser.parse_known_args(argv)
    from jwpipe.workflow.resume import resume as _resume

    if ns.trust_content:
        from jwpipe.workflow.integrity import restore_times

        restored, skipped = restore_times(ns.workdir)
        print(f"trusted the content of {restored} unit(s)", file=sys.stderr)
        for why in skipped:
            print(f"  not trusted: {why}", file=sys.stderr)

    return _resume(ns.workdir, extra, dry_run=ns.dry_run)


def verify(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="jwpipe verify",
        description="Hash every product and compare with the fingerprint run-step recorded; "
                    "list damaged products with the command that rebuilds each. Exit status 1 "
                    "when any product is damaged.")
    parser.add_argument("workdir", nargs="?", default=".")
    ns = parser.parse_args(argv)
    from jwpipe.workflow.integrity import damaged_products

    damage = damaged_products(ns.workdir, full=True)
    for d in damage:
        print(f"{d.path}: {d.reason} (made by {d.step} {d.key}); rebuild: {d.command}")
    if damage:
        print(f"\n{len(damage)} damaged product(s)")
        return 1
    print("every recorded product matches its fingerprint")
    return 0


def dispatch(command: str, argv: list[str]) -> int:
    handlers = {"make-workflow": make_workflow, "status": status, "plan": plan,
                "resume": resume, "verify": verify}
    try:
        return handlers[command](argv)
    except OSError as exc:
        raise WorkflowError(str(exc)) from None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(make_workflow(sys.argv[1:]))
