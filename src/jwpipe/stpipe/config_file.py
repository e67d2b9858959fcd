"""Parameter files: read ASDF (current and legacy layouts), YAML and legacy ``.cfg``; write ASDF.

The current ASDF layout (what ``strun --save-parameters`` writes)::

    class: jwpipe.pipeline.Detector1Pipeline   # or a jwst class name, or an alias
    name: Detector1Pipeline                    # optional at every level (stpipe requires it)
    parameters: {save_calibrated_ramp: false, ...}
    steps:
    - class: jwpipe.steps.JumpStep
      name: jump
      parameters: {rejection_threshold: 5.0}
    meta: {...}                                # optional, ignored on read

A workflow may insert a user's step into the chain: an entry (or a step-level file) with
``insert_after: <step or stage>`` (read by ``jwpipe make-workflow``; a pipeline ignores such
entries, they are not its substeps; see docs/workflow.md)::

    steps:
    - class: mypkg.ColumnCleanStep
      name: column_clean
      insert_after: jump
      parameters: {sigma: 3.0}

Legacy ASDF keeps everything under ``parameters`` with ``steps`` as a mapping; ``.cfg`` files are
configobj INI with ``[steps]`` / ``[[name]]`` sections. A step entry may name another parameter file
with ``config_file`` (relative to the file that names it).
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jwpipe.atomic import atomic_path
from jwpipe.errors import ValidationError

__all__ = ["StepConfig", "load_parameter_file", "write_parameter_file"]


@dataclass
class StepConfig:
    """One step's configuration as read from a file.

    Attributes
    ----------
    class_name : str or None
        The ``class`` value as written (alias, jwpipe or jwst dotted name).
    name : str or None
        The ``name`` value, if any.
    parameters : dict
        Parameter values (untyped; the spec types them).
    steps : list of StepConfig
        Sub-step entries, in file order.
    config_file : str or None
        Absolute path of a parameter file this entry refers to (loaded beneath it).
    source : str
        The file this entry was read from.
    insert_after : str or None
        For workflows: the step or stage after which this (user's) step is inserted.
    """

    class_name: str | None = None
    name: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    steps: list[StepConfig] = field(default_factory=list)
    config_file: str | None = None
    source: str = "<memory>"
    insert_after: str | None = None

    def to_tree(self) -> dict[str, Any]:
        """The ASDF tree of this configuration (current layout)."""
        tree: dict[str, Any] = {}
        if self.class_name:
            tree["class"] = self.class_name
        if self.name:
            tree["name"] = self.name
        if self.insert_after:
            tree["insert_after"] = self.insert_after
        tree["parameters"] = dict(self.parameters)
        if self.steps:
            tree["steps"] = [s.to_tree() for s in self.steps]
        return tree


def _plain(value: Any) -> Any:
    """Convert an ASDF/YAML tree into plain dicts, lists and scalars."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return value.tolist()
    return value


def _bounded(tree: Any, path: Path) -> Any:
    """Refuse trees that nest too deep or expand (YAML aliases) beyond the parsing limits."""
    from jwpipe.parsing_limits import LimitError, check_tree

    try:
        check_tree(tree)
    except LimitError as exc:
        raise ValidationError(f"Parameter file '{path}' refused: {exc}") from None
    return tree


def _read_tree(path: Path) -> tuple[dict[str, Any], str]:
    """Read the file into a plain tree; return (tree, format)."""
    from jwpipe.parsing_limits import LimitError, read_limited

    try:
        raw = read_limited(path)
    except LimitError as exc:
        raise ValidationError(f"Parameter file '{path}' refused: {exc}") from None
    if raw[:5] == b"#ASDF":
        import asdf

        try:
            with asdf.open(path, lazy_load=False, memmap=False) as af:
                tree = _plain(_bounded(af.tree, path))
        except ValidationError:
            raise
        except RecursionError:
            raise ValidationError(f"Parameter file '{path}' refused: nesting too deep") from None
        except Exception as exc:
            raise ValidationError(
                f"Parameter file '{path}' is not a readable ASDF file: {exc}") from None
        tree.pop("asdf_library", None)
        tree.pop("history", None)
        return tree, "asdf"
    text = raw.decode("utf-8", errors="replace")
    if path.suffix.lower() in (".cfg", ".ini"):
        return _read_cfg(path), "cfg"
    import yaml

    try:
        tree = yaml.safe_load(text)
    except RecursionError:
        raise ValidationError(f"Parameter file '{path}' refused: nesting too deep") from None
    except yaml.YAMLError as exc:
        if path.suffix.lower() in (".yaml", ".yml", ".asdf"):
            raise ValidationError(f"Parameter file '{path}' is not valid YAML: {exc}") from None
        tree = None
    if isinstance(tree, dict):
        return _plain(_bounded(tree, path)), "yaml"
    try:
        return _read_cfg(path), "cfg"
    except ValidationError:
        raise ValidationError(
            f"Parameter file '{path}' is neither ASDF, YAML nor a configobj .cfg file"
        ) from None


def _read_cfg(path: Path) -> dict[str, Any]:
    from configobj import ConfigObj

    try:
        cfg = ConfigObj(str(path), raise_errors=True, file_error=True)
    except Exception as exc:
        raise ValidationError(f"Parameter file '{path}' is not a valid .cfg file: {exc}") from None
    tree = cfg.dict()
    params = {k: v for k, v in tree.items() if k not in ("class", "name", "steps")}
    out: dict[str, Any] = {"parameters": params}
    for key in ("class", "name"):
        if key in tree:
            out[key] = tree[key]
    steps = tree.get("steps")
    if steps is not None:
        if not isinstance(steps, dict):
            raise ValidationError(f"Parameter file '{path}': 'steps' must be a section")
        out["steps"] = [
            {
                "name": name,
                **({"class": sec["class"]} if isinstance(sec, dict) and "class" in sec else {}),
                "parameters": {k: v for k, v in (sec or {}).items() if k not in ("class", "name")},
            }
            for name, sec in steps.items()
        ]
    return out


def _entry(tree: Any, path: Path, where: str) -> StepConfig:
    if not isinstance(tree, Mapping):
        raise ValidationError(f"Parameter file '{path}': {where} must be a mapping")
    tree = dict(tree)
    legacy = "parameters" in tree and isinstance(tree["parameters"], Mapping) and (
        "class" in tree["parameters"] and "class" not in tree
    )
    if legacy:  # legacy layout: class/name/steps live inside 'parameters'
        inner = dict(tree["parameters"])
        tree = {"class": inner.pop("class"), "name": inner.pop("name", None)}
        steps = inner.pop("steps", None)
        tree["parameters"] = inner
        if isinstance(steps, Mapping):
            tree["steps"] = [
                {"name": k, "parameters": dict(v or {})} for k, v in steps.items()
            ]
    unknown = set(tree) - {"class", "name", "parameters", "steps", "meta", "insert_after"}
    if unknown:
        raise ValidationError(
            f"Parameter file '{path}': unexpected key(s) {sorted(unknown)} in {where} "
            "(expected class, name, parameters, steps, meta, insert_after)"
        )
    insert_after = tree.get("insert_after")
    if insert_after is not None and not (isinstance(insert_after, str) and insert_after):
        raise ValidationError(f"Parameter file '{path}': 'insert_after' in {where} must be a "
                              "step or stage name")
    cls_name = tree.get("class")
    if cls_name is not None and not isinstance(cls_name, str):
        raise ValidationError(f"Parameter file '{path}': 'class' in {where} must be a string")
    name = tree.get("name")
    if name is not None and not isinstance(name, str):
        raise ValidationError(f"Parameter file '{path}': 'name' in {where} must be a string")
    params = tree.get("parameters", {})
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise ValidationError(f"Parameter file '{path}': 'parameters' in {where} must be a mapping")
    params = dict(params)
    config_file = params.pop("config_file", None)
    if config_file is not None:
        config_file = str((path.parent / str(config_file)).resolve())
    steps_tree = tree.get("steps") or []
    if isinstance(steps_tree, Mapping):  # tolerate {name: {...}} mappings
        steps_tree = [{"name": k, **dict(v or {})} for k, v in steps_tree.items()]
    if not isinstance(steps_tree, list):
        raise ValidationError(f"Parameter file '{path}': 'steps' in {where} must be a list")
    steps = [
        _entry(item, path, f"{where}.steps[{i}]" if where.startswith("steps") else f"steps[{i}]")
        for i, item in enumerate(steps_tree)
    ]
    return StepConfig(cls_name, name, params, steps, config_file, str(path), insert_after)


def load_parameter_file(path: str | os.PathLike[str]) -> StepConfig:
    """Read a parameter file (ASDF, YAML or ``.cfg``) into a :class:`StepConfig`.

    Raises
    ------
    ValidationError
        The file does not exist, cannot be parsed, or does not have the expected structure.
    """
    p = Path(os.fspath(path)).expanduser()
    if not p.is_file():
        raise ValidationError(f"Parameter file '{path}' not found")
    tree, _fmt = _read_tree(p.resolve())
    return _entry(tree, p.resolve(), "the top level")


def write_parameter_file(
    config: StepConfig,
    path: str | os.PathLike[str],
    *,
    include_metadata: bool = False,
) -> str:
    """Write ``config`` as an ASDF parameter file (current layout), atomically.

    With ``include_metadata`` a ``meta`` block like stpipe's is added (fields a CRDS delivery needs,
    ``<SPECIFY>`` where unknown).
    """
    import asdf

    tree = config.to_tree()
    if include_metadata:
        now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
        tree["meta"] = {
            "author": "<SPECIFY>",
            "date": now,
            "description": f"Parameters for calibration step {config.class_name}",
            "instrument": {"name": "<SPECIFY>"},
            "origin": "<SPECIFY>",
            "pedigree": "<SPECIFY>",
            "reftype": "<SPECIFY>",
            "telescope": "<SPECIFY>",
            "useafter": "<SPECIFY>",
        }
    target = Path(os.fspath(path)).expanduser()
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        asdf.AsdfFile(_plain(tree)).write_to(tmp)
    return str(target)
