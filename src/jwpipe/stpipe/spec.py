"""Parameter specs: configobj configspec strings, merged along the class hierarchy, and validation.

A step's ``spec`` is a configobj *configspec*: ``name = check(args, default=...)  # help``.
Each class contributes only the ``spec`` in its own ``__dict__``; specs are merged from the most
basic class down to the leaf so subclasses override. Values are typed with configobj's
:class:`~configobj.validate.Validator` (the same coercion rules and messages stpipe users know),
but the walk over a configuration is ours: every *layer* of configuration (defaults, reference
store parameters, a parameter file, keyword arguments) is checked on its own, so an error names the
file or source it came from, and every unknown key is reported, not only the first.
"""

from __future__ import annotations

import os
import re
import textwrap
from collections.abc import Mapping
from typing import Any

from configobj import ConfigObj
from configobj import validate as _vdt

from jwpipe.errors import ValidationError

__all__ = [
    "FromCommandLine",
    "SpecNode",
    "apply_defaults",
    "check_layer",
    "load_spec",
    "merge_dicts",
    "parse_cli_value",
]


class FromCommandLine(str):
    """A string that came from the command line (paths resolve against the CWD)."""


def _is_datamodel(value: Any) -> bool:
    return hasattr(value, "meta") and hasattr(value, "save")


def _check_output_file(value: Any, *args: Any, **kwargs: Any) -> Any:
    # Unlike stpipe, validation never creates directories: nothing is written unless asked.
    if not isinstance(value, (str, os.PathLike)):
        raise _vdt.VdtTypeError(value)
    return os.fspath(value)


def _check_input_file(value: Any, *args: Any, **kwargs: Any) -> Any:
    if not isinstance(value, (str, os.PathLike)):
        raise _vdt.VdtTypeError(value)
    path = os.path.abspath(os.fspath(value))
    if not os.path.exists(path):
        raise _vdt.ValidateError(f"Path '{path}' does not exist")
    return path


def _check_is_datamodel(value: Any, *args: Any, **kwargs: Any) -> Any:
    if not _is_datamodel(value):
        raise _vdt.VdtTypeError(value)
    return value


def _check_string_or_datamodel(value: Any, *args: Any, **kwargs: Any) -> Any:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, str) or _is_datamodel(value):
        return value
    raise _vdt.VdtTypeError(value)


def _check_list(value: Any, min: Any = None, max: Any = None, **kwargs: Any) -> Any:
    # configobj's list() accepts tuples and lists; hooks may be classes or callables too.
    if isinstance(value, str):
        raise _vdt.VdtTypeError(value)
    if not isinstance(value, (list, tuple)):
        raise _vdt.VdtTypeError(value)
    return list(value)


VALIDATOR = _vdt.Validator(
    {
        "output_file": _check_output_file,
        "input_file": _check_input_file,
        "is_datamodel": _check_is_datamodel,
        "is_string_or_datamodel": _check_string_or_datamodel,
        "list": _check_list,
    }
)


class SpecNode(dict):
    """A parsed spec section: ``name -> check string`` or ``name -> SpecNode``.

    ``comments`` maps parameter names to their help text (the inline comment).
    """

    def __init__(self) -> None:
        super().__init__()
        self.comments: dict[str, str] = {}

    def copy(self) -> SpecNode:  # deep copy: specs are merged and extended per class
        new = SpecNode()
        for key, value in self.items():
            new[key] = value.copy() if isinstance(value, SpecNode) else value
        new.comments = dict(self.comments)
        return new


def _split_comment(value: str) -> tuple[str, str]:
    """Split ``check(...)  # help (with parentheses)``: configobj leaves such comments in."""
    depth, quote = 0, ""
    for i, ch in enumerate(value):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "#" and depth == 0:
            return value[:i].rstrip(), value[i + 1 :].strip()
    return value, ""


def _from_configobj(section: Any) -> SpecNode:
    node = SpecNode()
    for key in section.scalars:
        check, comment = _split_comment(section[key])
        node[key] = check
        if comment:
            node.comments[key] = comment
        comment = (section.inline_comments.get(key) or "").lstrip("#").strip()
        if comment:
            node.comments[key] = comment
    for key in section.sections:
        node[key] = _from_configobj(section[key])
    return node


def parse_spec_string(text: str, owner: str = "spec") -> SpecNode:
    """Parse one configspec string into a :class:`SpecNode`."""
    lines = textwrap.dedent(text).strip().splitlines()
    try:
        cfg = ConfigObj(lines, list_values=False, _inspec=True, raise_errors=True)
    except Exception as exc:  # configobj raises its own ParseError family
        raise ValidationError(f"Invalid spec in {owner}: {exc}") from exc
    return _from_configobj(cfg)


def merge_spec(into: SpecNode, new: SpecNode) -> SpecNode:
    """Merge ``new`` over ``into`` in place (later classes override earlier ones)."""
    for key, value in new.items():
        if isinstance(value, SpecNode) and isinstance(into.get(key), SpecNode):
            merge_spec(into[key], value)
        else:
            into[key] = value.copy() if isinstance(value, SpecNode) else value
    into.comments.update(new.comments)
    return into


def load_spec(cls: type) -> SpecNode:
    """Merged spec of ``cls``: every class's own ``spec`` along the MRO, base first."""
    merged = SpecNode()
    for klass in reversed(cls.__mro__):
        own = klass.__dict__.get("spec")
        if isinstance(own, str) and own.strip():
            merge_spec(merged, parse_spec_string(own, owner=klass.__name__))
    return merged


