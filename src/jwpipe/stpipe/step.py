"""The :class:`Step` base class: parameters, the call/run entry points, references, naming, saving.

Behaviour follows STScI's stpipe (see ``docs/framework.md`` for the list of deliberate
differences): ``call`` is a class method that applies every parameter layer; ``run`` executes an
instance exactly as configured (coded defaults plus attributes set on it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

from jwpipe.errors import ReferenceFileError, ValidationError
from jwpipe.stpipe import naming, refstore, registry
from jwpipe.stpipe import spec as _spec
from jwpipe.stpipe.config_file import StepConfig, load_parameter_file, write_parameter_file
from jwpipe.stpipe.outputs import Output
from jwpipe.stpipe.resources import measure

__all__ = ["FunctionHook", "Step", "SystemCall", "is_datamodel", "preserve_step_pars"]

log = logging.getLogger("jwpipe.stpipe")

#: Parameters that describe the structure of a config rather than a parameter value.
_STRUCTURAL = ("class", "name", "config_file")


def is_datamodel(obj: Any) -> bool:
    """Duck-typed datamodel test: has ``meta`` and ``save``."""
    return hasattr(obj, "meta") and hasattr(obj, "save") and not isinstance(obj, type)


def _plain_value(value: Any) -> Any:
    """A YAML/JSON-safe rendering of a parameter value (for provenance and hashing)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_value(v) for v in value]
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    if is_datamodel(value):
        return f"<model {getattr(value.meta, 'filename', None)}>"
    return str(value)


