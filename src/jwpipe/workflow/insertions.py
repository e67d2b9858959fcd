"""The shape of a workflow's chain: a user's steps inserted into it, and where it stops.

A user's Step class (a 1/f-noise cleaner, a snowball masker) can run between two steps of a
stage, or between two stages, as a rule of its own::

    jwpipe make-workflow asn.json --insert-after jump=column_clean          # an entry point
    jwpipe make-workflow asn.json --insert-after detector1=mylab.steps.CleanRateStep

or from a parameter file given with ``-p`` (an entry of a pipeline file's ``steps:`` list, or a
step-level file), with ``insert_after``::

    class: mylab.steps.CleanRateStep
    name: clean_rate
    insert_after: Detector1Pipeline
    parameters: {nsigma: 3.0}

The class is resolved exactly as a parameter file's ``class`` is
(:func:`jwpipe.stpipe.registry.resolve_step_class`: built-ins, ``jwpipe.steps`` entry points,
``JWPIPE_ALLOW_IMPORT`` prefixes), so the same allow-list guards both. ``insert_after`` names a
step of a stage (the user's step runs inside the stage: inserted after the stage's last step,
it writes the stage's product), a stage (class name, alias or short name such as ``detector1``:
the stage's product is written as before, and the next stage reads the user's step's output),
or another inserted step. The user's step is planned from its declared metadata like any step
(``outputs``, ``reference_file_types``, ``workflow_memory``); its parameters are resolved with
the framework's precedence: spec defaults, its CRDS ``pars-*`` reference, the parameter-file
entry that inserts it, a step-level parameter file for its class, ``--steps.<name>.<par>``.

``--until <stage or step>`` (:meth:`ChainShape.entries`) stops the chain after a stage or a
step (an inserted one too). File names do not depend on it: a later run without ``--until``
reuses what was made.

Nothing here depends on how a step runs, only on the stages' declared ``step_defs`` /
``step_names`` and the classes' declared metadata, so any engine whose stages are declared that
way can use it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jwpipe.errors import JwpipeError, WorkflowError
from jwpipe.stpipe import spec as _spec
from jwpipe.stpipe.config_file import StepConfig, load_parameter_file
from jwpipe.stpipe.pipeline import Pipeline
from jwpipe.stpipe.step import Step

__all__ = ["ChainEntry", "ChainShape", "Insertion", "parse_insert_after", "shape_chain",
           "stage_names"]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Insertion:
    """A user's step inserted into the chain."""

    name: str
    after: str
    identifier: str
    step_class: type[Step]
    source: str
    #: Parameters written in the parameter-file entry that inserts it (beneath the others).
    parameters: Mapping[str, Any] = field(default_factory=dict)
    #: A step-level parameter file for it (its ``config_file``, or one given with ``-p``).
    parameter_file: str | None = None


@dataclass(frozen=True)
class ChainEntry:
    """One step of a stage's chain as planned: a stage's own step, or an inserted one."""

    name: str
    step_class: type[Step]
    inserted: Insertion | None = None
    #: Inserted after the stage (not inside it): the stage's product is named before it.
    between_stages: bool = False

    @property
    def suffix(self) -> str:
        """Suffix of its intermediate outputs: a stage step's alias; an inserted step's first
        declared output suffix, else its name."""
        if self.inserted is not None:
            return self.step_class.outputs[0].suffix or self.name
        return self.step_class.class_alias or self.name


def staged_step(stage: type[Pipeline], name: str) -> str | None:
    """The step of ``stage`` that ``name`` writes with its stage's name, as the rule of a step
    two stages run is named (``spec3_extract_1d``); None if it names none."""
    step = name.removeprefix(f"{stage.workflow_group_name()}_")
    return step if step != name and step in stage.step_defs else None


def stage_names(stage: type[Pipeline]) -> set[str]:
    """The names a stage answers to: class name, alias, short name (``detector1``)."""
    names = {stage.__name__, stage.__name__.lower()}
    if stage.class_alias:
        names |= {stage.class_alias, stage.class_alias.removeprefix("calwebb_")}
    if stage.__name__.endswith("Pipeline"):
        names.add(stage.__name__.removesuffix("Pipeline").lower())
    return names


def parse_insert_after(text: str) -> tuple[str, str]:
    """``AFTER=CLASS`` (``jump=mypkg.ColumnCleanStep``) into its two parts."""
    after, sep, cls = (part.strip() for part in text.partition("="))
    if not sep or not after or not cls:
        raise WorkflowError(f"--insert-after {text!r}: use --insert-after <step or stage>=<class> "
                            "(e.g. --insert-after jump=mypkg.ColumnCleanStep)")
    return after, cls


