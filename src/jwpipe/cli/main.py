"""``jwpipe`` entry point: dispatch to subcommands, imported lazily.

Each subcommand lives in its own module with ``main(argv: list[str]) -> int``. Only the chosen
module is imported, so ``jwpipe run-step --help`` does not pay for numpy or astropy.
User errors (:class:`jwpipe.errors.JwpipeError`) print one line and exit 1; ``--debug`` anywhere
on the command line keeps the traceback.
"""

from __future__ import annotations

import importlib
import sys

#: subcommand -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "strun": ("jwpipe.cli.strun", "run a step or pipeline (stpipe's strun)"),
    "spec": ("jwpipe.cli.spec", "print the parameter spec of a step or pipeline"),
    "list": ("jwpipe.cli.listing", "list the available steps and pipelines"),
    "simulate": ("jwpipe.cli.simulate", "simulate exposures with known truth and references"),
    "refs": ("jwpipe.cli.refs", "show which CRDS references a dataset selects"),
    "asn": ("jwpipe.cli.asn", "create and check association files"),
    "make-workflow": ("jwpipe.cli.workflow", "generate a Snakemake workflow from associations"),
    "run-step": ("jwpipe.cli.run_step", "run one step as a workflow job"),
    "run-chain": ("jwpipe.cli.run_chain", "run one stage of steps as a workflow job"),
    "plan": ("jwpipe.cli.workflow", "show what a workflow would rerun and why"),
    "status": ("jwpipe.cli.workflow", "show the state of a workflow's units"),
    "resume": ("jwpipe.cli.workflow", "resume an interrupted workflow"),
    "figure": ("jwpipe.cli.figure", "draw one picture of a workflow's report"),
    "verify": ("jwpipe.cli.workflow", "check a workflow's products against their fingerprints"),
}


def _usage() -> str:
    width = max(len(k) for k in SUBCOMMANDS)
    lines = ["usage: jwpipe [--version] <command> [args...]", "", "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in SUBCOMMANDS.items()]
    lines += ["", "Run 'jwpipe <command> -h' for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the ``jwpipe`` command; return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    if argv[0] in ("--version", "-V"):
        from jwpipe import __version__

        print(f"jwpipe {__version__}")
        return 0
    command, rest = argv[0], argv[1:]
    if command not in SUBCOMMANDS:
        print(f"jwpipe: unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[command][0])
    debug = "--debug" in rest
    from jwpipe.errors import JwpipeError

    try:
        if hasattr(module, "dispatch"):
            return int(module.dispatch(command, rest) or 0)
        return int(module.main(rest) or 0)
    except JwpipeError as exc:
        if debug:
            raise
        print(f"jwpipe {command}: error: {exc}", file=sys.stderr)
        return 1
    except (OSError, RecursionError, MemoryError) as exc:
        if debug:
            raise
        what = exc.strerror if isinstance(exc, OSError) and exc.strerror else (
            "input nested too deeply" if isinstance(exc, RecursionError) else
            "out of memory" if isinstance(exc, MemoryError) else str(exc))
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"jwpipe {command}: error: {what}{where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"jwpipe {command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