def parameters_hash(pars: Mapping[str, Any]) -> str:
    """Stable hash of a parameter set (key order does not matter)."""
    text = json.dumps(_plain_value(pars), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class _RecordingHandler(logging.Handler):
    def __init__(self, records: list[str]) -> None:
        super().__init__(logging.NOTSET)
        self.records = records
        self.setFormatter(logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.records.append(self.format(record))
        except Exception:  # pragma: no cover - never let logging break a run
            self.handleError(record)


class Step:
    """Base class of every calibration step.

    Subclasses set ``spec`` (a configobj configspec string), ``class_alias``,
    ``reference_file_types`` and implement :meth:`process`.
    """

    spec = """
    pre_hooks = list(default=list())  # Steps or callables run before this step
    post_hooks = list(default=list())  # Steps or callables run after this step
    output_file = output_file(default=None)  # File to save the output to (name, or path)
    output_dir = string(default=None)  # Directory to write output files to
    output_ext = string(default='.fits')  # Extension of output files
    output_use_model = boolean(default=False)  # Name outputs after each model's meta.filename
    output_use_index = boolean(default=True)  # Unused; kept for stpipe compatibility
    save_results = boolean(default=False)  # Save the step's result
    skip = boolean(default=False)  # Skip this step (inside a pipeline)
    suffix = string(default=None)  # Suffix of output file names (default: the step alias)
    search_output_file = boolean(default=True)  # Use the parent's output_file when not set
    input_dir = string(default=None)  # Directory of inputs named without a directory
    """

    #: Short name (``jump``): the output suffix, the cal_step key, a CLI identifier.
    class_alias: ClassVar[str | None] = None
    #: Reference types this step uses; each adds an ``override_<reftype>`` parameter.
    reference_file_types: ClassVar[list[str]] = []
    #: Fetch references for the whole pipeline before running (fail early).
    prefetch_references: ClassVar[bool] = True
    #: ``meta.cal_step`` attribute recording this step's status (default: the alias).
    cal_step_name: ClassVar[str | None] = None

    # Declared metadata the workflow generator plans with (it never runs step code to plan).
    #: ``"exposure"``: one job per exposure, each input mapped to its own output;
    #: ``"product"``: one job per association product, all members at once.
    workflow_scope: ClassVar[str] = "exposure"
    #: What the step returns, in order, declared once (:class:`~jwpipe.stpipe.outputs.Output`):
    #: saving, the workflow planner and run-step all read it.
    outputs: ClassVar[tuple[Output, ...]] = (Output(),)
    #: The step needs association members of this role (BackgroundStep: "background"); the
    #: workflow plans it only for products that have them.
    workflow_member_role: ClassVar[str | None] = None
    #: Memory a job needs, as a multiple of its input size, plus a fixed allowance (MB).
    workflow_memory: ClassVar[tuple[float, float]] = (3.0, 400.0)

    # ------------------------------------------------------------------ class set-up
    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        registry.register_class(cls)

    @classmethod
    def _base_spec(cls) -> _spec.SpecNode:
        return _spec.load_spec(cls)

    @classmethod
    def load_spec_file(cls) -> _spec.SpecNode:
        """The full spec: merged class specs plus ``override_<reftype>`` for each reference type."""
        spec = cls._base_spec()
        for reftype in cls.reference_file_types:
            if not reftype.replace("-", "_").isidentifier():
                raise ValueError(f"{cls.__name__}: reference type {reftype!r} is not an identifier")
            key = f"override_{reftype}"
            spec[key] = "is_string_or_datamodel(default=None)"
            spec.comments[key] = f"Override the {reftype} reference file"
        return spec

    @classmethod
    def print_configspec(cls) -> str:
        """Return (and print) the spec as text, one ``name = check  # help`` line each."""
        text = "\n".join(_spec_lines(cls.load_spec_file()))
        print(text)
        return text

    @classmethod
    def get_config_reftype(cls) -> str:
        """Reference type of this class's parameter reference: ``pars-<class name lower>``."""
        return f"pars-{cls.__name__.lower()}"

    # ------------------------------------------------------------------ construction
    def __init__(
        self,
        name: str | None = None,
        parent: Step | None = None,
        config_file: str | None = None,
        _validate_kwds: bool = True,
        **kws: Any,
    ) -> None:
        self._reference_files_used: list[tuple[str, str]] = []
        self._log_records: list[str] = []
        self._input_filename: str | None = None
        self._input_dir: str | None = None
        self._status: str | None = None
        self._ref_cache: dict[str, Any] = {}
        self._crds_params: dict[str, Any] | None = None
        #: Suffix of the result when the user set none (a pipeline's product: ``rate``).
        self._result_suffix: str | None = None
        self.metadata: dict[str, Any] = {}
        self.name = name or self.__class__.__name__
        self.parent = parent
        self.config_file = config_file
        spec = self.load_spec_file()
        if _validate_kwds:
            typed = _spec.check_layer(spec, self._prepare_kwargs(kws, config_file),
                                      f"the arguments of {self.__class__.__name__}")
        else:
            typed = dict(kws)
        values = _spec.apply_defaults(spec, typed)
        self._set_parameters(values)
        self.log = logging.getLogger(f"jwpipe.{self.qualified_name}")
        self.log.debug("%s instance created.", self.__class__.__name__)

    def _prepare_kwargs(self, kws: dict[str, Any], config_file: str | None) -> dict[str, Any]:
        return dict(kws)

    def _set_parameters(self, values: Mapping[str, Any]) -> None:
        for key, value in values.items():
            setattr(self, key, value)

    @property
    def qualified_name(self) -> str:
        """``Detector1Pipeline.jump`` for a substep, the step name otherwise."""
        return f"{self.parent.qualified_name}.{self.name}" if self.parent else self.name

    @property
    def input_dir(self) -> str:
        return self.search_attr("_input_dir", "") or ""

    @input_dir.setter
    def input_dir(self, value: str | None) -> None:
        self._input_dir = value

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__} {self.qualified_name}>"

    # ------------------------------------------------------------------ configuration layers
    @classmethod
    def call(cls, *args: Any, config_file: str | os.PathLike[str] | None = None,
             **kwargs: Any) -> Any:
        """Create a fully configured instance and run it on ``args``.

        Parameter precedence, highest first: keyword arguments (including ``steps={...}``),
        the ``config_file`` (and, for pipelines, files it references), the reference store's
        parameter references, coded defaults. Attributes set on an existing instance are *not*
        used: that is what :meth:`run` is for.
        """
        configure_log = kwargs.pop("configure_log", True)
        handler = _console_handler() if configure_log else None
        try:
            config, cfg_path = cls.build_config(args[0] if args else None,
                                                config_file=config_file, **kwargs)
            name = config.pop("name", None) or cls.__name__
            config.pop("class", None)
            instance = cls.from_config_section(config, name=name, config_file=cfg_path)
            return instance.run(*args)
        finally:
            if handler is not None:
                logging.getLogger("jwpipe").removeHandler(handler)

    @classmethod
    def build_config(cls, input: Any = None, **kwargs: Any) -> tuple[dict[str, Any], str | None]:
        """Merge every parameter layer for ``cls`` and ``input``; return (config, config_file).

        The result is type-checked layer by layer (errors name their source) but not yet
        completed with defaults.
        """
        config_file = kwargs.pop("config_file", None)
        disable = kwargs.pop("disable_ref_steppars", None)
        spec = cls.load_spec_file()
        layers: list[tuple[str, Mapping[str, Any], bool]] = list(cls._coded_default_layers())
        if input is not None:
            layers += cls._reference_layers(input, disable)
        else:
            log.debug("No input given: reference parameter files are not looked up")
        cfg_path = None
        if config_file is not None:
            cfg_path = os.path.abspath(os.fspath(config_file))
            cfg = load_parameter_file(cfg_path)
            cls._check_config_class(cfg)
            layers += cls._file_layers(cfg, f"parameter file '{cfg_path}'")
        kw_layers, kw_rest = cls._kwargs_layers(kwargs, cfg_path)
        layers += kw_layers
        layers.append(("keyword arguments", kw_rest, False))
        return _merge_layers(spec, layers), cfg_path

    @classmethod
    def _coded_default_layers(cls) -> list[tuple[str, Mapping[str, Any], bool]]:
        return []

    @classmethod
    def _check_config_class(cls, cfg: StepConfig) -> None:
        """A parameter file written for another step is an error (checked without importing)."""
        if not cfg.class_name:
            return
        last = registry.jwpipe_class_name(cfg.class_name)
        names = {k.__name__ for k in cls.__mro__} | {cls.class_alias or ""}
        if last not in names:
            unknown = registry.describe_unknown(cfg.class_name)
            if unknown:
                raise ValidationError(f"Parameter file '{cfg.source}': class {unknown}")
            raise ValidationError(
                f"Parameter file '{cfg.source}' is for class '{cfg.class_name}', not "
                f"{cls.__name__}"
            )

    @classmethod
    def _file_layers(cls, cfg: StepConfig, source: str) -> list[tuple[str, dict[str, Any], bool]]:
        """Layers of one parameter file: what it references first (lower), then itself."""
        lenient = bool(cfg.class_name and cfg.class_name.startswith("jwst."))
        layers: list[tuple[str, dict[str, Any], bool]] = []
        if cfg.config_file:
            ref = load_parameter_file(cfg.config_file)
            layers += cls._file_layers(ref, f"parameter file '{cfg.config_file}'")
        layer = {k: v for k, v in cfg.parameters.items() if k not in _STRUCTURAL}
        if cfg.name:
            layer["name"] = cfg.name
        layers.append((source, layer, lenient))
        return layers

    @classmethod
    def _kwargs_layers(
        cls, kwargs: dict[str, Any], cfg_path: str | None
    ) -> tuple[list[tuple[str, dict[str, Any], bool]], dict[str, Any]]:
        return [], dict(kwargs)

    @classmethod
    def _reference_layers(cls, input: Any, disable: bool | None
                          ) -> list[tuple[str, dict[str, Any], bool]]:
        if refstore.ref_steppars_disabled(disable):
            log.debug("Reference parameter files disabled")
            return []
        store = refstore.get_store()
        if store is None:
            return []
        params = cls._dataset_parameters(input)
        if params is None:
            return []
        return cls._layers_from_store(store, params)

    @classmethod
    def _layers_from_store(cls, store: Any, params: dict[str, Any]
                           ) -> list[tuple[str, dict[str, Any], bool]]:
        """Layers from the store's parameter reference for this class (``pars-<class>``)."""
        path = store.get_reference_file(params, cls.get_config_reftype())
        if not path or path == "N/A":
            return []
        log.info("Parameters of %s from reference file %s", cls.__name__, os.path.basename(path))
        return cls._file_layers(load_parameter_file(path), f"reference parameter file '{path}'")

    @classmethod
    def get_config_from_reference(cls, dataset: Any, disable: bool | None = None,
                                  crds_observatory: str | None = None) -> dict[str, Any]:
        """This class's parameters from the reference store (``pars-<class lower>``).

        Returns an empty dict when disabled, when no store is configured, when the dataset's
        parameters cannot be read, or when the store has no parameter reference for it.
        """
        return _merge_layers(cls.load_spec_file(), cls._reference_layers(dataset, disable))

    @classmethod
    def _dataset_parameters(cls, dataset: Any) -> dict[str, Any] | None:
        try:
            return cls._get_crds_parameters(dataset)[0]
        except (OSError, TypeError, ValueError) as exc:
            log.warning("Cannot read selection parameters of %r: %s", dataset, exc)
            return None

    @classmethod
    def _get_crds_parameters(cls, dataset: Any) -> tuple[dict[str, Any], str]:
        """Reference-selection parameters of a dataset (dict, model, file or association)."""
        if isinstance(dataset, Mapping):
            return dict(dataset), "jwst"
        if hasattr(dataset, "get_crds_parameters"):
            return dict(dataset.get_crds_parameters()), "jwst"
        if isinstance(dataset, Sequence) and not isinstance(dataset, str) and len(dataset):
            return cls._get_crds_parameters(dataset[0])
        if isinstance(dataset, (str, os.PathLike)):
            path = os.fspath(dataset)
            if path.endswith(".json"):
                from jwpipe.associations import load_asn

                asn = load_asn(path)
                science = [m.path for p in asn.products for m in p.science]
                if not science:
                    raise ValueError(f"association {path} has no science members")
                return cls._get_crds_parameters(str(science[0]))
            from jwpipe.errors import JwpipeError
            from jwpipe.references.headers import parameters_from_file

            try:
                return parameters_from_file(path), "jwst"
            except JwpipeError as exc:
                raise ValueError(str(exc)) from None
        raise TypeError(f"cannot get selection parameters from {type(dataset).__name__}")

    @classmethod
    def from_config_file(cls, config_file: str | os.PathLike[str], parent: Step | None = None,
                         name: str | None = None) -> Step:
        """Build an instance from a parameter file; its ``class`` may name a subclass."""
        path = os.path.abspath(os.fspath(config_file))
        cfg = load_parameter_file(path)
        target = cls
        if cfg.class_name:
            target = registry.resolve_step_class(cfg.class_name,
                                                 what=f"class in parameter file '{path}'")
            if not issubclass(target, cls):
                raise ValidationError(
                    f"Parameter file '{path}' is for {target.__name__}, not {cls.__name__}"
                )
        merged = _merge_layers(target.load_spec_file(),
                               target._file_layers(cfg, f"parameter file '{path}'"))
        name = name or merged.pop("name", None) or target.__name__
        return target.from_config_section(merged, parent=parent, name=name, config_file=path)

    @classmethod
    def from_config_section(cls, config: Mapping[str, Any], parent: Step | None = None,
                            name: str | None = None, config_file: str | None = None) -> Step:
        """Build an instance from an already merged configuration mapping."""
        values = {k: v for k, v in config.items() if k not in _STRUCTURAL}
        name = name or config.get("name") or cls.__name__
        return cls(name=name, parent=parent, config_file=config_file, **values)

    # ------------------------------------------------------------------ parameters
    def _pars_spec(self, full_spec: bool = True) -> _spec.SpecNode:
        if full_spec:
            return self._base_spec()
        own = self.__class__.__dict__.get("spec")
        return _spec.parse_spec_string(own) if isinstance(own, str) and own.strip() else \
            _spec.SpecNode()

    def get_pars(self, full_spec: bool = True) -> dict[str, Any]:
        """Current parameter values (``override_*`` excluded), re-validated.

        Raises
        ------
        ValidationError
            An attribute was set to a value of the wrong type.
        """
        spec = self._pars_spec(full_spec)
        values = {k: getattr(self, k) for k in spec if not isinstance(spec[k], _spec.SpecNode)
                  and hasattr(self, k)}
        if "input_dir" in spec:
            values["input_dir"] = self._input_dir
        typed = _spec.check_layer(spec, values, f"attributes of {self.qualified_name}")
        if "input_dir" in typed and typed["input_dir"] is None:
            typed["input_dir"] = ""
        return {k: typed.get(k) for k in spec if k in typed}

    def update_pars(self, parameters: Mapping[str, Any]) -> None:
        """Set the parameters present in :meth:`get_pars` (others are ignored)."""
        current = self.get_pars()
        for key, value in parameters.items():
            if key == "steps":
                for sub, pars in (value or {}).items():
                    substep = getattr(self, sub, None)
                    if isinstance(substep, Step):
                        substep.update_pars(pars)
            elif key in current:
                setattr(self, key, value)
            else:
                log.debug("update_pars: %s has no parameter %r", self.qualified_name, key)

    def _class_path(self) -> str:
        return f"{self.__class__.__module__}.{self.__class__.__name__}"

    def _step_config(self) -> StepConfig:
        pars = self.get_pars()
        pars.pop("steps", None)
        return StepConfig(self._class_path(), self.name, _plain_value(pars))

    def export_config(self, filename: str | os.PathLike[str], include_metadata: bool = False
                      ) -> str:
        """Write this step's parameters (recursively for pipelines) as an ASDF parameter file."""
        return write_parameter_file(self._step_config(), filename,
                                    include_metadata=include_metadata)

    # ------------------------------------------------------------------ running
    def run(self, *args: Any) -> Any:
        """Run this instance as configured; return the result (a model, or a tuple/list)."""
        top = self.parent is None
        records = [] if top else self._root()._log_records
        self._log_records = records
        if top:
            self.get_pars()  # bad attribute values surface here, before any work
        handler = _RecordingHandler(records) if top else None
        if handler is not None:
            logging.getLogger("jwpipe").addHandler(handler)
            logging.getLogger("jwpipe").setLevel(min(logging.getLogger("jwpipe").level or
                                                     logging.INFO, logging.INFO))
        try:
            with measure() as stats:
                result = self._run(args, top)
            self.metadata = {"status": self._status or "COMPLETE", **stats}
            self.log.info("%s done in %.3f s (peak %.0f MiB)", self.qualified_name,
                          stats["wall_time_s"], stats["peak_rss_mb"])
            self._record_timing(result)
            if not self.skip and self.save_results:
                self._save_results(result)
            return result
        finally:
            if handler is not None:
                logging.getLogger("jwpipe").removeHandler(handler)

    def _run(self, args: tuple[Any, ...], top: bool) -> Any:
        self.log.info("Step %s running with args %s.", self.qualified_name,
                      tuple(_describe(a) for a in args))
        if args:
            self.set_primary_input(args[0])
        if self.output_file is not None or self.output_dir is not None:
            self.save_results = True  # output_dir means "save", as the seed documents promise
        self._status = None
        for hook in self._hooks("pre"):
            new = hook.run(*args)
            if new is not None:
                args = (new,)
        self._reference_files_used = []
        if top and self.skip:
            self.log.info("Step run as standalone, so skip set to False")
            self.skip = False
        if self.skip:
            self.log.info("Step %s skipped.", self.qualified_name)
            self._status = "SKIPPED"
            result = args[0] if args else None
        else:
            if self.prefetch_references and args:
                self.prefetch(*args)
            result = self.process(*args)
        for hook in self._hooks("post"):
            new = hook.run(result)
            if new is not None:
                result = new
        for item in _as_list(result):
            self.finalize_result(item, self._reference_files_used)
        self._reference_files_used = []
        return result

    def _hooks(self, kind: str) -> list[Step]:
        from jwpipe.stpipe.hooks import resolve_hooks

        return resolve_hooks(self, getattr(self, f"{kind}_hooks") or [], kind)

    def process(self, *args: Any) -> Any:
        """The step's work. Subclasses implement it."""
        raise NotImplementedError(f"{self.__class__.__name__} does not implement process()")

    # ------------------------------------------------------------------ inputs
    def search_attr(self, attribute: str, default: Any = None, parent_first: bool = False) -> Any:
        """This step's value of ``attribute`` if not None, else the nearest ancestor's."""
        chain: list[Step] = []
        step: Step | None = self
        while step is not None:
            chain.append(step)
            step = step.parent
        if parent_first:
            chain.reverse()
        for s in chain:
            if attribute.startswith("_"):
                value = s.__dict__.get(attribute)
            else:
                value = getattr(s, attribute, None)
            if value is not None:
                return value
        return default

    def set_primary_input(self, obj: Any, exclusive: bool = True) -> None:
        """Remember the input's file name (names outputs) and directory (finds other inputs)."""
        parent_name = self.parent.search_attr("_input_filename") if self.parent else None
        if isinstance(obj, (str, os.PathLike)):
            path = os.fspath(obj)
            if self._input_dir is None and not (self.parent and self.parent.search_attr(
                    "_input_dir")) and os.path.isfile(path):
                self._input_dir = os.path.dirname(os.path.abspath(path))
            name = path
        elif is_datamodel(obj):
            name = getattr(obj.meta, "filename", None)
        elif isinstance(obj, Sequence) and obj and not isinstance(obj, str):
            name = getattr(getattr(obj, "meta", None), "filename", None) or \
                getattr(getattr(obj[0], "meta", None), "filename", None)
        else:
            name = None
        if name and (parent_name is None or not exclusive):
            self._input_filename = str(name)

    def make_input_path(self, file_path: str | os.PathLike[str]) -> str:
        """A bare file name is looked up in ``input_dir``; anything else is returned unchanged."""
        path = os.fspath(file_path)
        if os.path.dirname(path) == "" and self.input_dir:
            return os.path.join(self.input_dir, path)
        return path

    def open_model(self, init: Any, **kwargs: Any) -> Any:
        """Open a model from a path (relative to ``input_dir``) or return a given model."""
        if not isinstance(init, (str, os.PathLike)):
            return init
        from jwpipe import datamodels

        return datamodels.open(self.make_input_path(init), **kwargs)

    def prepare_input(self, init: Any) -> Any:
        """The model to work on: opened from a path, or a copy of a caller's model.

        A standalone step never modifies a model the caller passed in; inside a pipeline the
        intermediate models belong to the pipeline and are updated in place to save memory.
        """
        model = self.open_model(init)
        if model is init and self.parent is None and hasattr(model, "copy"):
            return model.copy()
        return model

    # ------------------------------------------------------------------ references
    def get_ref_override(self, reference_file_type: str) -> Any:
        """The user's override for a reference type: a model, ``"N/A"``, ``""``, a path, or None."""
        value = getattr(self, f"override_{reference_file_type}", None)
        if value is None or is_datamodel(value) or value in ("N/A", ""):
            return value
        return os.path.abspath(os.path.expanduser(os.fspath(value)))

    def get_reference_file(self, input_file: Any, reference_file_type: str) -> Any:
        """The reference file of a type for an input: a path, ``"N/A"``, or an override model.

        Raises
        ------
        ReferenceFileError
            No store is configured and there is no override, the store has no match, or the
            override path does not exist.
        """
        override = self.get_ref_override(reference_file_type)
        if is_datamodel(override):
            self._reference_files_used.append(
                (reference_file_type, getattr(override.meta, "filename", None) or "user model"))
            return override
        if override == "":
            return ""
        if override is not None:
            if override != "N/A" and not os.path.isfile(override):
                raise ReferenceFileError(
                    f"{self.qualified_name}: override_{reference_file_type} file '{override}' "
                    "does not exist")
            self.log.info("Override for %s reference file is '%s'.", reference_file_type, override)
            self._reference_files_used.append((reference_file_type, override))
            return override
        root = self._root()
        if reference_file_type in root._ref_cache:
            path = root._ref_cache[reference_file_type]
        else:
            path = self._select_reference(input_file, reference_file_type)
        if path == "N/A":
            self.log.info("CRDS context %s says the %s reference is N/A for these data: "
                          "the correction is skipped", _store_context(), reference_file_type)
        from jwpipe.references.crds_cache import CRDS_URI

        self._reference_files_used.append(
            (reference_file_type, path if path == "N/A" else CRDS_URI + os.path.basename(path)))
        return path

    def _root(self) -> Step:
        step = self
        while step.parent is not None:
            step = step.parent
        return step

    def _select_reference(self, input_file: Any, reftype: str) -> str:
        return self._select_references(input_file, [reftype])[reftype]

    def _select_references(self, input_file: Any, reftypes: list[str]) -> dict[str, str]:
        store = refstore.get_store()
        if store is None:
            raise ReferenceFileError(
                f"{self.qualified_name}: no CRDS cache for the '{reftypes[0]}' reference: set "
                f"CRDS_PATH (or give a cache with --refs DIR), or set override_{reftypes[0]}")
        root = self._root()
        if root._crds_params is None:
            root._crds_params = self._get_crds_parameters(input_file)[0]
        if hasattr(store, "best_references"):
            paths = store.best_references(root._crds_params, reftypes)
        else:
            paths = {t: store.get_reference_file(root._crds_params, t) for t in reftypes}
        for reftype, path in paths.items():
            self.log.info("Using %s reference file %s", reftype, path)
        return paths

    def prefetch(self, *args: Any) -> None:
        """Select every reference the step will need before any work starts (fail early)."""
        if not args or self.skip:
            return
        types = list(self.reference_file_types)
        if not types:
            return
        root = self._root()
        wanted = [t for t in types
                  if self.get_ref_override(t) is None and t not in root._ref_cache]
        if wanted:
            root._ref_cache.update(self._select_references(args[0], wanted))
        self._reference_files_used = []

    # ------------------------------------------------------------------ results
    def record_step_status(self, model: Any, status: str) -> None:
        """Set this step's ``meta.cal_step`` status on a model (COMPLETE, SKIPPED or FAILED)."""
        if status not in ("COMPLETE", "SKIPPED", "FAILED"):
            raise ValueError(f"invalid step status {status!r}")
        self._status = status
        _set_cal_step(model, self.cal_step_name or self.class_alias, status)

    def finalize_result(self, result: Any, reference_files_used: list[tuple[str, str]]) -> None:
        """Record status, reference files and provenance in a result model."""
        if not is_datamodel(result):
            if isinstance(result, Sequence) and not isinstance(result, (str, bytes)):
                for item in result:
                    self.finalize_result(item, reference_files_used)
            return
        key = self.cal_step_name or self.class_alias
        if key and not _is_pipeline(self):
            _set_cal_step(result, key, self._status or "COMPLETE")
        for reftype, name in reference_files_used:
            _set_ref_file(result, reftype, name)
        from jwpipe.references.crds_cache import CRDS_URI, crds_version

        if any(str(n).startswith(CRDS_URI) for _, n in reference_files_used):
            _set_ref_file(result, "crds", None, context=_store_context(),
                          version=crds_version())
        extra = getattr(result, "extra", None)
        if isinstance(extra, dict):
            from jwpipe import __version__

            pars = _plain_value(self.get_pars())
            entry = {
                "step": self.qualified_name,
                "class": self._class_path(),
                "status": self._status or "COMPLETE",
                "jwpipe_version": __version__,
                "parameters_hash": parameters_hash(pars),
                "reference_files": {t: n for t, n in reference_files_used},
            }
            extra.setdefault("jwpipe", {}).setdefault("steps", []).append(entry)

    def _record_timing(self, result: Any) -> None:
        for item in _as_list(result):
            extra = getattr(item, "extra", None) if is_datamodel(item) else None
            if isinstance(extra, dict):
                steps = extra.get("jwpipe", {}).get("steps", [])
                for entry in reversed(steps):
                    if entry.get("step") == self.qualified_name and "wall_time_s" not in entry:
                        entry["wall_time_s"] = round(self.metadata["wall_time_s"], 4)
                        entry["peak_rss_mb"] = self.metadata["peak_rss_mb"]
                        break

    def get_full_metadata(self) -> dict[str, dict[str, Any]]:
        """Timing and memory of this step (and substeps), keyed by qualified name."""
        return {self.qualified_name: dict(self.metadata)}

    @property
    def log_records(self) -> list[str]:
        """Formatted log messages of the most recent run."""
        return list(self._log_records)

    # ------------------------------------------------------------------ naming and saving
    def default_output_file(self, input_file: str | None = None) -> str:
        """The base name outputs are named after: the primary input, else ``step_<name>``."""
        name = input_file or self.search_attr("_input_filename")
        if name:
            return str(name)
        return f"step_{self.name}{self.output_ext or ''}"

    def default_suffix(self) -> str:
        """The output suffix: the step's alias (``jump``) however it is run (jwst#2827)."""
        return self.class_alias or self.name.lower()

    def remove_suffix(self, name: str) -> tuple[str, str]:
        """Remove one known suffix from a stem; return (root, separator)."""
        return naming.remove_suffix(name)

    def _output_dir(self, from_output_file: str | None) -> str:
        out_dir = self.search_attr("output_dir")
        if out_dir:
            return os.path.expandvars(os.path.expanduser(out_dir))
        if from_output_file and os.path.dirname(from_output_file):
            return os.path.dirname(os.path.expanduser(from_output_file))
        return ""

    def make_output_path(self, basepath: str | None = None, ext: str | None = None,
                         suffix: str | bool | None = None, **components: Any) -> str:
        """Path of an output file: ``[output_dir/]<root>[_<comp>...]_<suffix>.<ext>``."""
        from_output_file = None
        if basepath is None:
            if self.search_output_file:
                basepath = from_output_file = self.search_attr("output_file")
            if basepath is None:
                basepath = self.default_output_file()
        if suffix is None:
            suffix = self.suffix or self._result_suffix or self.default_suffix()
        ext = ext if ext is not None else (self.output_ext or None)
        name = naming.build_output_name(basepath, suffix=suffix, ext=ext, components=components)
        return os.path.join(self._output_dir(from_output_file), name)

    def save_model(self, model: Any, suffix: str | None = None, idx: int | None = None,
                   output_file: str | None = None, force: bool = False, **components: Any
                   ) -> str | list[str] | None:
        """Save a model (or each model of a container) under the suffix scheme.

        Nothing is written unless ``force``, ``save_results`` or an output file is set.
        """
        output_file = output_file or self.output_file
        if not (force or self.save_results or output_file):
            return None
        if not is_datamodel(model) and isinstance(model, Sequence):
            return [p for i, m in enumerate(model)
                    for p in _as_list(self.save_model(m, suffix=suffix, idx=i,
                                                      output_file=output_file, force=True,
                                                      **components))]
        basepath = output_file
        if self.output_use_model or (output_file is None and not self.search_output_file):
            basepath = getattr(model.meta, "filename", None) or basepath
            idx = None
        if basepath is not None and basepath is output_file:
            path = self._path_from_output_file(output_file, suffix, idx, components)
        else:
            path = self.make_output_path(basepath=basepath, suffix=suffix, idx=idx, **components)
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        saved = model.save(path)
        path = saved if isinstance(saved, str) else path
        self.log.info("Saved model in %s", path)
        return path

    def _path_from_output_file(self, output_file: str, suffix: str | None, idx: int | None,
                               components: dict[str, Any]) -> str:
        if suffix is None:
            suffix = self.suffix or self._result_suffix or self.default_suffix()
        name = naming.build_output_name(output_file, suffix=suffix, ext=self.output_ext or None,
                                        components={"idx": idx, **components})
        return os.path.join(self._output_dir(output_file), name)

    def _save_results(self, result: Any) -> None:
        items = list(result) if isinstance(result, (list, tuple)) else [result]
        declared = [o.suffix for o in self.outputs]
        named = declared if (len(declared) > 1 and len(declared) == len(items)
                             and None not in declared and not self.suffix) else None
        for i, item in enumerate(items):
            idx = i if len(items) > 1 and not named else None
            if is_datamodel(item) or isinstance(item, Sequence):
                self.save_model(item, idx=idx, suffix=named[i] if named else None)
            elif hasattr(item, "save"):
                item.save(self.make_output_path(idx=idx))

    # ------------------------------------------------------------------ command line
    @staticmethod
    def from_cmdline(args: list[str]) -> Step:
        """Run like ``jwpipe strun ARGS``; return the step instance after it ran."""
        from jwpipe.stpipe.cmdline import step_from_cmdline

        return step_from_cmdline(args)


_WARNED_IGNORED: set[str] = set()


def _merge_layers(spec: _spec.SpecNode, layers: list[tuple[str, Mapping[str, Any], bool]]
                  ) -> dict[str, Any]:
    """Type-check each layer (lowest first) and merge them; ``name`` comes from the highest
    file layer that has one. Keys ignored in lenient (jwst-written) layers are listed in one
    warning."""
    merged: dict[str, Any] = {}
    ignored_all: list[str] = []
    for source, layer, lenient in layers:
        layer = dict(layer)
        name = layer.pop("name", None) if source != "keyword arguments" else None
        ignored: list[str] = []
        _spec.merge_dicts(merged, _spec.check_layer(spec, layer, source, lenient=lenient,
                                                    ignored=ignored))
        if ignored:
            ignored_all.append(f"{source}: {', '.join(ignored)}")
        if name:
            merged["name"] = name
    message = "; ".join(ignored_all)
    if message and message not in _WARNED_IGNORED:  # once per process, not once per dataset
        _WARNED_IGNORED.add(message)
        log.warning("Parameters and steps jwpipe does not implement were ignored: %s", message)
    return merged


def _as_list(result: Any) -> list[Any]:
    if isinstance(result, (list, tuple)):
        return list(result)
    return [] if result is None else [result]


def _describe(arg: Any) -> str:
    if is_datamodel(arg):
        return f"<{type(arg).__name__} {getattr(arg.meta, 'filename', None)}>"
    return repr(arg) if not isinstance(arg, (str, os.PathLike)) else os.fspath(arg)


def _is_pipeline(step: Step) -> bool:
    return bool(getattr(step, "step_defs", None)) or hasattr(step, "step_order")


def _set_cal_step(model: Any, key: str | None, status: str) -> None:
    if not key:
        return
    targets = [model] if is_datamodel(model) else list(model) if isinstance(model, Sequence) \
        else []
    for m in targets:
        try:
            setattr(m.meta.cal_step, key, status)
        except AttributeError:
            log.debug("cannot record cal_step.%s on %r", key, m)


def _store_context() -> str | None:
    store = refstore.get_store()
    return getattr(store, "context", None) if store is not None else None


def _set_ref_file(model: Any, reftype: str, name: str | None, context: str | None = None,
                  version: str | None = None) -> None:
    try:
        entry = getattr(model.meta.ref_file, reftype)
        if context is not None:
            entry.context_used = context
            entry.sw_version = version
        else:
            entry.name = name
    except AttributeError:
        log.debug("cannot record ref_file.%s on %r", reftype, model)


def _console_handler() -> logging.Handler | None:
    """Default console logging for ``call`` when the application configured none."""
    logger = logging.getLogger("jwpipe")
    if logger.handlers or logging.getLogger().handlers:
        return None
    handler = logging.StreamHandler()
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s"))
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    return handler


def _spec_lines(spec: _spec.SpecNode, indent: int = 0) -> list[str]:
    lines = []
    pad = "    " * indent
    for key, check in spec.items():
        if isinstance(check, _spec.SpecNode):
            lines.append(f"{pad}{'[' * (indent + 1)}{key}{']' * (indent + 1)}")
            lines += _spec_lines(check, indent + 1)
        else:
            comment = spec.comments.get(key)
            lines.append(f"{pad}{key} = {check}" + (f"  # {comment}" if comment else ""))
    return lines


class FunctionHook(Step):
    """Wraps a Python callable so it can serve as a hook."""

    spec = """
    output_ext = string(default='.fits')
    """

    def __init__(self, *args: Any, function: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.function = function

    def process(self, *args: Any) -> Any:
        return self.function(*args)


class SystemCall(Step):
    """Runs a shell command as a hook; only exists when shell hooks were enabled from Python."""

    spec = """
    command = string()  # The command; {0}, {1}... are the inputs' file names
    """

    def process(self, *args: Any) -> Any:
        from jwpipe.stpipe.hooks import run_shell

        paths = []
        for i, arg in enumerate(args):
            if is_datamodel(arg):
                path = os.path.abspath(f"{self.qualified_name}.{i:04d}{self.output_ext}")
                arg.save(path)
                paths.append(path)
            else:
                paths.append(str(arg))
        out = run_shell(self.command, paths)
        if out:
            self.log.info("%s", out.rstrip())
        return None


@contextmanager
def preserve_step_pars(step: Step) -> Iterator[dict[str, Any]]:
    """Snapshot ``step.get_pars()`` and restore it on exit (parameters changed inside revert)."""
    saved = step.get_pars()
    try:
        yield saved
    finally:
        step.update_pars(saved)