def _resolve_class(identifier: str, where: str) -> type[Step]:
    from jwpipe.stpipe import registry

    try:
        cls = registry.resolve_step_class(identifier, what=where)
    except JwpipeError as exc:
        raise WorkflowError(str(exc)) from None
    if issubclass(cls, Pipeline):
        raise WorkflowError(f"{where} '{identifier}' is a pipeline; only a step can be inserted")
    return cls


def _default_name(cls: type[Step]) -> str:
    if cls.class_alias:
        return cls.class_alias
    return re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__.removesuffix("Step")).lower()


class ChainShape:
    """Insertions placed in a chain of stages, and where the chain stops."""

    def __init__(self, stages: Sequence[type[Pipeline]], insertions: list[Insertion],
                 until: str | None, store: Any) -> None:
        self.stages = list(stages)
        self.insertions = insertions
        self.store = store
        self.overrides: dict[str, dict[str, Any]] = {}
        #: Files the workflow directory keeps (relative path -> bytes): filtered copies of jwst
        #: pipeline parameter files; ``keep`` holds their planning copies' directories.
        self.files: dict[str, bytes] = {}
        self.keep: list[Any] = []
        self._cache: dict[tuple, dict[str, Any]] = {}
        self._check_names()
        self._place = {ins.name: self._locate(ins) for ins in insertions}
        self.stop = self._resolve_until(until) if until else None

    # ------------------------------------------------------------------ placing
    def _stage_steps(self) -> dict[str, int]:
        return {name: i for i, stage in enumerate(self.stages) for name in stage.step_defs}

    def _check_names(self) -> None:
        taken = self._stage_steps()
        seen: dict[str, Insertion] = {}
        for ins in self.insertions:
            if not _IDENT.match(ins.name):
                raise WorkflowError(f"{ins.source}: inserted step name {ins.name!r} is not an "
                                    "identifier (letters, digits, '_')")
            if ins.name in taken:
                raise WorkflowError(f"{ins.source}: inserted step name {ins.name!r} is already "
                                    f"a step of {self.stages[taken[ins.name]].__name__}; give "
                                    "it another name (a parameter-file entry's 'name')")
            if ins.name in seen:
                raise WorkflowError(
                    f"step {ins.name!r} is inserted twice ({seen[ins.name].source}: after "
                    f"{seen[ins.name].after}; {ins.source}: after {ins.after}); give one of "
                    "them its own name in a parameter-file entry ('name: ...')")
            seen[ins.name] = ins

    def _locate(self, ins: Insertion, depth: int = 0) -> tuple[int, str | None]:
        """(stage index, step it follows or None for after the stage)."""
        steps = self._stage_steps()
        if ins.after in steps:
            index = steps[ins.after]
            return index, ins.after
        for index, stage in enumerate(self.stages):
            if ins.after in stage_names(stage):
                return index, None
        other = next((o for o in self.insertions if o.name == ins.after), None)
        if other is not None and depth < len(self.insertions):
            return self._locate(other, depth + 1)
        known = [*steps, *(s.__name__ for s in self.stages),
                 *(o.name for o in self.insertions if o is not ins)]
        raise WorkflowError(f"{ins.source}: cannot insert {ins.name!r} after {ins.after!r}: "
                            f"no such step or stage (known: {', '.join(known)})")

    def _check_scope(self, ins: Insertion, stage: type[Pipeline]) -> None:
        scope = stage.workflow_stage_scope
        own = ins.step_class.workflow_scope
        if own is not None and own != scope:  # None: whatever its place gives it (stpipe)
            raise WorkflowError(
                f"{ins.source}: {ins.step_class.__name__} works on each {own} (workflow_scope) "
                f"but is inserted into {stage.__name__}, whose steps work on each {scope}")
        if scope == "product" and self._place[ins.name][1] is None:
            raise WorkflowError(f"{ins.source}: nothing follows {stage.__name__}; insert "
                                f"{ins.name!r} after one of its steps instead")

    def _resolve_until(self, until: str) -> tuple[int, str | None]:
        for index, stage in enumerate(self.stages):
            if staged_step(stage, until):
                return index, staged_step(stage, until)
        planning = [i for i, stage in enumerate(self.stages) if until in stage.step_defs
                    and until not in getattr(stage, "workflow_not_planned", {})]
        if planning:  # a step two stages run (Spec2's and Spec3's): the first one's
            return planning[0], until
        steps = self._stage_steps()
        if until in steps:
            return steps[until], until
        for index, stage in enumerate(self.stages):
            if until in stage_names(stage):
                return index, None
        if until in self._place:
            return self._place[until][0], until
        known = [*(s.__name__ for s in self.stages), *steps, *self._place]
        raise WorkflowError(f"--until {until!r}: no such stage or step (known: "
                            f"{', '.join(known)})")

    @property
    def last_stage(self) -> int:
        """Index of the last stage planned."""
        return self.stop[0] if self.stop else len(self.stages) - 1

    # ------------------------------------------------------------------ chains
    def entries(self, index: int, stage: type[Pipeline], active: Sequence[str],
                instrument: str | None = None) -> tuple[list[ChainEntry], int, int]:
        """A stage's chain with the insertions in place.

        Returns
        -------
        entries, product_position, planned
            Every entry; the position of the one that writes the stage's product (its last
            entry not inserted between stages; file names are the same with or without
            ``--until``); how many entries to plan (fewer when ``--until`` stops inside).
        """
        mine = [ins for ins in self.insertions if self._place[ins.name][0] == index]
        for ins in mine:
            self._check_scope(ins, stage)

        def followers(after: set[str], between: bool) -> list[ChainEntry]:
            out = []
            for ins in mine:
                if ins.after in after:
                    out.append(ChainEntry(ins.name, ins.step_class, ins, between))
                    out += followers({ins.name}, between)
            return out

        chain: list[ChainEntry] = []
        for name in stage.step_names(instrument):
            if name in active:
                chain.append(ChainEntry(name, stage.step_defs[name]))
            chain += followers({name}, False)  # after a skipped step: where it would have run
        chain += followers(stage_names(stage), True)
        placed = {e.name for e in chain}
        lost = [ins for ins in mine if ins.name not in placed]
        if lost:  # after a step this instrument's order does not have
            raise WorkflowError(f"{lost[0].source}: cannot insert {lost[0].name!r} after "
                                f"{lost[0].after!r}: {stage.__name__} does not run that step "
                                f"for {instrument or 'this'} data")
        product = max((i for i, e in enumerate(chain) if not e.between_stages), default=-1)
        planned = len(chain)
        if self.stop is not None and self.stop[0] == index:
            if self.stop[1] is None:  # until a stage: until its product
                planned = product + 1
            else:
                names = [e.name for e in chain]
                if self.stop[1] not in names:
                    raise WorkflowError(f"--until {self.stop[1]!r}: that step does not run in "
                                        f"{stage.__name__} (skipped?)")
                planned = names.index(self.stop[1]) + 1
        return chain, product, planned

    # ------------------------------------------------------------------ parameters
    def parameters(self, ins: Insertion, dataset: Mapping[str, Any]) -> dict[str, Any]:
        """An inserted step's resolved parameters for one exposure (or product)."""
        key = (ins.name, tuple(sorted((k, str(v)) for k, v in dataset.items())))
        if key not in self._cache:
            kwargs = {**ins.parameters, **self.overrides.get(ins.name, {})}
            own = getattr(ins.step_class, "workflow_parameters", None)
            if own is not None:  # an stpipe step in a jwst-engine workflow: stpipe resolves
                self._cache[key] = own(ins.parameter_file, kwargs, self.store, dataset)
                return self._cache[key]
            try:
                config, _ = ins.step_class.build_config(
                    dict(dataset), config_file=ins.parameter_file, **kwargs)
            except JwpipeError as exc:
                raise WorkflowError(f"{ins.name}: {exc}") from None
            config.pop("name", None)
            self._cache[key] = _spec.apply_defaults(ins.step_class.load_spec_file(), config)
        return self._cache[key]


