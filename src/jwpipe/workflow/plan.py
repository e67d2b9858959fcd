"""Plan a workflow: associations + parameters -> units of work with file names and parameters.

A *unit* is one step applied to one exposure (``exposure`` scope) or to one association product
(``product`` scope). The planner walks each association member back along the chain of stages
(Image3 <- Image2 <- Detector1) to the first product that exists in the input directory
(``_cal``, ``_rate`` or ``_uncal``), so one image3 association drives the whole run from raw
ramps to the mosaic. Every unit carries its fully resolved parameters (the framework's whole
precedence applied) and the reference files CRDS selected for it, with the context.

The planner knows steps only through their declared metadata (``Step.workflow_*``,
``Pipeline.step_defs``/``step_names``/``workflow_*``); it never runs step code.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jwpipe.errors import WorkflowError
from jwpipe.stpipe import spec as _spec
from jwpipe.stpipe.config_file import load_parameter_file
from jwpipe.stpipe.pipeline import Pipeline
from jwpipe.stpipe.step import Step
from jwpipe.workflow.runstep import UNIT_FORMAT  # the format of every unit file

__all__ = ["Plan", "Refusal", "Unit", "check_name", "file_spec", "plan_workflow",
           "stage_for_association"]

#: Parameters that only say where/whether to write files: a workflow job ignores them (it writes
#: exactly its declared outputs), so changing them must not rerun anything.
OUTPUT_ONLY_PARAMETERS = frozenset({
    "output_file", "output_dir", "output_ext", "output_use_model", "output_use_index",
    "save_results", "search_output_file", "input_dir", "suffix", "skip",
})
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
#: Longest member or product name: derived files add a step suffix (``_outlier_detection``),
#: an extension and temporary-file decorations, and must stay under NAME_MAX (255 bytes).
MAX_NAME_LENGTH = 160


def check_name(name: str, what: str) -> str:
    """Refuse names that could escape a directory or inject code into a Snakefile or shell,
    and names too long for the files derived from them."""
    if len(name) > MAX_NAME_LENGTH:
        raise WorkflowError(f"{what} {name[:40]}... is {len(name)} characters long; the limit "
                            f"is {MAX_NAME_LENGTH} (file names derived from it must fit in 255 "
                            "bytes)")
    if not _SAFE_NAME.match(name) or ".." in name:
        raise WorkflowError(
            f"{what} {name!r} is not a safe file name (allowed: letters, digits, '.', '_', '-'; "
            "no directory parts)")
    return name


def file_spec(path: str, kind: str = "file", names: Sequence[str] = ()) -> dict[str, Any]:
    """One input or output of a unit: its path and kind.

    ``kind`` is ``"file"`` (one model), ``"table"`` (an ECSV table) or ``"members"`` (a
    directory holding one file per association member, named ``names`` in member order).
    """
    spec: dict[str, Any] = {"path": path, "kind": kind}
    if kind == "members":
        spec["names"] = list(names)
    return spec


@dataclass
class Unit:
    """One job: a step applied to an exposure or a product."""

    step: str
    key: str
    step_class: str
    scope: str
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    parameters: dict[str, Any]
    references: dict[str, Any]
    mem_mb: int
    runtime: int
    members: list[str] = field(default_factory=list)
    stage_product: bool = False
    #: How the step is called: ``each`` input on its own, all ``members`` as one container, or
    #: the ``single`` combined input.
    call: str = "each"
    #: Further unit-file keys an engine adds (the jwst engine: ``engine``, ``jwst``).
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def input_paths(self) -> list[str]:
        return [spec["path"] for spec in self.inputs]

    @property
    def output_paths(self) -> list[str]:
        return [spec["path"] for spec in self.outputs]

    @property
    def record_path(self) -> str:
        """Where run-step records what the outputs were made with (an output of the rule)."""
        return f"state/{self.step}/{self.key}.json"

    def record(self, context: str | None) -> dict[str, Any]:
        """The unit file: everything one job needs, and nothing it has to work out again.

        Paths are absolute, or relative to the workflow directory (``products/...``).
        """
        return {
            "format": UNIT_FORMAT,
            "step": self.step,
            "class": self.step_class,
            "key": self.key,
            "scope": self.scope,
            "call": self.call,
            "members": self.members,
            "parameters": self.parameters,
            "references": {
                "context": context if any(r["selected_by"] == "crds"
                                          for r in self.references.values()) else None,
                "files": {t: r["path"] for t, r in self.references.items()},
                "selected_by": {t: r["selected_by"] for t, r in self.references.items()},
                "checks": {t: {"size": r["size"], "mtime_ns": r["mtime_ns"]}
                           for t, r in self.references.items() if "size" in r},
            },
            "inputs": self.inputs,
            "outputs": self.outputs,
            "record": self.record_path,
            **self.extra,
        }


@dataclass(frozen=True)
class Refusal:
    """An association that was not planned: its file, a short reason and the full message."""

    asn: str
    reason: str
    message: str


@dataclass
class Plan:
    """Everything the Snakefile and the unit files are written from."""

    steps: list[dict[str, Any]]
    units: list[Unit]
    targets: list[str]
    exposures: list[str]
    products: list[str]
    context: str | None
    notes: list[str] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    #: Other files the workflow directory keeps (relative path -> bytes).
    files: dict[str, bytes] = field(default_factory=dict)

    def units_of(self, step: str) -> list[Unit]:
        return [u for u in self.units if u.step == step]


@dataclass
class _Exposure:
    root: str
    start_stage: int
    start_file: str
    params: dict[str, Any]
    nbytes: int


def _default_stages() -> list[type[Pipeline]]:
    from jwpipe.pipeline import Detector1Pipeline, Image2Pipeline, Image3Pipeline

    return [Detector1Pipeline, Image2Pipeline, Image3Pipeline]


def stage_for_association(asn: Any, stages: Sequence[type[Pipeline]]) -> int:
    """Stage dispatch: the last stage an association asks for, from its ``asn_type``.

    Level-2 imaging types end at the last exposure-scope stage (Image2), level-3 imaging types
    (``image3``, ``mosaic``) at the product stage (Image3); a type whose jwst pipeline is
    one of the stages (the jwst engine's Spec2 for ``spec2``) at that stage. Every other type
    is refused
    (:func:`jwpipe.associations.types.dispatch`): nothing is planned as something it is not.
    """
    from jwpipe.associations.types import UnsupportedAssociationError, dispatch

    aliases = [getattr(s, "class_alias", None) or "" for s in stages]
    engine = "jwst" if any(hasattr(s, "jwst_class") for s in stages) else "jwpipe"
    kind = dispatch(asn.asn_type, asn.source, aliases, engine)
    if kind.jwst_pipeline in aliases:  # the stage the type is for (jwst's Spec2...)
        index = aliases.index(kind.jwst_pipeline)
        only = getattr(stages[index], "workflow_asn_types", None)
        if only and kind.asn_type not in only:  # Spec2 on _rate (spec2) or _rateints (tso)
            raise UnsupportedAssociationError(
                f"{asn.source}: association type '{kind.asn_type}'; this workflow's "
                f"{kind.jwst_pipeline} is planned for {', '.join(only)} associations: make "
                "one workflow per association type", f"type {kind.asn_type}")
        return index
    if "calwebb_spec2" in aliases:
        raise UnsupportedAssociationError(
            f"{asn.source}: association type '{kind.asn_type}' is for {kind.jwst_pipeline}; "
            f"this workflow's stages ({', '.join(aliases)}) are for spectroscopy: one workflow "
            "holds imaging or spectroscopic associations, so make one for each",
            f"type {kind.asn_type}")
    scopes = [s.workflow_stage_scope for s in stages]
    if kind.level == 3 and "product" in scopes:
        return scopes.index("product")
    # level 2, or stages chosen from Python without a product stage: the exposure stages only
    return max(i for i, scope in enumerate(scopes) if scope == "exposure")


def _read_exposure(path: str, keywords: frozenset[str]) -> tuple[dict[str, Any], int]:
    """Selection parameters (the given primary keywords) and the in-memory float32 size of the
    SCI array, from one read of the headers."""
    from jwpipe.workflow.fits_headers import read_selection

    return read_selection(path, keywords)


def _selection_keywords() -> frozenset[str]:
    """Keywords reference selection reads: those ``model.get_crds_parameters()`` returns, so a
    workflow selects exactly what an in-process run selects."""
    from jwpipe.datamodels.keywords import CRDS_KEYWORDS

    return frozenset(k.upper() for k in CRDS_KEYWORDS)


def _locate(root: str, input_dir: Path, stages: Sequence[type[Pipeline]], top: int
            ) -> tuple[int, str]:
    """Walk back from stage ``top`` to the first stage whose input file exists."""
    tried = []
    for index in range(top, -1, -1):
        suffix = stages[index].workflow_input_suffix
        path = input_dir / f"{root}_{suffix}.fits"
        tried.append(path.name)
        if path.is_file():
            return index, str(path)
    raise WorkflowError(f"member {root}: none of {', '.join(tried)} found in {input_dir}")


def entering_stream(files: Sequence[str], suffix: str) -> list[str]:
    """The one file of an exposure's channels (``_rate``, ``_rateints`` after Detector1) that a
    stage reading ``_<suffix>`` files takes: that suffix's, else the main (first) one."""
    named = [f for f in files if Path(f).stem.endswith(f"_{suffix}")]
    return named[:1] or list(files[:1])


def _reference_identity(path: str, selected_by: str) -> dict[str, Any]:
    """What a unit's result depends on for one reference.

    A CRDS file is immutable under its name, so its path is its identity; a user's override
    file also carries its size and modification time, so an edited file reruns its units.
    """
    if path in ("N/A", ""):
        return {"path": "N/A", "selected_by": selected_by}
    if selected_by == "crds":
        return {"path": path, "selected_by": selected_by}
    st = os.stat(path)
    return {"path": os.path.abspath(path), "selected_by": selected_by, "size": st.st_size,
            "mtime_ns": st.st_mtime_ns}


def _canonical_number(value: Any) -> Any:
    """Floats that are whole numbers are written as floats consistently (3 and 3.0 agree)."""
    if isinstance(value, Mapping):
        return {str(k): _canonical_number(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical_number(v) for v in value]
    if isinstance(value, float) and math.isfinite(value):
        return float(repr(value))
    return value


def _parameter_reftype(step_class: type) -> str:
    """The CRDS type of a step's parameter references (``pars-<class>``; engines' classes
    may not say)."""
    declared = getattr(step_class, "get_config_reftype", None)
    return declared() if declared is not None else f"pars-{step_class.__name__.lower()}"


class _CachedStore:
    """The CRDS cache, answering each (exposure, reference type) question once.

    The first question about an exposure asks for every type in ``prefetch`` too, in one
    selection (a survey's exposures differ in DATE-OBS and TIME-OBS, so each is selected for);
    if that fails, only the types asked for are selected, so errors are those of the question.
    """

    def __init__(self, store: Any, prefetch: Sequence[str] = ()) -> None:
        self.store = store
        self.context = getattr(store, "context", None)
        self.prefetch = list(dict.fromkeys(prefetch))
        self._answers: dict[tuple[int, str], str] = {}
        self._seen: set[int] = set()

    def best_references(self, parameters: dict[str, Any], reftypes: list[str]
                        ) -> dict[str, str]:
        key = id(parameters)  # parameters dicts live as long as the plan
        todo = [t for t in reftypes if (key, t) not in self._answers]
        if todo and key not in self._seen and hasattr(self.store, "best_references"):
            self._seen.add(key)
            with contextlib.suppress(Exception):
                found = self.store.best_references(parameters, [*todo, *self.prefetch])
                self._answers.update({(key, t): v for t, v in found.items()})
                todo = [t for t in reftypes if (key, t) not in self._answers]
        if todo:
            if hasattr(self.store, "best_references"):
                found = self.store.best_references(parameters, todo)
            else:
                found = {t: self.store.get_reference_file(parameters, t) for t in todo}
            self._answers.update({(key, t): v for t, v in found.items()})
        return {t: self._answers[(key, t)] for t in reftypes}

    def get_reference_file(self, parameters: dict[str, Any], reftype: str) -> str:
        return self.best_references(parameters, [reftype])[reftype]


class _Resolver:
    """Resolves stage parameters per exposure, caching by the dataset's selection parameters."""

    def __init__(self, stage: type[Pipeline], param_files: list[str], overrides: dict[str, Any],
                 store: Any) -> None:
        self.stage = stage
        self.files = param_files
        self.overrides = overrides
        self.store = store
        self._cache: dict[tuple, dict[str, Any]] = {}

    def resolve(self, dataset_params: dict[str, Any], path: str | None = None
                ) -> dict[str, Any]:
        key = self._parameter_references(dataset_params)
        if key not in self._cache:
            kwargs: dict[str, Any] = {}
            if self.overrides:
                kwargs["steps"] = self.overrides
            if len(self.files) > 1:
                raise WorkflowError(f"more than one parameter file for {self.stage.__name__}: "
                                    f"{', '.join(self.files)}")
            config, _ = self.stage.build_config(
                dataset_params, config_file=self.files[0] if self.files else None, **kwargs)
            config.pop("name", None)
            self._cache[key] = _spec.apply_defaults(self.stage.load_spec_file(), config)
        return self._cache[key]

    def _parameter_references(self, dataset_params: dict[str, Any]) -> tuple:
        """The parameter reference files (``pars-*``) the dataset selects: the only thing the
        resolved parameters depend on the dataset through, hence the cache key (every exposure
        of a survey has its own DATE-OBS and TIME-OBS)."""
        from jwpipe.stpipe import refstore

        store = refstore.get_store()  # the store build_config reads
        if store is None or refstore.ref_steppars_disabled(None):
            return ()
        if isinstance(self.store, _CachedStore) and self.store.store is store:
            store = self.store  # one selection per exposure for all its types
        types = [c.get_config_reftype() for c in (*self.stage.step_defs.values(), self.stage)]
        if hasattr(store, "best_references"):
            found = store.best_references(dataset_params, types)
        else:
            found = {t: store.get_reference_file(dataset_params, t) for t in types}
        return tuple(sorted(found.items()))


def route_parameter_files(param_files: Sequence[str], stages: Sequence[type[Pipeline]]
                          ) -> tuple[list[list[str]], list[dict[str, str]]]:
    """Which stage each parameter file configures: a pipeline file goes to the stage of its
    class; a step-level file (e.g. jwst's ``jump.cfg``) to every stage step of its class.

    Raises
    ------
    WorkflowError
        A file without ``class``, or whose class names nothing jwpipe knows, or a step or
        pipeline that is not part of this workflow's stages (e.g. jwst's Spec2Pipeline).
    """
    from jwpipe.errors import JwpipeError
    from jwpipe.stpipe import registry

    stage_files: list[list[str]] = [[] for _ in stages]
    step_files: list[dict[str, str]] = [{} for _ in stages]
    for path in param_files:
        try:
            cfg = load_parameter_file(path)
        except JwpipeError as exc:
            raise WorkflowError(str(exc)) from None
        if not cfg.class_name:
            raise WorkflowError(f"parameter file {path} has no 'class': cannot tell which "
                                "pipeline or step it configures")
        unknown = registry.describe_unknown(cfg.class_name)
        if unknown:
            raise WorkflowError(f"parameter file {path}: class {unknown}")
        name = registry.jwpipe_class_name(cfg.class_name)
        full = os.path.abspath(path)
        hits = [i for i, st in enumerate(stages) if name in (st.__name__, st.class_alias)]
        for i in hits:
            stage_files[i].append(full)
        owners = [(i, step) for i, st in enumerate(stages) for step, c in st.step_defs.items()
                  if name in (c.__name__, c.class_alias)]
        for i, step in owners:
            if step in step_files[i]:
                raise WorkflowError(f"more than one parameter file for step {step!r}: "
                                    f"{step_files[i][step]}, {full}")
            step_files[i][step] = full
        if not hits and not owners:
            known = ", ".join(st.__name__ for st in stages)
            raise WorkflowError(f"parameter file {path} is for {cfg.class_name}, which is "
                                f"neither one of this workflow's stages ({known}) nor one of "
                                "their steps")
    return stage_files, step_files


def _split_overrides(overrides: Mapping[str, Any], stages: Sequence[type[Pipeline]]
                     ) -> list[dict[str, Any]]:
    """Route ``--steps.<name>.<par>`` overrides to every stage that has step ``<name>``, and
    ``--steps.<stage>_<name>.<par>`` (a rule named apart, ``spec3_extract_1d``) to that stage
    only, over the former."""
    from jwpipe.workflow.insertions import staged_step

    routed: list[dict[str, Any]] = [{} for _ in stages]
    staged = []
    for name, pars in overrides.items():
        owners = [i for i, s in enumerate(stages) if name in s.step_defs]
        named = [] if owners else [(i, staged_step(s, name), pars)
                                   for i, s in enumerate(stages) if staged_step(s, name)]
        if not owners and not named:
            known = sorted({n for s in stages for n in s.step_defs})
            raise WorkflowError(f"unknown step {name!r} in overrides (steps: {', '.join(known)})")
        for i in owners:
            routed[i][name] = dict(pars)
        staged += named
    for i, step, pars in staged:  # over the bare name's values
        routed[i][step] = {**routed[i].get(step, {}), **pars}
    return routed


def plan_workflow(
    asn_paths: Sequence[str | os.PathLike[str]],
    *,
    param_files: Sequence[str] = (),
    overrides: Mapping[str, Any] | None = None,
    input_dir: str | os.PathLike[str] | None = None,
    store: Any = None,
    stages: Sequence[type[Pipeline]] | None = None,
    keep_going: bool = False,
    insert_after: Sequence[str] = (),
    until: str | None = None,
) -> Plan:
    """Plan the units for the given associations.

    Parameters
    ----------
    asn_paths : list of path
        Level-2 and/or level-3 association files.
    param_files : list of str
        Parameter files; each configures the stage whose class it names.
    overrides : dict
        ``{step name: {parameter: value}}`` from ``--steps.<name>.<par>=value``.
    input_dir : path
        Where member files are looked for (default: each association's directory).
    store : CrdsCache
        The CRDS cache (and context) parameter references and references are selected from.
    stages : list of Pipeline classes
        The chain of stages (default: Detector1, Image2, Image3).
    keep_going : bool
        Plan the associations that can be planned and list the others in ``Plan.refused``
        (default: the first refused association is an error).
    insert_after : list of str
        User's steps to insert, ``"<step or stage>=<class>"`` (parameter files may insert
        more); see :mod:`jwpipe.workflow.insertions`.
    until : str, optional
        Stop after this stage or step (file names are the same as without it).
    """
    from jwpipe.errors import JwpipeError

    stages = list(stages or _default_stages())
    keywords = _selection_keywords()
    wanted = [t for st in stages for c in st.step_defs.values()
              for t in (*c.reference_file_types, _parameter_reftype(c))]
    wanted += [_parameter_reftype(st) for st in stages]
    store = _CachedStore(store, wanted) if store is not None else None
    from jwpipe.workflow.insertions import shape_chain

    shape, param_files, overrides = shape_chain(stages, insert_after, list(param_files),
                                                dict(overrides or {}), until, store)
    routed = _split_overrides(overrides, stages)
    # an engine's stages may bring their own parameter routing and resolution
    route = getattr(stages[0], "workflow_route_parameter_files", route_parameter_files)
    stage_files, step_files = route(param_files, stages)
    for i, files in enumerate(step_files):
        for step, path in files.items():  # beneath the command-line values of that step
            routed[i][step] = {"config_file": path, **routed[i].get(step, {})}
    resolvers = [getattr(s, "workflow_resolver", _Resolver)(s, stage_files[i], routed[i], store)
                 for i, s in enumerate(stages)]
    chain = list(stages)  # associations are dispatched on the whole chain, planned to --until
    stages = stages[:shape.last_stage + 1]  # files and overrides of later stages stay valid
    exposures: dict[str, _Exposure] = {}
    products: list[tuple[int, str, list[str]]] = []
    targets: list[str] = []
    notes: list[str] = []
    refused: list[Refusal] = []
    for asn_path in asn_paths:
        try:
            found, made, said = _plan_association(asn_path, chain, input_dir, keywords,
                                                  exposures, shape.last_stage)
        except JwpipeError as exc:
            if not keep_going:
                raise WorkflowError(str(exc)) from None
            reason = getattr(exc, "reason", None) or _reason_of(exc)
            refused.append(Refusal(str(asn_path), reason, str(exc)))
            continue
        exposures.update(found)
        products += made
        notes += said
    if not exposures:
        if refused:
            error = WorkflowError(refused[0].message if len(refused) == 1 else
                                  f"nothing could be planned: {len(refused)} association(s) "
                                  f"refused (first: {refused[0].message})")
            error.refused = refused  # type: ignore[attr-defined]
            raise error
        raise WorkflowError("no exposures to process")
    units: list[Unit] = []
    steps: list[dict[str, Any]] = []
    context = getattr(store, "context", None)
    streams: dict[str, list[str]] = {}  # exposure -> current product files (channels)
    for index, stage in enumerate(stages):
        first = len(units)
        if stage.workflow_stage_scope == "exposure":
            members = [e for e in exposures.values() if e.start_stage <= index
                       and any(index <= top for top, _, roots in products if e.root in roots)]
            for exp in members:
                if exp.start_stage == index:
                    streams[exp.root] = [exp.start_file]
                else:  # the next stage takes the channel it reads: _rateints, else the main
                    streams[exp.root] = entering_stream(streams[exp.root],
                                                        stage.workflow_input_suffix)
            step_units = _plan_exposure_stage(stage, resolvers[index], members, streams, store,
                                              units, shape, index, targets)
        else:
            # a stage whose steps pass more than one input declares its own planner
            plan_stage = getattr(stage, "workflow_plan_product", _plan_product_stage)
            step_units = plan_stage(stage, resolvers[index], exposures, products, index,
                                    streams, store, units, targets, shape)
        _name_rules_apart(stage, step_units, {s["name"] for s in steps}, units[first:])
        steps += step_units
    finish = getattr(stages[0], "workflow_finish_units", None)
    if finish is not None:
        finish(units, store)
    for top, _name, roots in products:
        if stages[top].workflow_stage_scope == "exposure":
            for root in roots:  # stopped at a step: each of its outputs
                targets += streams[root] if shape.stop and shape.stop[1] else streams[root][:1]
    return Plan(steps, units, sorted(set(targets)), sorted(exposures),
                [name for _, name, _ in products], context, notes, refused, dict(shape.files))


def _name_rules_apart(stage: type[Pipeline], stage_steps: list[dict[str, Any]],
                      taken: set[str], units: list[Unit]) -> None:
    """A step of a later stage named as one already planned (jwst's Spec2 and Spec3 both run
    ``resample_spec`` and ``extract_1d``) gets a rule of its own, named after its stage
    (``spec3_extract_1d``); its units, records and parameter files follow the rule's name."""
    renamed = {}
    for step in stage_steps:
        if step["name"] in taken:
            renamed[step["name"]] = f"{stage.workflow_group_name()}_{step['name']}"
            step["name"] = renamed[step["name"]]
    for unit in units:
        unit.step = renamed.get(unit.step, unit.step)


def _reason_of(exc: Exception) -> str:
    from jwpipe.errors import AssociationError

    return "invalid association" if isinstance(exc, AssociationError) else "cannot plan"


class MemberRoots(list):
    """An association product's member roots, in order, with each one's role
    (``roles[root]``: its ``exptype``) and the association's pool and file name
    (``association``: ``pool_name``, ``table_name``, as jwst records them)."""

    def __init__(self, association: dict[str, str | None] | None = None) -> None:
        super().__init__()
        self.roles: dict[str, str] = {}
        self.association = dict(association or {})


def _plan_association(asn_path: str | os.PathLike[str], stages: Sequence[type[Pipeline]],
                      input_dir: str | os.PathLike[str] | None, keywords: frozenset[str],
                      known: dict[str, _Exposure], last: int
                      ) -> tuple[dict[str, _Exposure], list[tuple[int, str, list[str]]],
                                 list[str]]:
    """One association's new exposures, its products and notes; nothing is kept if it fails.
    ``stages`` is the whole chain; ``last`` the last stage planned (``--until``): products of
    later stages end there, with the members the later stage uses."""
    from jwpipe.associations import load_asn, member_root, product_root
    from jwpipe.associations.types import (
        UnsupportedAssociationError,
        association_kind,
        nonscience_advice,
    )

    asn = load_asn(asn_path)
    source = str(asn_path)
    asked = stage_for_association(asn, stages)
    top = min(asked, last)
    kind = association_kind(asn.asn_type)
    assert kind is not None  # stage_for_association refused unknown types
    base = Path(input_dir).absolute() if input_dir else Path(asn_path).resolve().parent
    found: dict[str, _Exposure] = {}
    made: list[tuple[int, str, list[str]]] = []
    notes: list[str] = []
    # a stage may use members of other roles too (jwst's coron3 and ami3: psf members)
    uses = getattr(stages[asked], "workflow_member_roles", ("science",))
    refused_roles = getattr(stages[asked], "workflow_refused_roles", {})
    for product in asn.products:
        barred = [m for m in product.members if m.exptype in refused_roles]
        if barred:
            role = barred[0].exptype
            raise UnsupportedAssociationError(
                f"{source}: product {product.name!r} has {role} member(s) "
                f"({barred[0].expname}); {refused_roles[role]}", f"{role} members")
        others = [m for m in product.members if m.exptype not in uses]
        if others and kind.level == 2:
            roles = sorted({m.exptype for m in others})
            raise UnsupportedAssociationError(
                f"{source}: product {product.name!r} has {', '.join(roles)} member(s) "
                f"({others[0].expname}); workflows process science members only: "
                + nonscience_advice(kind, roles, source), "non-science members")
        if others:  # calwebb_image3 combines the science members only, and so does Image3
            notes.append(f"{source}: product {product.name!r}: {len(others)} non-science "
                         f"member(s) ({', '.join(sorted({m.exptype for m in others}))}) not "
                         f"used, as {kind.jwst_pipeline} uses science members only")
        roots = MemberRoots({"pool_name": asn.asn_pool, "table_name": Path(source).name})
        for member in [m for m in product.members if m.exptype in uses]:
            root = check_name(member_root(member.expname), "member")
            roots.append(root)
            roots.roles[root] = member.exptype
            if root in known or root in found:
                continue
            try:
                start, path = _locate(root, base, stages, top)
            except WorkflowError as exc:
                raise UnsupportedAssociationError(f"{source}: {exc}", "missing member files"
                                                  ) from None
            found[root] = _Exposure(root, start, path, *_read_exposure(path, keywords))
        made.append((top, check_name(product_root(product.name), "product name"), roots))
    return found, made, notes


def _unit_parameters(step_class: type[Step], pars: dict[str, Any], dataset: dict[str, Any],
                     store: Any, where: str, memo: dict[int, tuple] | None = None
                     ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Parameters for one unit (output-only ones and ``override_*`` dropped) and its
    references: a user's ``override_<reftype>``, else the file CRDS selects now, at generation
    time, so the job uses exactly it and never imports ``crds``.

    ``memo``: units given the same ``pars`` object share one parameters dict (read-only), so
    a survey's thousands of units hold, and serialize, one copy per step."""
    from_crds = [t for t in step_class.reference_file_types
                 if pars.get(f"override_{t}") is None]
    selected: dict[str, str] = {}
    if from_crds:
        if store is None:
            raise WorkflowError(f"{where}: no CRDS cache for the '{from_crds[0]}' reference "
                                f"(set CRDS_PATH, give --refs DIR, or set "
                                f"override_{from_crds[0]})")
        try:
            selected = store.best_references(dataset, from_crds)
        except Exception as exc:
            if step_class.prefetch_references:
                raise WorkflowError(f"{where}: {exc}") from None
            # optional references (the step has a documented fallback): N/A when not found
            selected = {t: "N/A" for t in from_crds}
    refs: dict[str, Any] = {}
    for reftype in step_class.reference_file_types:
        key = f"override_{reftype}"
        value = pars.get(key)
        if reftype in selected:
            refs[reftype] = _reference_identity(selected[reftype], "crds")
            continue
        if not isinstance(value, str):
            raise WorkflowError(f"{where}: {key} must be a path in a workflow")
        if value not in ("N/A", ""):
            value = os.path.abspath(os.path.expanduser(value))
            if not os.path.isfile(value):
                raise WorkflowError(f"{where}: {key} file {value} does not exist")
        refs[reftype] = _reference_identity(value, "override")
    known = memo.get(id(pars)) if memo is not None else None
    if known is not None and known[0] is pars:
        return known[1], refs
    overrides = {f"override_{t}" for t in step_class.reference_file_types}
    kept = _canonical_number({k: v for k, v in pars.items()
                              if k not in OUTPUT_ONLY_PARAMETERS and k not in overrides})
    if memo is not None:
        memo[id(pars)] = (pars, kept)  # holding pars keeps its id unique
    return kept, refs


def _class_path(step_class: type[Step]) -> str:
    return f"{step_class.__module__}.{step_class.__name__}"


def _memory(step_class: type[Step], nbytes: int) -> tuple[int, int]:
    factor, base = step_class.workflow_memory
    mem_mb = int(base + factor * nbytes / 2**20)
    runtime = max(5, math.ceil(nbytes / 2**20 / 20.0))  # minutes; generous for a queue
    return mem_mb, runtime


def _channel_labels(step_class: type[Step], labels: list[str]) -> list[str]:
    """Labels of a step's output channels: each input channel gives one output per declared
    output; the first keeps the input's label, the others take their declared suffix
    (``ramp_fit``: ``""`` and ``"rateints"``)."""
    return [label if j == 0 else (out.suffix or str(j))
            for label in labels for j, out in enumerate(step_class.outputs)]


def _output_name(base: str, stage: type[Pipeline], is_last: bool, channel: int, label: str
                 ) -> str:
    """Suffix of an exposure-stage output: the stage's product suffix for the last step
    (``rate``, ``rateints``), else the step's suffix (its alias) and the channel's label
    (``ramp_fit_rateints``)."""
    if is_last and stage.workflow_product_suffixes:
        suffixes = stage.workflow_product_suffixes
        return suffixes[channel] if channel < len(suffixes) else f"{suffixes[0]}_{label}"
    return f"{base}_{label}" if label else base


def _order_key(stage: type[Pipeline], params: Mapping[str, Any]) -> str | None:
    """The keyword value a stage's step order depends on: INSTRUME (Detector1's branches), or
    what the stage declares (jwst's Spec2 branches on EXP_TYPE)."""
    return params.get(getattr(stage, "workflow_order_keyword", "INSTRUME"))


def _active_steps(stage: type[Pipeline], pars: dict[str, Any], instrument: str | None
                  ) -> list[str]:
    """Steps that run: not skipped, not waiting for member roles no product has, and not
    run only instead of another step that runs (``workflow_exclusive``: jwst's Spec3
    combines extracted spectra only when it resamples none)."""
    active = [n for n in stage.step_names(instrument) if not pars["steps"][n].get("skip")
              and stage.step_defs[n].workflow_member_role is None]
    instead = getattr(stage, "workflow_exclusive", {})
    return [n for n in active if instead.get(n) not in active]


def _plan_exposure_stage(stage: type[Pipeline], resolver: _Resolver, members: list[_Exposure],
                         streams: dict[str, list[str]], store: Any, units: list[Unit],
                         shape: Any, index: int, targets: list[str] | None = None
                         ) -> list[dict[str, Any]]:
    if not members:
        return []
    layouts: dict[tuple[str, ...], list[_Exposure]] = {}
    resolved: dict[str, dict[str, Any]] = {}
    for exp in members:
        pars = resolver.resolve(exp.params, exp.start_file)
        resolved[exp.root] = pars
        active = tuple(_active_steps(stage, pars, _order_key(stage, exp.params)))
        layouts.setdefault(active, []).append(exp)
    if len(layouts) > 1:
        detail = "; ".join(f"{', '.join(e.root for e in exps[:3])}: {' -> '.join(k)}"
                           for k, exps in layouts.items())
        raise WorkflowError(f"{stage.__name__}: exposures need different step chains ({detail}); "
                            "make one workflow per instrument/configuration")
    active = next(iter(layouts))
    chain, product_at, planned = shape.entries(index, stage, active,
                                               _order_key(stage, members[0].params))
    steps = []
    labels = [""]  # every exposure enters the stage with its one main product
    memo: dict[int, tuple] = {}
    for position, entry in enumerate(chain[:planned]):
        name, step_class = entry.name, entry.step_class
        is_last = position == product_at
        stage_product = (is_last and bool(stage.workflow_product_suffixes)) or any(
            out.stage_product for out in step_class.outputs)
        labels = _channel_labels(step_class, labels)
        ext = step_class.outputs[0].ext
        suffixes = [_output_name(entry.suffix, stage, is_last, c, label)
                    for c, label in enumerate(labels)]
        for exp in members:
            pars = resolved[exp.root]["steps"][name] if entry.inserted is None else \
                shape.parameters(entry.inserted, exp.params)
            unit_pars, refs = _unit_parameters(step_class, pars, exp.params, store,
                                               f"{stage.__name__}.{name} for {exp.root}", memo)
            inputs = streams[exp.root]
            outputs = [f"products/{exp.root}_{suffix}{ext}" for suffix in suffixes]
            mem_mb, runtime = _memory(step_class, exp.nbytes)
            units.append(Unit(name, exp.root, _class_path(step_class), "exposure",
                              [file_spec(p) for p in inputs],
                              [file_spec(p, step_class.outputs[0].kind) for p in outputs],
                              unit_pars, refs,
                              mem_mb, runtime, stage_product=stage_product))
            streams[exp.root] = outputs
        steps.append({
            "name": name, "stage": stage.__name__, "group": stage.workflow_group_name(),
            "scope": "exposure", "wildcard": "exp",
            "outputs": [f"products/{{exp}}_{suffix}{ext}" for suffix in suffixes],
            "output_is_dir": False, "stage_product": stage_product,
            "alias": step_class.class_alias or name,
        })
    stopped_here = shape.stop is not None and shape.stop[0] == index  # --until inside it
    if product_at < planned and not stopped_here and hasattr(stage, "workflow_side_steps"):
        steps += _plan_side_steps(stage, resolved, members, streams, store, units,
                                  targets if targets is not None else [])
    return steps


def _plan_side_steps(stage: type[Pipeline], resolved: dict[str, dict[str, Any]],
                     members: list[_Exposure], streams: dict[str, list[str]], store: Any,
                     units: list[Unit], targets: list[str]) -> list[dict[str, Any]]:
    """The steps a stage runs after its product, off the chain (jwst's Spec2: ``_s2d``,
    ``_s3d``, ``_x1d`` from the ``_cal``): each takes the previous one's output, the first
    the stage product; the next stage still takes the product. Their products are targets."""
    mode = _order_key(stage, members[0].params)
    side = [(n, suffix) for n, suffix in stage.workflow_side_steps(mode)
            if not resolved[members[0].root]["steps"][n].get("skip")]
    current = {exp.root: streams[exp.root][:1] for exp in members}
    steps = []
    memo: dict[int, tuple] = {}
    for name, suffix in side:
        step_class = stage.step_defs[name]
        product = suffix != name
        ext = step_class.outputs[0].ext
        for exp in members:
            unit_pars, refs = _unit_parameters(step_class, resolved[exp.root]["steps"][name],
                                               exp.params, store,
                                               f"{stage.__name__}.{name} for {exp.root}", memo)
            output = f"products/{exp.root}_{suffix}{ext}"
            mem_mb, runtime = _memory(step_class, exp.nbytes)
            units.append(Unit(name, exp.root, _class_path(step_class), "exposure",
                              [file_spec(p) for p in current[exp.root]],
                              [file_spec(output, step_class.outputs[0].kind)], unit_pars, refs,
                              mem_mb, runtime, stage_product=product))
            current[exp.root] = [output]
            if product:
                targets.append(output)
        steps.append({
            "name": name, "stage": stage.__name__, "group": stage.workflow_group_name(),
            "scope": "exposure", "wildcard": "exp",
            "outputs": [f"products/{{exp}}_{suffix}{ext}"], "output_is_dir": False,
            "stage_product": product, "alias": step_class.class_alias or name,
        })
    return steps


def _plan_product_stage(stage: type[Pipeline], resolver: _Resolver,
                        exposures: dict[str, _Exposure], products: list[tuple[int, str, list]],
                        index: int, streams: dict[str, list[str]], store: Any,
                        units: list[Unit], targets: list[str], shape: Any
                        ) -> list[dict[str, Any]]:
    mine = [(name, roots) for top, name, roots in products if top == index]
    if not mine:
        return []
    steps: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    extra = getattr(stage, "workflow_product_extra", lambda roots: {})
    for product, roots in mine:
        first = exposures[roots[0]]
        for root in roots:
            if exposures[root].start_stage == index:
                streams[root] = [exposures[root].start_file]
        pars = resolver.resolve(first.params, first.start_file)
        active = _active_steps(stage, pars, _order_key(stage, first.params))
        chain, _, planned = shape.entries(index, stage, active,
                                          _order_key(stage, first.params))
        current = [file_spec(streams[r][0]) for r in roots]
        combined = False
        nbytes = sum(exposures[r].nbytes for r in roots)
        for entry in chain[:planned]:
            name, step_class = entry.name, entry.step_class
            step_pars = pars["steps"][name] if entry.inserted is None else \
                shape.parameters(entry.inserted, first.params)
            unit_pars, refs = _unit_parameters(step_class, step_pars, first.params,
                                               store, f"{stage.__name__}.{name} for {product}")
            if len(step_class.outputs) != 1:
                raise WorkflowError(f"{stage.__name__}.{name}: a product-scope step must declare "
                                    "one output")
            out = step_class.outputs[0]
            combines = out.per == "product"
            suffix = out.suffix or entry.suffix
            ext = out.ext
            if combined or combines:
                outputs = [file_spec(f"products/{product}_{suffix}{ext}", out.kind)]
                pattern = f"products/{{product}}_{suffix}{ext}"
                is_dir = False
            else:
                outputs = [file_spec(f"products/{product}.{suffix}", "members",
                                     [f"{root}_{suffix}.fits" for root in roots])]
                pattern = f"products/{{product}}.{suffix}"
                is_dir = True
            mem_mb, runtime = _memory(step_class, nbytes if not combined else nbytes // len(roots))
            declared = out.stage_product
            units.append(Unit(name, product, _class_path(step_class), "product", list(current),
                              outputs, unit_pars, refs, mem_mb, runtime, members=list(roots),
                              stage_product=declared, call="single" if combined else "members",
                              extra=extra(roots)))
            if name not in steps:
                order.append(name)
                steps[name] = {"name": name, "stage": stage.__name__,
                               "group": stage.workflow_group_name(), "scope": "product",
                               "wildcard": "product", "outputs": [pattern],
                               "output_is_dir": is_dir, "stage_product": declared,
                               "alias": step_class.class_alias or name}
            current = outputs
            if combines or combined:
                targets += [o["path"] for o in outputs]  # every combined product is a target
            combined = combined or combines
        if not combined:
            targets += [o["path"] for o in current]
    return [steps[n] for n in order]
