"""Pre- and post-hooks: Step classes, Step instances, Python callables, or (opt-in) shell commands.

Hook strings from a parameter file may name a known Step (alias, class name, dotted path; see
:mod:`jwpipe.stpipe.registry`), optionally with literal keyword arguments
(``jwpipe.steps.SaturationStep(n_pix_grow_sat=0)``), or a function under a module prefix the user
allowed. A string that is none of these would be a shell command: that is refused unless the user
calls :func:`allow_shell_hooks` from Python, so a parameter file can never run a command.
Hooks are resolved when the step runs, so assigning ``step.pre_hooks`` after construction works.
"""

from __future__ import annotations

import ast
import importlib
import shlex
import subprocess
from typing import TYPE_CHECKING, Any

from jwpipe.errors import ValidationError
from jwpipe.stpipe import registry

if TYPE_CHECKING:
    from jwpipe.stpipe.step import Step

__all__ = ["allow_shell_hooks", "resolve_hooks"]

_SHELL = {"allowed": False}


def allow_shell_hooks(allowed: bool = True) -> None:
    """Allow (or forbid again) hook strings that run shell commands. Python only, by design."""
    _SHELL["allowed"] = bool(allowed)


def _parse_call(text: str) -> tuple[str, dict[str, Any]] | None:
    """Split ``pkg.Class(k=1, s='x')`` into the name and literal keyword arguments."""
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        return None
    if not isinstance(node, ast.Call) or node.args:
        return None
    try:
        name = ast.unparse(node.func)
        kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords if kw.arg}
    except ValueError:
        return None
    return name, kwargs


def _allowed_function(name: str) -> Any | None:
    if "." not in name:
        return None
    module, _, attr = name.rpartition(".")
    if not any(name.startswith(p + ".") for p in registry._allowed_prefixes()):
        return None
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        return None


def _make_hook(owner: Step, spec: Any, label: str) -> Step:
    from jwpipe.stpipe.step import FunctionHook, Step, SystemCall

    if isinstance(spec, Step):
        return spec
    if isinstance(spec, type) and issubclass(spec, Step):
        return spec(name=spec.class_alias or label, parent=owner)
    if callable(spec):
        return FunctionHook(name=getattr(spec, "__name__", label), parent=owner, function=spec)
    if not isinstance(spec, str):
        raise ValidationError(f"{owner.qualified_name}: hook {spec!r} is not a Step or callable")
    call = _parse_call(spec)
    if call is not None:
        cls = registry.resolve_step_class(call[0], what=f"hook of {owner.qualified_name}")
        return cls(name=cls.class_alias or label, parent=owner, **call[1])
    text = spec.strip()
    looks_like_name = text.replace(".", "").replace("_", "").isalnum()
    if looks_like_name:
        func = _allowed_function(text)
        if func is not None and not isinstance(func, type):
            return FunctionHook(name=func.__name__, parent=owner, function=func)
        cls = registry.resolve_step_class(text, what=f"hook of {owner.qualified_name}")
        return cls(name=cls.class_alias or label, parent=owner)
    if not _SHELL["allowed"]:
        raise ValidationError(
            f"{owner.qualified_name}: hook {text!r} would run a shell command; shell hooks are "
            "disabled (enable them from Python with jwpipe.stpipe.allow_shell_hooks())"
        )
    return SystemCall(name=label, parent=owner, command=text)


def resolve_hooks(owner: Step, hooks: list[Any], kind: str) -> list[Step]:
    """Turn a ``pre_hooks``/``post_hooks`` list into Step instances."""
    return [_make_hook(owner, h, f"{kind}_hook{i}") for i, h in enumerate(hooks or [])]


def run_shell(command: str, inputs: list[str]) -> str:
    """Run an allowed shell hook; ``{0}``, ``{1}``... are replaced by quoted input paths."""
    cmd = command.format(*[shlex.quote(p) for p in inputs])
    proc = subprocess.run(cmd, shell=True, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise OSError(f"hook command {cmd!r} failed with exit code {proc.returncode}: "
                      f"{proc.stderr.strip()}")
    return proc.stdout
