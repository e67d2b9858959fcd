"""``strun``-style command line: build a step from a class, alias or parameter file and run it.

``jwpipe strun <class | alias | parameter file> <input...> [--par=value]
[--steps.<name>.<par>=value] [--save-parameters FILE] [--disable-ref-steppars] [--refs DIR]
[-v | --verbose] [--debug] [--log-level L] [--allow-import PREFIX]``
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from jwpipe.errors import ValidationError
from jwpipe.stpipe import registry
from jwpipe.stpipe import spec as _spec
from jwpipe.stpipe.config_file import load_parameter_file
from jwpipe.stpipe.step import Step

__all__ = ["build_parser", "step_from_cmdline"]


class UsageError(Exception):
    """A command-line usage error (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: error: {message}")


def _base_parser(add_help: bool) -> argparse.ArgumentParser:
    parser = _Parser(prog="jwpipe strun", add_help=add_help, allow_abbrev=False,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("identifier", metavar="STEP",
                        help="step or pipeline: alias, class name, or parameter file")
    parser.add_argument("inputs", nargs="*", metavar="INPUT", help="input file(s)")
    parser.add_argument("--save-parameters", metavar="FILE",
                        help="write the fully resolved parameters as ASDF before running")
    parser.add_argument("--disable-ref-steppars", "--disable-crds-steppars", action="store_true",
                        help="do not use CRDS parameter references (pars-*)")
    parser.add_argument("--refs", metavar="DIR",
                        help="CRDS cache to select references from (default: $JWPIPE_REFS, "
                             "else $CRDS_PATH)")
    parser.add_argument("--allow-import", action="append", default=[], metavar="PREFIX",
                        help="allow parameter files to name classes under this module prefix")
    parser.add_argument("-v", "--verbose", action="store_true", help="DEBUG logging")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--log-level", metavar="LEVEL", help="logging level (INFO, DEBUG...)")
    return parser


def _add_spec_options(parser: argparse.ArgumentParser, spec: _spec.SpecNode, prefix: str = ""
                      ) -> None:
    for key, check in spec.items():
        dotted = f"{prefix}{key}"
        if isinstance(check, _spec.SpecNode):
            _add_spec_options(parser, check, f"{dotted}.")
            continue
        text = spec.comments.get(key, "")
        default = _spec.default_text(check)
        parser.add_argument(f"--{dotted}", dest=f"par:{dotted}", metavar="",
                            help=" ".join(p for p in (text, default) if p) or None)


def build_parser(step_class: type[Step]) -> argparse.ArgumentParser:
    """The full parser for a step class: built-in options plus one option per parameter."""
    parser = _base_parser(add_help=True)
    parser.description = (step_class.__doc__ or "").strip()
    _add_spec_options(parser, step_class.load_spec_file())
    for name in getattr(step_class, "step_defs", {}):
        for extra in ("config_file",):
            parser.add_argument(f"--steps.{name}.{extra}", dest=f"par:steps.{name}.{extra}",
                                metavar="", help=f"parameter file for step {name}")
    return parser


def _nested(options: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for dotted, raw in options.items():
        node = out
        parts = dotted.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        value = _spec.parse_cli_value(raw)
        node[parts[-1]] = None if value in ("None", "none") else value
    return out


def _resolve(identifier: str) -> tuple[type[Step], str | None]:
    if os.path.isfile(identifier):
        path = os.path.abspath(identifier)
        cfg = load_parameter_file(path)
        if not cfg.class_name:
            raise ValidationError(f"Parameter file '{path}' has no 'class': cannot tell which "
                                  "step to run")
        cls = registry.resolve_step_class(cfg.class_name, what=f"class in parameter file '{path}'")
        return cls, path
    if identifier.endswith((".asdf", ".cfg", ".yaml", ".yml")):
        raise ValidationError(f"Parameter file '{identifier}' not found")
    return registry.resolve_step_class(identifier, what="step"), None


def configure_logging(verbose: bool, level: str | None) -> None:
    """Console logging for command-line runs."""
    name = "DEBUG" if verbose else (level or "INFO").upper()
    if name not in logging.getLevelNamesMapping():
        raise ValidationError(f"unknown log level {level!r}")
    logger = logging.getLogger("jwpipe")
    logger.setLevel(name)
    if not any(getattr(h, "_jwpipe_cli", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - "
                                               "%(message)s"))
        handler._jwpipe_cli = True  # type: ignore[attr-defined]
        logger.addHandler(handler)


def step_from_cmdline(args: list[str]) -> Step:
    """Parse ``args`` (without the program name), build the step, run it, return it.

    Raises
    ------
    UsageError
        Bad command-line syntax (the caller exits with status 2).
    JwpipeError
        Bad configuration or input (exit status 1).
    """
    first, _ = _base_parser(add_help=False).parse_known_args(args)
    for prefix in first.allow_import:
        registry.allow_class_paths(prefix)
    step_class, config_file = _resolve(first.identifier)
    if config_file is not None and ("-h" in args or "--help" in args):
        step_class.build_config(None, config_file=config_file)  # help for a file that loads
    parser = build_parser(step_class)
    ns = parser.parse_args(args)
    configure_logging(ns.verbose, ns.log_level)
    if ns.refs:
        from jwpipe.stpipe.refstore import set_store

        set_store(ns.refs)
    options = {k[4:]: v for k, v in vars(ns).items() if k.startswith("par:") and v is not None}
    kwargs = _nested(options)
    if ns.inputs and "save_results" not in kwargs:
        kwargs["save_results"] = True  # strun saves by default, unless told not to (jwst#2824)
    for path in ns.inputs:
        if not os.path.exists(path):
            raise ValidationError(f"Input file '{path}' does not exist")
    config, cfg_path = step_class.build_config(
        ns.inputs[0] if ns.inputs else None, config_file=config_file,
        disable_ref_steppars=True if ns.disable_ref_steppars else None, **kwargs)
    name = config.pop("name", None) or step_class.__name__
    step = step_class.from_config_section(config, name=name, config_file=cfg_path)
    if ns.inputs:
        step.set_primary_input(ns.inputs[0])
    if ns.save_parameters:
        step.export_config(ns.save_parameters, include_metadata=True)
    if ns.inputs:
        step.run(*ns.inputs)
    return step
