"""``jwpipe strun``: run a step or pipeline like stpipe's ``strun``."""

from __future__ import annotations

import sys
import traceback

from jwpipe.errors import JwpipeError


def main(argv: list[str]) -> int:
    """Exit status: 0 success, 1 failure (one-line message), 2 usage error."""
    from jwpipe.stpipe.cmdline import UsageError, _base_parser, step_from_cmdline

    if not argv or argv[0] in ("-h", "--help"):
        _base_parser(add_help=True).print_help()
        return 0 if argv else 2
    debug = "--debug" in argv or "-v" in argv or "--verbose" in argv
    try:
        step_from_cmdline(argv)
    except SystemExit as exc:  # -h of the full parser
        return int(exc.code or 0)
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
    except JwpipeError as exc:
        if debug:
            traceback.print_exc()
        print(f"jwpipe strun: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        if debug:
            traceback.print_exc()
        print(f"jwpipe strun: error: {type(exc).__name__}: {exc} "
              "(run with --debug for the traceback)", file=sys.stderr)
        return 1
    return 0