def _file_insertions(path: str, cfg: StepConfig,
                     stages: Sequence[type[Pipeline]]) -> list[Insertion]:
    """Insertions a parameter file declares: the file itself, or entries of its ``steps``."""
    found = []
    for entry in [cfg, *cfg.steps]:
        if not entry.insert_after:
            continue
        if not entry.class_name:
            raise WorkflowError(f"parameter file {path}: an entry with insert_after "
                                f"{entry.insert_after!r} has no 'class'")
        where = f"class in parameter file '{path}'"
        cls = _resolve_for(stages, entry.class_name, where, where)
        params = {} if entry is cfg else dict(entry.parameters)
        own_file = path if entry is cfg else entry.config_file
        found.append(Insertion(entry.name or _default_name(cls), entry.insert_after,
                               entry.class_name, cls, f"parameter file {path}", params,
                               own_file))
    return found


def _resolve_for(stages: Sequence[type[Pipeline]], identifier: str, where: str,
                 jwst_where: str) -> type[Step]:
    """An inserted class: a jwpipe Step, or in a jwst-engine workflow (its stages carry
    ``jwst_class``) an stpipe step (:func:`jwpipe.engines.jwst_stages.inserted_step`)."""
    if any(getattr(st, "jwst_class", None) is not None for st in stages):
        from jwpipe.engines.jwst_stages import inserted_step

        return inserted_step(identifier, jwst_where)
    return _resolve_class(identifier, where)


