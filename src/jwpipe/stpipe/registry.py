"""Which classes a name in a parameter file or on the command line may resolve to.

A parameter file is data, not code: its ``class:`` may only name a Step subclass that jwpipe knows
(a built-in step or pipeline, by dotted path, class name or alias; a Step subclass already defined
in this process; or the same class under its STScI ``jwst`` name), a class an installed distribution
registers through the ``jwpipe.steps`` entry-point group (:func:`entry_point_classes`), or a dotted
path under a module prefix the user explicitly allowed from Python (:func:`allow_class_paths`) or
the command line (``--allow-import``). Anything else is refused *before* any module is imported, so
a parameter file cannot make jwpipe run code sitting next to it (stpipe imports it, then checks).

The built-in table is written out, not discovered, so ``jwpipe list`` and alias resolution do not
import numpy-heavy step modules ("keep the CLI snappy").
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jwpipe.errors import ValidationError

if TYPE_CHECKING:
    from jwpipe.stpipe.step import Step

__all__ = [
    "BUILTIN_STEPS",
    "JWST_CLASSES",
    "StepEntry",
    "allow_class_paths",
    "builtin_entries",
    "describe_unknown",
    "entry_point_classes",
    "jwpipe_class_name",
    "known_suffixes",
    "register_class",
    "resolve_step_class",
]


@dataclass(frozen=True)
class StepEntry:
    """A built-in step or pipeline: dotted class path, alias, and whether it is a pipeline."""

    path: str
    alias: str | None
    is_pipeline: bool

    @property
    def class_name(self) -> str:
        return self.path.rsplit(".", 1)[1]


#: Built-in steps and pipelines (dotted path, alias, is_pipeline).
BUILTIN_STEPS: tuple[StepEntry, ...] = (
    StepEntry("jwpipe.pipeline.Detector1Pipeline", "calwebb_detector1", True),
    StepEntry("jwpipe.pipeline.Image2Pipeline", "calwebb_image2", True),
    StepEntry("jwpipe.pipeline.Image3Pipeline", "calwebb_image3", True),
    StepEntry("jwpipe.steps.GroupScaleStep", "group_scale", False),
    StepEntry("jwpipe.steps.DQInitStep", "dq_init", False),
    StepEntry("jwpipe.steps.SaturationStep", "saturation", False),
    StepEntry("jwpipe.steps.SuperbiasStep", "superbias", False),
    StepEntry("jwpipe.steps.RefPixStep", "refpix", False),
    StepEntry("jwpipe.steps.LinearityStep", "linearity", False),
    StepEntry("jwpipe.steps.DarkCurrentStep", "dark_current", False),
    StepEntry("jwpipe.steps.JumpStep", "jump", False),
    StepEntry("jwpipe.steps.RampFitStep", "ramp_fit", False),
    StepEntry("jwpipe.steps.GainScaleStep", "gain_scale", False),
    StepEntry("jwpipe.steps.AssignWcsStep", "assign_wcs", False),
    StepEntry("jwpipe.steps.BackgroundStep", "bkg_subtract", False),
    StepEntry("jwpipe.steps.FlatFieldStep", "flat_field", False),
    StepEntry("jwpipe.steps.PhotomStep", "photom", False),
    StepEntry("jwpipe.steps.TweakRegStep", "tweakreg", False),
    StepEntry("jwpipe.steps.SkyMatchStep", "skymatch", False),
    StepEntry("jwpipe.steps.OutlierDetectionStep", "outlier_detection", False),
    StepEntry("jwpipe.steps.ResampleStep", "resample", False),
    StepEntry("jwpipe.steps.SourceCatalogStep", "source_catalog", False),
)

#: Every step and pipeline class of jwst's Detector1, Image2 and Image3 pipelines, by jwst class
#: name -> the jwpipe class name that implements it, or None where jwpipe has no such step.
#: (jwst spells some names differently: SuperBiasStep is jwpipe's SuperbiasStep.)
JWST_CLASSES: dict[str, str | None] = {
    "Detector1Pipeline": "Detector1Pipeline",
    "Image2Pipeline": "Image2Pipeline",
    "Image3Pipeline": "Image3Pipeline",
    # calwebb_detector1
    "GroupScaleStep": "GroupScaleStep",
    "DQInitStep": "DQInitStep",
    "EmiCorrStep": None,
    "SaturationStep": "SaturationStep",
    "IPCStep": None,
    "SuperBiasStep": "SuperbiasStep",
    "RefPixStep": "RefPixStep",
    "RscdStep": None,
    "FirstFrameStep": None,
    "LastFrameStep": None,
    "LinearityStep": "LinearityStep",
    "DarkCurrentStep": "DarkCurrentStep",
    "ResetStep": None,
    "PersistenceStep": None,
    "ChargeMigrationStep": None,
    "JumpStep": "JumpStep",
    "PictureFrameStep": None,
    "CleanFlickerNoiseStep": None,
    "RampFitStep": "RampFitStep",
    "GainScaleStep": "GainScaleStep",
    # calwebb_image2
    "BackgroundStep": "BackgroundStep",
    "AssignWcsStep": "AssignWcsStep",
    "FlatFieldStep": "FlatFieldStep",
    "PhotomStep": "PhotomStep",
    "ResampleStep": "ResampleStep",
    # calwebb_image3
    "AssignMTWcsStep": None,
    "TweakRegStep": "TweakRegStep",
    "SkyMatchStep": "SkyMatchStep",
    "OutlierDetectionStep": "OutlierDetectionStep",
    "SourceCatalogStep": "SourceCatalogStep",
}


def jwpipe_class_name(class_name: str) -> str:
    """The jwpipe class name a parameter file's ``class`` stands for (last dotted part; a jwst
    class translated through :data:`JWST_CLASSES`), without importing anything.

    A jwst class jwpipe does not implement keeps its own name (it then matches nothing).
    """
    ident = class_name.strip()
    last = ident.rsplit(".", 1)[-1]
    if ident.startswith("jwst.") or (ident == last and last not in _BUILTIN_NAMES):
        return JWST_CLASSES.get(last) or last
    return last


def describe_unknown(class_name: str) -> str | None:
    """Why ``class_name`` names nothing jwpipe can run (None if it names a known class).

    Checked without importing: built-in entries, jwst names of them, and Step subclasses
    already defined in this process.
    """
    ident = class_name.strip()
    if _builtin_by(ident) or ident in _DEFINED or _entry_point_path(ident) or (
            ident.startswith("jwpipe.") and _builtin_by(ident.rsplit(".", 1)[1])):
        return None
    if ident.startswith("jwst."):
        last = ident.rsplit(".", 1)[1]
        mapped = JWST_CLASSES.get(last)
        if mapped and _builtin_by(mapped):
            return None
        return (f"'{class_name}' is a jwst class that jwpipe does not implement; run it with "
                "jwst's own strun")
    if "." in ident and any(ident == p or ident.startswith(p + ".") for p in _allowed_prefixes()):
        return None
    return (f"'{class_name}' names no step or pipeline jwpipe knows (run 'jwpipe list' for the "
            "built-in ones)")


_ALLOWED_PREFIXES: list[str] = []
#: The entry-point group where installed distributions register their steps.
ENTRY_POINT_GROUP = "jwpipe.steps"
#: Step subclasses defined in this process, by dotted path and by class name.
_DEFINED: dict[str, type] = {}


def builtin_entries() -> list[StepEntry]:
    """Built-in entries whose module is importable (steps arrive issue by issue)."""
    out = []
    for entry in BUILTIN_STEPS:
        module = entry.path.rsplit(".", 1)[0]
        try:
            found = importlib.util.find_spec(module)
        except ImportError:
            found = None
        if found is not None and found.origin is not None:  # not an empty namespace package
            out.append(entry)
    return out


def entry_point_classes() -> dict[str, str]:
    """Steps registered by installed distributions, from their metadata (nothing imported).

    Each entry point of the ``jwpipe.steps`` group names one Step class: the entry point's name
    is the step's alias, its value the class (``column_clean = cleanpkg.clean:ColumnCleanStep``
    in ``entry_points.txt``; ``[project.entry-points."jwpipe.steps"]`` in ``pyproject.toml``).
    Returns ``{alias: dotted class path}``. Installing the distribution is what allows its
    classes; the class is then known by its alias, its class name and its dotted path.
    """
    from importlib.metadata import entry_points

    found: dict[str, str] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        module, _, attr = ep.value.partition(":")
        if module and attr and attr.replace(".", "").isidentifier():
            found.setdefault(ep.name, f"{module.strip()}.{attr.strip()}")
    return found


def _entry_point_path(ident: str) -> str | None:
    """The dotted path of a registered class named by alias, class name or dotted path."""
    if not ident:
        return None
    for alias, path in entry_point_classes().items():
        if ident in (alias, path, path.rsplit(".", 1)[1]):
            return path
    return None


def _allowed_prefixes() -> list[str]:
    """Prefixes allowed from Python, plus ``JWPIPE_ALLOW_IMPORT`` (colon-separated)."""
    env = [p.strip().rstrip(".") for p in os.environ.get("JWPIPE_ALLOW_IMPORT", "").split(":")]
    return _ALLOWED_PREFIXES + [p for p in env if p]


def allow_class_paths(*prefixes: str) -> None:
    """Allow parameter files and hook strings to name classes under these module prefixes.

    Example: ``allow_class_paths("mylab.steps")`` lets ``class: mylab.steps.CleanStep`` load.
    """
    for prefix in prefixes:
        if prefix and prefix not in _ALLOWED_PREFIXES:
            _ALLOWED_PREFIXES.append(prefix.rstrip("."))


def register_class(cls: type) -> None:
    """Record a Step subclass as it is defined (called from ``Step.__init_subclass__``)."""
    _DEFINED[f"{cls.__module__}.{cls.__qualname__}"] = cls
    _DEFINED.setdefault(cls.__name__, cls)


def _import(path: str) -> type:
    module_name, _, attr = path.rpartition(".")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ValidationError(f"Module '{module_name}' has no class '{attr}'") from None


def _builtin_by(key: str) -> StepEntry | None:
    for entry in BUILTIN_STEPS:
        if key in (entry.path, entry.alias, entry.class_name):
            return entry
    return None


def resolve_step_class(identifier: str, *, what: str = "class") -> type[Step]:
    """Resolve an alias, class name or dotted path to a Step subclass, safely.

    Parameters
    ----------
    identifier : str
        ``jump``, ``JumpStep``, ``jwpipe.steps.JumpStep``, ``jwst.jump.jump_step.JumpStep``,
        ``jwst.pipeline.Detector1Pipeline``, or an allowed user dotted path.
    what : str
        Wording for error messages (e.g. ``"class in parameter file 'x.asdf'"``).

    Raises
    ------
    ValidationError
        Unknown names, disallowed module paths, and classes that are not Steps.
    """
    from jwpipe.stpipe.step import Step

    ident = identifier.strip()
    found: type | None = None
    entry = _builtin_by(ident)
    if entry is None and ident.startswith("jwpipe."):  # e.g. the defining module's full path
        entry = _builtin_by(ident.rsplit(".", 1)[1])
    if entry is None and ident.startswith("jwst."):
        entry = _builtin_by(jwpipe_class_name(ident))
        if entry is None:
            raise ValidationError(
                f"{what} '{identifier}' is a jwst class that jwpipe does not implement"
            )
    if entry is not None:
        try:
            found = _import(entry.path)
        except ImportError:
            raise ValidationError(
                f"{what} '{identifier}' ({entry.path}) is not available in this jwpipe version"
            ) from None
    elif ident in _DEFINED:
        found = _DEFINED[ident]
    elif (path := _entry_point_path(ident)) is not None:
        try:
            found = _import(path)
        except ImportError as exc:
            raise ValidationError(f"{what} '{identifier}' (entry point {path}) cannot be "
                                  f"imported: {exc}") from None
    elif "." in ident and any(
        ident == p or ident.startswith(p + ".") for p in _allowed_prefixes()
    ):
        try:
            found = _import(ident)
        except ImportError as exc:
            raise ValidationError(f"{what} '{identifier}' cannot be imported: {exc}") from None
    else:
        raise ValidationError(
            f"{what} '{identifier}' is not a known jwpipe step or pipeline; run 'jwpipe list' "
            "for the built-in ones, register your own in the 'jwpipe.steps' entry-point group, "
            "or allow its module with jwpipe.stpipe.allow_class_paths('yourpackage') (CLI: "
            "--allow-import yourpackage; environment: JWPIPE_ALLOW_IMPORT=yourpackage)"
        )
    if not (isinstance(found, type) and issubclass(found, Step)):
        raise ValidationError(f"{what} '{identifier}' is not a Step subclass")
    return found


def known_suffixes() -> frozenset[str]:
    """Suffixes stripped from a file name before a new one is added (one at a time)."""
    names = set(_PRODUCT_SUFFIXES)
    for entry in BUILTIN_STEPS:
        names.add(entry.class_name.lower())
        if entry.alias:
            names.add(entry.alias)
    for cls in list(_DEFINED.values()):
        names.add(cls.__name__.lower())
        alias = getattr(cls, "class_alias", None)
        if alias:
            names.add(alias)
    return frozenset(names - _DISCARDED)


_BUILTIN_NAMES = frozenset(e.class_name for e in BUILTIN_STEPS)

_PRODUCT_SUFFIXES = (
    "ami", "ami-oi", "aminorm", "aminorm-oi", "blot", "bsub", "bsubints", "c1d", "cal", "calints",
    "cat", "crf", "crfints", "dark", "i2d", "mbsub", "median", "phot", "psfalign", "psfstack",
    "psfsub", "ramp", "rate", "rateints", "s2d", "s3d", "snr", "uncal", "wfscmb", "whtlt", "x1d",
    "x1dints",
)
_DISCARDED = {"step", "pipeline", "systemcall", "functionwrapper", "engdblogstep", "rscd_step"}
