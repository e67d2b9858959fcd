"""``jwpipe`` entry point: dispatch to subcommands, imported lazily.

Each subcommand lives in its own module with ``main(argv: list[str]) -> int``. Only the chosen
module is imported, so ``jwpipe run-step --help`` does not pay for numpy or astropy.
User errors (:class:`jwpipe.errors.JwpipeError`) print one line and exit 1; ``--debug`` anywhere
on the command line keeps the traceback.

A workflow job (``run-step``, ``run-chain``) started as a process ends without the interpreter's
teardown: once the command has returned (its outputs and record written and closed), the exit
handlers run (logging, temporary directories, worker threads), the standard streams are flushed
and the process exits. Clearing every module of numpy and astropy one by one costs ~0.05 s,
a sixth of a job that does no real work, and changes nothing on disk.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import NoReturn

#: Commands run as workflow jobs: they end without interpreter teardown (see above).
JOB_COMMANDS = frozenset({"run-step", "run-chain"})

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
    """Run the ``jwpipe`` command; return the exit status.

    Without ``argv`` (the process's own command line) a job command does not return: the
    process exits with its status (see the module docstring).
    """
    if argv is None and sys.argv[1:2] and sys.argv[1] in JOB_COMMANDS:
        _exit_process(_main(sys.argv[1:]))
    return _main(list(sys.argv[1:] if argv is None else argv))


def _exit_process(status: int) -> NoReturn:
    """End this process with ``status`` after the exit handlers, skipping module teardown."""
    import atexit

    atexit._run_exitfuncs()  # logging.shutdown, weakref finalizers, thread pools
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or broken pipe: nothing more can be said
            pass
    os._exit(status)


def _main(argv: list[str]) -> int:
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
