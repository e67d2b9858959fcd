"""Small steps and a tiny ASDF-backed model for framework tests (real files, tiny data)."""

from __future__ import annotations

import copy
import os
from types import SimpleNamespace

from jwpipe.stpipe import Pipeline, Step


class _Node(SimpleNamespace):
    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        node = _Node()
        setattr(self, name, node)
        return node


class TinyModel:
    """A model with the datamodel protocol: meta, save, copy, get_crds_parameters, extra."""

    def __init__(self, value: float = 0.0, filename: str | None = None,
                 params: dict | None = None) -> None:
        self.value = value
        self.meta = _Node()
        self.meta.filename = filename
        self.extra: dict = {}
        self.params = dict(params or {"INSTRUME": "NIRCAM", "DETECTOR": "NRCA1"})
        self.meta.instrument.name = self.params.get("INSTRUME")

    def get_crds_parameters(self) -> dict:
        return dict(self.params)

    def copy(self) -> TinyModel:
        return copy.deepcopy(self)

    def save(self, path: str, overwrite: bool = True) -> str:
        import asdf

        tmp = f"{path}.tmp"
        asdf.AsdfFile({"value": self.value, "extra": self.extra}).write_to(tmp)
        os.replace(tmp, path)
        self.meta.filename = os.path.basename(path)
        return path

    @classmethod
    def load(cls, path: str) -> TinyModel:
        import asdf

        with asdf.open(path) as af:
            model = cls(float(af["value"]), os.path.basename(path))
            model.extra = dict(af["extra"])
        return model


def as_model(x):
    if isinstance(x, TinyModel):
        return x
    if isinstance(x, str) and os.path.exists(x):
        return TinyModel.load(x)
    return TinyModel(float(x) if not isinstance(x, str) else 0.0,
                     filename=os.path.basename(x) if isinstance(x, str) else None)


class AddStep(Step):
    """Add a constant to the model value."""

    class_alias = "add"
    spec = """
    amount = float(default=1.0)  # How much to add
    label = string(default='plain')  # A free label
    """
    reference_file_types = ["gain"]

    def process(self, x):
        model = self.prepare_input(as_model(x)) if not isinstance(x, TinyModel) else \
            self.prepare_input(x)
        ref = self.get_reference_file(model, "gain")
        model.value += self.amount
        model.extra["gain_ref"] = str(ref)
        return model


class ScaleStep(Step):
    """Multiply the model value."""

    class_alias = "scale"
    spec = """
    factor = float(default=2.0)  # Multiplier
    mode = option('fast', 'exact', default='fast')  # How to scale
    """

    def process(self, x):
        model = self.prepare_input(as_model(x))
        model.value *= self.factor
        return model


class SplitStep(Step):
    """Return several models."""

    class_alias = "split"
    spec = "n = integer(default=3)  # Number of outputs"

    def process(self, x):
        model = as_model(x)
        return [TinyModel(model.value + i, model.meta.filename) for i in range(self.n)]


class NASkipStep(Step):
    """Record SKIPPED itself when told the reference does not apply."""

    class_alias = "naskip"
    reference_file_types = ["flat"]

    def process(self, x):
        model = self.prepare_input(as_model(x))
        if self.get_reference_file(model, "flat") == "N/A":
            self.record_step_status(model, "SKIPPED")
        return model


class TinyPipeline(Pipeline):
    """Add, then scale."""

    class_alias = "tiny_pipe"
    spec = "extra_flag = boolean(default=False)  # A pipeline parameter"
    step_defs = {"add": AddStep, "scale": ScaleStep}
    step_order_by_instrument = {"MIRI": ["scale", "add"]}
    substep_defaults = {}

    def process(self, x):
        return super().process(as_model(x))


class LayeredPipeline(TinyPipeline):
    """TinyPipeline with pipeline-coded substep defaults."""

    substep_defaults = {"add": {"amount": 6.0, "label": "pipeline-default"}}


class NotAStep:
    """Not a Step."""
