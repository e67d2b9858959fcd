"""``Image2Pipeline`` (``calwebb_image2``): rate exposures -> calibrated ``_cal`` images.

Per association product: the one ``science`` member goes through the declared steps,
``bkg_subtract`` (only when the product has ``background`` members: the step's declared member
role), ``assign_wcs``, ``flat_field`` and ``photom``.
Unlike jwst there is no per-exposure ``resample`` (``_i2d``) at this stage: resampling is
done once, for all exposures, by :class:`~jwpipe.pipeline.image3.Image3Pipeline`.
"""

from __future__ import annotations

import os
from typing import Any

from jwpipe.errors import AssociationError, StepInputError
from jwpipe.steps.assign_wcs import AssignWcsStep
from jwpipe.steps.background import BackgroundStep
from jwpipe.steps.flat_field import FlatFieldStep
from jwpipe.steps.photom import PhotomStep
from jwpipe.stpipe import Pipeline

__all__ = ["Image2Pipeline"]


class Image2Pipeline(Pipeline):
    """Calibrate imaging exposures: background, WCS, flat field, flux units.

    Input: a ``_rate`` file or model, or an image2 association (one product per exposure,
    one ``science`` member and optional ``background`` members). Output: one ``_cal`` image
    per product (a model for one product, a list for several), saved as
    ``<product name>_cal.fits`` when results are saved.
    """

    class_alias = "calwebb_image2"
    spec = """
    """
    step_defs = {
        "bkg_subtract": BackgroundStep,
        "assign_wcs": AssignWcsStep,
        "flat_field": FlatFieldStep,
        "photom": PhotomStep,
    }
    workflow_input_suffix = "rate"
    workflow_product_suffixes = ("cal",)
    workflow_group = "image2"

    def process(self, input: Any) -> Any:
        jobs = self._products(input)
        results = []
        self._product_names: dict[int, str] = {}
        for name, science, backgrounds, asn in jobs:
            model = self.prepare_input(science)
            if asn is not None:
                if asn.asn_pool:
                    model.meta.asn.pool_name = asn.asn_pool
                model.meta.asn.table_name = os.path.basename(asn.source)
            self.log.info("Processing product %s", name)
            model = self.run_steps(model, members={"background": backgrounds})
            self._product_names[id(model)] = name
            results.append(model)
        return results[0] if len(results) == 1 else results

    def prefetch(self, *args: Any) -> None:
        """Check the association before any reference file is looked up."""
        if args:
            self._products(args[0])
        super().prefetch(*args)

    def _products(self, input: Any) -> list[tuple[str, Any, list[str], Any]]:
        """(product name, science input, background paths, association or None) per product."""
        if isinstance(input, str | os.PathLike) and os.fspath(input).lower().endswith(".json"):
            from jwpipe.associations import load_asn

            path = os.fspath(input)
            asn = load_asn(path)
            jobs = []
            for product in asn.products:
                science = product.science
                if len(science) != 1:
                    raise AssociationError(
                        f"{path}: product {product.name} has {len(science)} science members; "
                        "an image2 product needs exactly one")
                members = [science[0], *product.background]
                missing = [str(m.path) for m in members if not m.path.exists()]
                if missing:
                    raise AssociationError(
                        f"{path}: member file(s) not found: {', '.join(missing)}")
                jobs.append((product.name, str(science[0].path),
                             [str(m.path) for m in product.background], asn))
            if not jobs:
                raise AssociationError(f"{path}: the association has no products")
            return jobs
        if isinstance(input, list | tuple):
            raise StepInputError(
                f"{self.qualified_name}: give one rate file or an image2 association, not a list")
        from jwpipe.stpipe.naming import remove_suffix

        if isinstance(input, str | os.PathLike):
            path = self.make_input_path(input)
            if not os.path.exists(path):
                raise StepInputError(f"{self.qualified_name}: input {path} does not exist")
            stem = os.path.splitext(os.path.basename(path))[0]
        else:
            stem = os.path.splitext(getattr(input.meta, "filename", None) or "image2")[0]
        return [(remove_suffix(stem)[0], input, [], None)]

    def _save_results(self, result: Any) -> None:
        models = result if isinstance(result, list) else [result]
        names = getattr(self, "_product_names", {})
        for model in models:
            if self.output_file and len(models) == 1:
                self.save_model(model, suffix="cal")
            else:
                name = names.get(id(model)) or "image2"
                self.save_model(model, suffix="cal", output_file=f"{name}.fits")
