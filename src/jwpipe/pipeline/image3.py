"""``Image3Pipeline`` (``calwebb_image3``): combine the calibrated exposures of a product.

The declared steps, ``tweakreg -> skymatch -> outlier_detection -> resample ->
source_catalog``, run in that order (the catalogue is a side product: the mosaic is the
result). Members are
streamed: every member-to-member step reads one member at a time and writes the modified
member to a temporary file (in ``output_dir``, or the system temporary directory), so memory
holds O(1) exposures plus the output grid, whatever the number of members.

Products (when results are saved; names as in jwst):

* ``<member root>_<asn_id>_crf.fits``: each member with its outliers flagged;
* ``<product>_i2d.fits``: the resampled mosaic;
* ``<product>_cat.ecsv``: the source catalogue,

where ``<product>`` is ``products[0].name`` of the association (or ``output_file``).
"""

from __future__ import annotations

import os
from typing import Any

from jwpipe.steps._image_common import label
from jwpipe.steps._members import check_members, load_members, product_name
from jwpipe.steps.outlier_detection import OutlierDetectionStep
from jwpipe.steps.resample import ResampleStep
from jwpipe.steps.skymatch import SkyMatchStep
from jwpipe.steps.source_catalog import SourceCatalogStep
from jwpipe.steps.tweakreg import TweakRegStep
from jwpipe.stpipe import Pipeline
from jwpipe.stpipe.pipeline import EndStage

__all__ = ["Image3Pipeline"]


class Image3Pipeline(Pipeline):
    """Align, sky-match, flag outliers, resample and catalogue a product's exposures.

    Input: an image3 association (its science members), a list of ``_cal`` files or
    models, or a ModelContainer. Returns the ``_i2d`` mosaic; the catalogue is available as
    ``pipe.catalog`` after the run.
    """

    class_alias = "calwebb_image3"
    spec = """
    """
    step_defs = {
        "tweakreg": TweakRegStep,
        "skymatch": SkyMatchStep,
        "outlier_detection": OutlierDetectionStep,
        "resample": ResampleStep,
        "source_catalog": SourceCatalogStep,
    }
    workflow_input_suffix = "cal"
    workflow_stage_scope = "product"
    workflow_group = "image3"

    def stage_input(self, input: Any) -> Any:
        container = load_members(input, self.qualified_name)
        check_members(container, self.qualified_name)
        self._product = product_name(container) or self._default_product(input, container)
        self._asn_id = (container.asn_table or {}).get("asn_id")
        self.log.info("Product %s: %d members", self._product, len(container))
        self.catalog = None
        return container

    def after_step(self, name: str, before: list[Any], after: list[Any]) -> list[Any]:
        """Save the members a step declares as a stage product (``_crf``); the mosaic is the
        result, the catalogue a side product."""
        from jwpipe.datamodels import ImageModel

        declared = getattr(self, name).outputs[0]
        if declared.stage_product and declared.per == "exposure":  # _crf members
            if self.save_results:
                self._save_members(after[0], declared.suffix)
        elif name == "resample":
            self._input_filename = f"{self._product}.fits"
            result = after[0]
            if not (isinstance(result, ImageModel)
                    and result.meta.cal_step.resample == "COMPLETE"):
                self.log.warning("resample did not run: no mosaic and no catalogue")
                self._result_suffix = "crf"
                return EndStage(after)
            result.meta.asn.table_name = before[0].asn_table_name
            self._result_suffix = "i2d"
        elif name == "source_catalog":
            if not self.source_catalog.skip:
                self.catalog = after[0]
                if self.save_results and self.catalog is not None:
                    self._save_catalog(self.catalog)
            return before
        return after

    @staticmethod
    def _default_product(input: Any, container: Any) -> str:
        from jwpipe.stpipe.naming import remove_suffix

        if isinstance(input, str | os.PathLike):
            stem = os.path.splitext(os.path.basename(os.fspath(input)))[0]
        else:
            first = container.paths[0] or label(container[0])
            stem = os.path.splitext(os.path.basename(first))[0]
        return remove_suffix(stem)[0]

    def _save_members(self, container: Any, suffix: str | None) -> None:
        for i in range(len(container)):
            model = container[i]
            name = getattr(model.meta, "filename", None) or f"member{i:04d}.fits"
            self.save_model(model, suffix=suffix, output_file=name, asn_id=self._asn_id)
            del model

    def _save_catalog(self, table: Any) -> None:
        self.source_catalog.save_catalog(table, self.make_output_path(suffix="cat",
                                                                      ext=".ecsv"))
