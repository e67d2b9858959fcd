"""The :class:`Pipeline` base class: a Step made of named substeps run in a declared order.

A pipeline declares its substeps (``step_defs``: name -> Step class) and their order as data
(``step_order``, with ``step_order_by_instrument`` for per-instrument branches), so the workflow
layer can plan one job per step without running any code. Substep parameters come from
``steps={'jump': {...}}``, from a parameter file's ``steps:`` list, or as attributes
(``pipe.jump.rejection_threshold = 12``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar

from jwpipe.errors import ValidationError
from jwpipe.stpipe import registry
from jwpipe.stpipe import spec as _spec
from jwpipe.stpipe.config_file import StepConfig, load_parameter_file
from jwpipe.stpipe.step import Step, _merge_layers, _plain_value

__all__ = ["EndStage", "Pipeline"]

Layer = tuple[str, dict[str, Any], bool]


class EndStage(list):
    """Returned by :meth:`Pipeline.after_step` to end the stage early with these products."""


class Pipeline(Step):
    """Base class of pipelines."""

    #: Substeps by name; the name is the substep's attribute and its ``steps:`` key.
    step_defs: ClassVar[dict[str, type[Step]]] = {}
    #: Order in which ``process`` runs the substeps (default: ``step_defs`` order).
    step_order: ClassVar[list[str] | None] = None
    #: Per-instrument orders (``{"MIRI": [...]}``), keyed by upper-case INSTRUME.
    step_order_by_instrument: ClassVar[dict[str, list[str]]] = {}
    #: Pipeline-coded defaults for substep parameters (below the store's parameter files).
    substep_defaults: ClassVar[dict[str, dict[str, Any]]] = {}
    #: Workflow stage metadata: suffix of the stage's input, and of its final products.
    workflow_input_suffix: ClassVar[str | None] = None
    #: ``"exposure"`` (each exposure on its own) or ``"product"`` (association products).
    workflow_stage_scope: ClassVar[str] = "exposure"
    workflow_product_suffixes: ClassVar[tuple[str, ...]] = ()
    #: Name of the stage in a workflow: the rule of its stage jobs (``--granularity stage``)
    #: and the Snakemake group its jobs share (``group-components`` in a cluster profile).
    #: None: the class alias (or class name), lower case.
    workflow_group: ClassVar[str | None] = None

    @classmethod
    def workflow_group_name(cls) -> str:
        """The stage's workflow group (:attr:`workflow_group`), a valid rule name."""
        import re

        name = cls.workflow_group or (cls.class_alias or cls.__name__).lower()
        return re.sub(r"\W", "_", name)

    # ------------------------------------------------------------------ spec
    @classmethod
    def load_spec_file(cls) -> _spec.SpecNode:
        spec = cls._base_spec()
        steps = _spec.SpecNode()
        for name, step_class in cls.step_defs.items():
            if not (isinstance(step_class, type) and issubclass(step_class, Step)):
                raise TypeError(f"{cls.__name__}.step_defs['{name}'] is not a Step subclass")
            steps[name] = step_class.load_spec_file()
        spec["steps"] = steps
        return spec

    @classmethod
    def step_names(cls, instrument: str | None = None) -> list[str]:
        """The substeps ``process`` runs, in order, for data of ``instrument``."""
        if instrument and instrument.upper() in cls.step_order_by_instrument:
            return list(cls.step_order_by_instrument[instrument.upper()])
        return list(cls.step_order or cls.step_defs)

    # ------------------------------------------------------------------ construction
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)

    def _prepare_kwargs(self, kws: dict[str, Any], config_file: str | None) -> dict[str, Any]:
        # steps={'jump': {'config_file': ...}} given straight to the constructor
        layers, rest = self._kwargs_layers(dict(kws), config_file)
        merged = _merge_layers(self.load_spec_file(), self._coded_default_layers() + layers)
        merged.pop("name", None)
        return _spec.merge_dicts(merged, rest)

    def _set_parameters(self, values: Mapping[str, Any]) -> None:
        values = dict(values)
        steps = values.pop("steps", {}) or {}
        super()._set_parameters(values)
        for name, step_class in self.step_defs.items():
            section = dict(steps.get(name, {}))
            substep = step_class(name=name, parent=self, config_file=self.config_file,
                                 _validate_kwds=False, **section)
            setattr(self, name, substep)

    @property
    def steps(self) -> dict[str, Step]:
        """The substeps by name."""
        return {name: getattr(self, name) for name in self.step_defs}

    # ------------------------------------------------------------------ configuration layers
    @classmethod
    def _coded_default_layers(cls) -> list[Layer]:
        if not cls.substep_defaults:
            return []
        return [(f"defaults coded in {cls.__name__}", {"steps": dict(cls.substep_defaults)},
                 False)]

    @classmethod
    def _match_step(cls, entry: StepConfig) -> str | None:
        if entry.name and entry.name in cls.step_defs:
            return entry.name
        if entry.class_name:
            last = registry.jwpipe_class_name(entry.class_name)
            hits = [n for n, c in cls.step_defs.items()
                    if last in (c.__name__, c.class_alias)]
            if len(hits) == 1:
                return hits[0]
        return None

    @classmethod
    def _file_layers(cls, cfg: StepConfig, source: str) -> list[Layer]:
        """Layers of a pipeline parameter file.

        Files referenced by a ``steps:`` entry sit beneath everything written in the file
        itself, but above the reference store (stpipe's ``call`` merges them below the store).
        """
        lenient = bool(cfg.class_name and cfg.class_name.startswith("jwst."))
        layers: list[Layer] = []
        if cfg.config_file:
            layers += cls._file_layers(load_parameter_file(cfg.config_file),
                                       f"parameter file '{cfg.config_file}'")
        inline: dict[str, Any] = {}
        for entry in cfg.steps:
            if entry.insert_after:  # a user's step a workflow inserts: not one of ours
                continue
            key = cls._match_step(entry)
            if key is None:
                key = entry.name or (entry.class_name or "?").rsplit(".", 1)[-1]
                inline[key] = dict(entry.parameters)  # reported as unknown (or ignored)
                continue
            if entry.config_file:
                sub = load_parameter_file(entry.config_file)
                for src, layer, len_ in cls.step_defs[key]._file_layers(
                        sub, f"parameter file '{entry.config_file}'"):
                    layer = {k: v for k, v in layer.items() if k != "name"}
                    layers.append((src, {"steps": {key: layer}}, len_))
            sub_layer = {k: v for k, v in entry.parameters.items() if k != "name"}
            if entry.steps:  # a nested pipeline written inline
                for _src, layer, _l in cls.step_defs[key]._file_layers(
                        StepConfig(entry.class_name, None, {}, entry.steps, None, cfg.source),
                        source):
                    _spec.merge_dicts(sub_layer, {k: v for k, v in layer.items()
                                                  if k != "name"})
            inline[key] = sub_layer
        own = {k: v for k, v in cfg.parameters.items() if k not in ("class", "name")}
        if inline:
            own["steps"] = inline
        if cfg.name:
            own["name"] = cfg.name
        layers.append((source, own, lenient))
        return layers

    @classmethod
    def _kwargs_layers(cls, kwargs: dict[str, Any], cfg_path: str | None
                       ) -> tuple[list[Layer], dict[str, Any]]:
        steps = kwargs.pop("steps", None)
        if steps is None:
            return [], kwargs
        if not isinstance(steps, Mapping):
            raise ValidationError(f"{cls.__name__}: 'steps' must be a dict of step parameters")
        base_dir = os.path.dirname(cfg_path) if cfg_path else os.getcwd()
        layers: list[Layer] = []
        rest_steps: dict[str, Any] = {}
        for key, entry in steps.items():
            if not isinstance(entry, Mapping):
                raise ValidationError(
                    f"{cls.__name__}: steps['{key}'] must be a dict of parameters")
            entry = dict(entry)
            ref = entry.pop("config_file", None)
            entry.pop("name", None)
            entry.pop("class", None)
            if ref is not None:
                if key not in cls.step_defs:
                    raise ValidationError(f"Extra value '{key}' in steps ({cls.__name__} has "
                                          f"steps {', '.join(cls.step_defs)})")
                path = os.path.join(base_dir, os.path.expanduser(os.fspath(ref)))
                sub = load_parameter_file(path)
                for src, layer, len_ in cls.step_defs[key]._file_layers(
                        sub, f"parameter file '{path}'"):
                    layer = {k: v for k, v in layer.items() if k != "name"}
                    layers.append((src, {"steps": {key: layer}}, len_))
            rest_steps[key] = entry
        kwargs["steps"] = rest_steps
        return layers, kwargs

    @classmethod
    def _layers_from_store(cls, store: Any, params: dict[str, Any]) -> list[Layer]:
        """Step parameter references first (lower), then the pipeline's own (higher)."""
        layers: list[Layer] = []
        if hasattr(store, "best_references"):  # every pars-* type in one selection
            store.best_references(params, [c.get_config_reftype()
                                           for c in (*cls.step_defs.values(), cls)])
        for name, step_class in cls.step_defs.items():
            for src, layer, len_ in step_class._layers_from_store(store, params):
                layer = {k: v for k, v in layer.items() if k != "name"}
                layers.append((src, {"steps": {name: layer}}, len_))
        layers += super()._layers_from_store(store, params)
        return layers

    # ------------------------------------------------------------------ parameters
    def get_pars(self, full_spec: bool = True) -> dict[str, Any]:
        pars = super().get_pars(full_spec)
        pars["steps"] = {name: step.get_pars(full_spec) for name, step in self.steps.items()}
        return pars

    def _step_config(self) -> StepConfig:
        config = super()._step_config()
        config.steps = [step._step_config() for step in self.steps.values()]
        return config

    def get_full_metadata(self) -> dict[str, dict[str, Any]]:
        out = super().get_full_metadata()
        for step in self.steps.values():
            if step.metadata:
                out.update(step.get_full_metadata())
        return out

    # ------------------------------------------------------------------ references
    @property
    def reference_file_types(self) -> list[str]:  # type: ignore[override]
        """Reference types of the substeps that will run."""
        types: list[str] = []
        for step in self._unskipped_steps():
            types += [t for t in step.reference_file_types if t not in types]
        return types

    def _unskipped_steps(self) -> list[Step]:
        return [s for s in self.steps.values() if not s.skip and s.prefetch_references]

    def get_ref_override(self, reference_file_type: str) -> Any:
        for step in self._unskipped_steps():
            if reference_file_type in step.reference_file_types:
                value = step.get_ref_override(reference_file_type)
                if value is not None:
                    return value
        return None

    def prefetch(self, *args: Any) -> None:
        """Select every reference the unskipped substeps need, before any of them runs."""
        if not args:
            return
        root = self._root()
        wanted: list[str] = []
        for step in self._unskipped_steps():
            wanted += [t for t in step.reference_file_types
                       if step.get_ref_override(t) is None and t not in root._ref_cache
                       and t not in wanted]
        if wanted:
            root._ref_cache.update(self._select_references(args[0], wanted))

    # ------------------------------------------------------------------ running
    def process(self, *args: Any) -> Any:
        """Run the declared substeps in order on the stage's input (see :meth:`run_steps`)."""
        return self.run_steps(self.stage_input(*args))

    def stage_input(self, *args: Any) -> Any:
        """Open and check the stage's input (subclasses refuse what the stage cannot take)."""
        return self.open_model(args[0]) if args else None

    def run_steps(self, model: Any, members: Mapping[str, list[Any]] | None = None) -> Any:
        """Run the substeps of :meth:`step_names` on ``model``; return the stage's result.

        A step that returns several products (``ramp_fit``: rate and rateints) passes each on:
        the next step runs once per product. A step declaring a member role
        (``workflow_member_role``) gets ``members[role]`` as a second argument and is left out
        when there are none, exactly as the workflow planner leaves it out. After each step
        :meth:`after_step` may save, replace or end the products. The first product is the
        result; the others are saved with the stage's further product suffixes
        (``workflow_product_suffixes``: ``rateints``).
        """
        instrument = getattr(getattr(getattr(model, "meta", None), "instrument", None),
                             "name", None)
        products = [model]
        del model  # each step's input is released once the next step has run
        for name in self.step_names(instrument):
            step = getattr(self, name)
            extra: list[Any] = []
            if step.workflow_member_role is not None:
                extra = [(members or {}).get(step.workflow_member_role) or []]
                if not extra[0]:
                    continue
            before, products = products, []
            for product in before:
                result = step.run(product, *extra)
                products += list(result) if isinstance(result, tuple) else [result]
            products = self.after_step(name, before, products)
            if isinstance(products, EndStage):
                return products[0]
        suffixes = self.workflow_product_suffixes
        if suffixes:
            self._result_suffix = suffixes[0]
        for product, suffix in zip(products[1:], suffixes[1:], strict=False):
            self.save_model(product, suffix=suffix)
        return products[0]

    def after_step(self, name: str, before: list[Any], after: list[Any]) -> list[Any]:
        """Called after substep ``name`` ran on ``before`` and returned ``after``; returns the
        products passed on (an :class:`EndStage` ends the stage with its first product)."""
        return after

    def describe(self) -> dict[str, Any]:
        """Plain description of the pipeline (order, classes, aliases) for the workflow layer."""
        return {
            "class": self._class_path(),
            "steps": {n: _plain_value(c) for n, c in self.step_defs.items()},
            "order": self.step_names(),
            "order_by_instrument": dict(self.step_order_by_instrument),
        }