def shape_chain(stages: Sequence[type[Pipeline]], insert_after: Sequence[str],
                param_files: Sequence[str], overrides: Mapping[str, Any], until: str | None,
                store: Any) -> tuple[ChainShape, list[str], dict[str, Any]]:
    """Collect the insertions (``--insert-after`` values, then parameter files) and the stop.

    Returns
    -------
    shape, param_files, overrides
        The chain's shape; the parameter files and ``--steps`` overrides that are left for the
        stages (those about inserted steps are taken).
    """
    insertions = []
    for text in insert_after:
        after, identifier = parse_insert_after(text)
        cls = _resolve_for(stages, identifier, "--insert-after class",
                           f"--insert-after {text}: class")
        insertions.append(Insertion(_default_name(cls), after, identifier, cls,
                                    f"--insert-after {text}"))
    configs = {}
    for path in param_files:
        try:
            configs[path] = load_parameter_file(path)
        except JwpipeError as exc:
            raise WorkflowError(str(exc)) from None
        insertions += _file_insertions(path, configs[path], stages)
    jwst = any(getattr(st, "jwst_class", None) is not None for st in stages)
    rest = []
    copies: dict[str, tuple[Any, bytes]] = {}
    for path, cfg in configs.items():
        if cfg.insert_after:
            continue
        inserted = [e.name or e.class_name for e in cfg.steps if e.insert_after]
        if jwst and inserted:  # stpipe reads the whole file and refuses steps it lacks
            rest.append(_filtered_copy(path, inserted, copies))
            continue
        same = [i for i, ins in enumerate(insertions)
                if cfg.class_name and _same_class(cfg.class_name, ins)]
        if not same:
            rest.append(path)
            continue
        # a step-level file for an inserted class configures those not configured otherwise
        targets = [i for i in same
                   if not (insertions[i].parameter_file or insertions[i].parameters)]
        if not targets:
            ins = insertions[same[0]]
            raise WorkflowError(f"{ins.name} is configured twice ({ins.source} and "
                                f"parameter file {path}); keep one")
        for i in targets:
            ins = insertions[i]
            insertions[i] = Insertion(ins.name, ins.after, ins.identifier, ins.step_class,
                                      ins.source, {}, os.path.abspath(path))
    shape = ChainShape(stages, insertions, until, store)
    shape.files = {rel: data for rel, (_, data) in copies.items()}
    shape.keep = [tmp for tmp, _ in copies.values()]
    names = {ins.name for ins in insertions}
    shape.overrides = {k: dict(v) for k, v in overrides.items() if k in names}
    left = {k: v for k, v in overrides.items() if k not in names}
    return shape, rest, left


def _filtered_copy(path: str, inserted: list[str], copies: dict[str, tuple[Any, bytes]]
                   ) -> str:
    """A jwst pipeline file without its inserted entries, for stpipe
    (:func:`jwpipe.engines.jwst_parfiles.without_insertions`): written to a temporary
    directory for planning; ``copies`` collects it for ``params/pipeline_files/`` in the
    workflow directory. Returns the path to plan with."""
    import hashlib
    import tempfile

    from jwpipe.engines.jwst_parfiles import without_insertions

    name, data = without_insertions(path, inserted)
    rel = f"params/pipeline_files/{name}"
    if rel in copies and copies[rel][1] != data:  # two files of one name
        stem, ext = os.path.splitext(name)
        rel = f"params/pipeline_files/{stem}_{hashlib.sha1(data).hexdigest()[:8]}{ext}"
    tmp = tempfile.TemporaryDirectory(prefix="jwpipe-pars-")
    copy = os.path.join(tmp.name, name)
    with open(copy, "wb") as fh:
        fh.write(data)
    copies[rel] = (tmp, data)
    return copy


def _same_class(class_name: str, ins: Insertion) -> bool:
    cls = ins.step_class
    last = class_name.strip().rsplit(".", 1)[-1]
    return class_name.strip() in (ins.identifier, f"{cls.__module__}.{cls.__name__}") or \
        last in (cls.__name__, cls.class_alias)