def _path(prefix: str, key: str) -> str:
    return f"{prefix}/{key}" if prefix else key


def check_layer(
    spec: SpecNode,
    layer: Mapping[str, Any],
    source: str,
    *,
    prefix: str = "",
    lenient: bool = False,
    ignored: list[str] | None = None,
) -> dict[str, Any]:
    """Type-check one configuration layer against ``spec``; return the typed values.

    Parameters
    ----------
    spec : SpecNode
        The full spec (including ``steps`` sections for pipelines).
    layer : Mapping
        The values of one source (a parameter file, keyword arguments, ...). Keys ``class``,
        ``name`` and ``config_file`` are structural and must already be removed.
    source : str
        Where the layer came from, quoted in error messages (e.g. ``parameter file 'x.asdf'``).
    lenient : bool
        Unknown keys are collected into ``ignored`` instead of raising (used for parameter files
        written by STScI's jwst, whose steps have parameters jwpipe does not implement).

    Raises
    ------
    ValidationError
        Listing every unknown key (``Extra value 'bogus' in steps/jump``) and every bad value
        (``Config parameter 'steps/jump/rejection_threshold': the value "abc" is of the wrong
        type.``), with the source.
    """
    errors: list[str] = []
    typed = _check_section(spec, layer, prefix, errors, lenient, ignored)
    if errors:
        raise ValidationError(f"Invalid parameters from {source}: " + "; ".join(errors))
    return typed


def _check_section(
    spec: SpecNode,
    layer: Mapping[str, Any],
    prefix: str,
    errors: list[str],
    lenient: bool,
    ignored: list[str] | None,
) -> dict[str, Any]:
    typed: dict[str, Any] = {}
    for key, value in layer.items():
        key = str(key)
        if key not in spec:
            if lenient:
                if ignored is not None:
                    ignored.append(_path(prefix, key))
                continue
            errors.append(f"Extra value '{key}' in {prefix or 'root'}")
            continue
        check = spec[key]
        if isinstance(check, SpecNode):
            if not isinstance(value, Mapping):
                errors.append(f"Config parameter '{_path(prefix, key)}': expected a section")
                continue
            typed[key] = _check_section(check, value, _path(prefix, key), errors, lenient, ignored)
            continue
        try:
            typed[key] = _plain_str(VALIDATOR.check(check, value))
        except _vdt.ValidateError as exc:
            errors.append(f"Config parameter '{_path(prefix, key)}': {exc}"
                          + _allowed_values(check))
    return typed


def _allowed_values(check: str) -> str:
    """`` (allowed: a, b)`` for an ``option(...)`` check, else empty."""
    if not check.startswith("option("):
        return ""
    inner = check[len("option("):].split("default=", 1)[0]
    values = [a or b for a, b in re.findall(r"'([^']*)'|\"([^\"]*)\"", inner)]
    return f" (allowed: {', '.join(values)})" if values else ""


def _plain_str(value: Any) -> Any:
    """Typed values are plain: command-line string subclasses become ``str``."""
    if isinstance(value, str) and type(value) is not str:
        return str(value)
    if isinstance(value, list):
        return [_plain_str(v) for v in value]
    return value


def apply_defaults(spec: SpecNode, values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Return ``values`` completed with the spec defaults (recursively).

    Raises
    ------
    ValidationError
        A parameter without default and without a value (``... 'x': missing``).
    """
    missing: list[str] = []
    out = _fill(spec, values, prefix, missing)
    if missing:
        raise ValidationError("; ".join(f"Config parameter '{m}': missing" for m in missing))
    return out


def _fill(spec: SpecNode, values: Mapping[str, Any], prefix: str, missing: list[str]) -> dict:
    out: dict[str, Any] = {}
    for key, check in spec.items():
        if isinstance(check, SpecNode):
            sub = values.get(key)
            out[key] = _fill(check, sub if isinstance(sub, Mapping) else {}, _path(prefix, key),
                             missing)
        elif key in values:
            out[key] = values[key]
        else:
            try:
                out[key] = VALIDATOR.get_default_value(check)
            except KeyError:
                missing.append(_path(prefix, key))
    return out


def merge_dicts(into: dict[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """Recursively merge ``new`` over ``into`` in place; only real mappings are merged."""
    for key, value in new.items():
        if isinstance(value, Mapping) and not _is_datamodel(value):
            if not isinstance(into.get(key), dict):
                into[key] = {}
            merge_dicts(into[key], value)
        else:
            into[key] = value
    return into


def parse_cli_value(raw: str) -> Any:
    """Turn a command-line string into a config value the way configobj reads an INI value.

    Quotes are removed; an unquoted comma makes a list (``1,2`` -> ``['1', '2']``, ``7,`` ->
    ``['7']``). Everything stays a string: the spec does the typing.
    """
    if "," in raw or raw[:1] in ("'", '"'):
        try:
            return ConfigObj([f"v = {raw}"], raise_errors=True)["v"]
        except Exception:
            return FromCommandLine(raw)
    return FromCommandLine(raw)


def default_text(check: str) -> str:
    """The bracketed help suffix of a check, e.g. ``[default=4.0]`` (empty for None/'' defaults)."""
    try:
        default = VALIDATOR.get_default_value(check)
    except KeyError:
        return ""
    if default is None or default == "":
        return ""
    inner = check[check.find("(") + 1 : check.rfind(")")] if "(" in check else ""
    return f"[{inner}]" if inner else ""
