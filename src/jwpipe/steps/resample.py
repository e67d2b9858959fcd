"""``ResampleStep``: drizzle all exposures of a product onto one grid (jwst ``resample``).

The output grid is a tangent plane covering every member: pixel scale ``pixel_scale``
(arcsec) or the first member's scale times ``pixel_scale_ratio``; +y axis at ``rotation``
degrees east of north (default: the first member's orientation); optional ``crval``,
``crpix`` (0-based, as in jwst) and ``output_shape`` (nx, ny). Members are added one at a time
(:class:`jwpipe.algorithms.image_resample.DrizzleAccumulator`, the C kernels of STScI's
``drizzle`` package: ``square``, ``point``, ``turbo``, ``gaussian``, ``lanczos3``, shrunk by
``pixfrac``), through pixel maps interpolated from a coarse grid to better than 0.01 pixel
(:func:`jwpipe.algorithms.image_geometry.pixel_map`), weighted by ``weight_type`` (``ivm`` =
1/VAR_RNOISE, ``exptime``, or None = 1); pixels with DO_NOT_USE, NON_SCIENCE or
REFERENCE_PIXEL get no weight, and a sky level measured by skymatch but not subtracted is
removed first.

Output (``_i2d``): SCI (weighted mean surface brightness; ``fillval`` where nothing
contributed), ERR (``sqrt`` of the resampled variances), WHT (summed weights), CON (context:
bit ``k % 32`` of plane ``k // 32`` set where member ``k`` contributed; the exposure count
is its population count, :func:`exposure_count`), VAR_POISSON, VAR_RNOISE, VAR_FLAT
(``sum((a w)^2 var) / (sum a w)^2``). PIXAR_SR/PIXAR_A2 are those of the output pixel;
PIXFRAC, RESWHT, PXSCLRT and NDRIZ record the settings. For the ``square``, ``turbo`` and
``point`` kernels DRZKVAR is the variance (output px^2 per axis) by which drizzling this
mosaic's exposures, at their sub-pixel phases, widens a point source, and DRZKVRND the same
for random phases (:mod:`jwpipe.algorithms.drizzle_psf`); ``source_catalog`` uses them to
adapt the APCORR reference's aperture corrections.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jwpipe.algorithms.drizzle_psf import (
    MODELLED_KERNELS,
    KernelVarianceTally,
    random_phase_variance,
)
from jwpipe.algorithms.image_geometry import pixel_map, pixel_scale_deg
from jwpipe.algorithms.image_resample import DrizzleAccumulator, exposure_count
from jwpipe.errors import StepInputError
from jwpipe.steps._image_common import (
    bad_pixel_mask,
    label,
    member_weight,
    output_grid,
    set_model_wcs,
    sky_offset,
)
from jwpipe.steps._members import check_members, load_members
from jwpipe.stpipe import Step
from jwpipe.stpipe.outputs import Output

__all__ = ["ResampleStep", "exposure_count"]

_VARIANCES = ("var_rnoise", "var_poisson", "var_flat")


def _fillval(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        if text.strip().upper() in ("INDEF", "NAN"):
            return float("nan")
        raise StepInputError(f"fillval must be a number, NAN or INDEF, got {text!r}") from None


class ResampleStep(Step):
    """Combine the members of a product into one resampled mosaic (``_i2d``)."""

    class_alias = "resample"
    spec = """
    pixfrac = float(default=1.0)  # Drizzle pixel shrink factor, in (0, 1]
    kernel = option('square', 'point', 'turbo', 'gaussian', 'lanczos3', default='square')
    fillval = string(default='NAN')  # Value of output pixels without data
    weight_type = option('ivm', 'exptime', None, default='ivm')  # Input weighting
    output_shape = int_list(min=2, max=2, default=None)  # Output (nx, ny)
    crval = float_list(min=2, max=2, default=None)  # Output tangent point (RA, Dec), deg
    crpix = float_list(min=2, max=2, default=None)  # 0-based (x, y) pixel of crval
    rotation = float(default=None)  # Output +y axis angle east of north (None: as input)
    pixel_scale_ratio = float(default=1.0)  # Output / input pixel scale
    pixel_scale = float(default=None)  # Output pixel scale (arcsec); overrides the ratio
    good_bits = string(default='~DO_NOT_USE+NON_SCIENCE')  # DQ bits that are good
    """
    workflow_scope = "product"
    outputs = (Output("i2d", "ImageModel", per="product", stage_product=True),)
    workflow_memory = (0.05, 400.0)

    def process(self, input: Any) -> Any:
        from jwpipe.datamodels import dqflags

        container = load_members(input, self.qualified_name)
        shapes, wcss = check_members(container, self.qualified_name, wcs=True)
        if not 0.0 < self.pixfrac <= 1.0:
            raise StepInputError(f"{self.qualified_name}: pixfrac must be in (0, 1]")
        fill = _fillval(self.fillval)
        grid, gshape = output_grid(
            wcss, shapes, pixel_scale=self.pixel_scale,
            pixel_scale_ratio=self.pixel_scale_ratio, rotation=self.rotation,
            crval=tuple(self.crval) if self.crval else None,
            output_shape=tuple(self.output_shape) if self.output_shape else None,
            crpix=tuple(self.crpix) if self.crpix else None)
        self.log.info("Output grid %d x %d pixels", gshape[1], gshape[0])
        ratio = pixel_scale_deg(grid, gshape) / pixel_scale_deg(wcss[0], shapes[0])
        acc = DrizzleAccumulator(gshape, _VARIANCES, kernel=self.kernel, pixfrac=self.pixfrac,
                                 n_exposures=len(container))
        drop = 0.0 if self.kernel == "point" else float(self.pixfrac) / ratio
        tally = KernelVarianceTally(gshape, drop) if self.kernel in MODELLED_KERNELS else None
        names = []
        for i in range(len(container)):
            model = container[i]
            data = np.asarray(model.data, dtype=np.float32)
            bad = bad_pixel_mask(model.dq, data.shape) | dqflags.dq_to_boolean_mask(
                model.dq, good_bits=self.good_bits) | ~np.isfinite(data)
            weight = member_weight(model, self.weight_type, bad)
            variances = {k: getattr(model, k) for k in _VARIANCES}
            pixmap = pixel_map(wcss[i], grid, data.shape)
            acc.add(data - np.float32(sky_offset(model)), pixmap, weight, variances,
                    pixel_scale_ratio=ratio)
            if tally is not None:
                tally.add(pixmap, np.where(bad, 0.0, weight))
            names.append(label(model))
            if i == 0:
                out = self._output_shell(model)
            del model, data, bad, weight, variances, pixmap
        res = acc.finalize(fill)
        del acc
        out.data = res.sci
        out.err = res.err
        out.wht = res.wht
        out.con = res.context
        for key in _VARIANCES:
            setattr(out, key, res.variances[key])
        out.dq = np.where(res.wht > 0, 0, dqflags.pixel["DO_NOT_USE"]).astype(np.uint32)
        set_model_wcs(out, grid)
        ph = out.meta.photometry
        if ph.pixelarea_steradians is not None:
            ph.pixelarea_steradians = float(ph.pixelarea_steradians) * ratio**2
        if ph.pixelarea_arcsecsq is not None:
            ph.pixelarea_arcsecsq = float(ph.pixelarea_arcsecsq) * ratio**2
        primary = out.header("PRIMARY")
        primary["PIXFRAC"] = (float(self.pixfrac), "Drizzle pixel fraction")
        primary["RESWHT"] = (str(self.weight_type), "Resample weighting")
        primary["PXSCLRT"] = (float(ratio), "Output / input pixel scale")
        primary["NDRIZ"] = (len(names), "Number of drizzled exposures")
        if tally is not None and np.isfinite(tally.variance()):
            # the PSF widening of this mosaic's dither phases, for source_catalog's APCORR
            primary["DRZKVAR"] = (round(tally.variance(), 6),
                                  "Drizzle kernel variance per axis (out px2)")
            primary["DRZKVRND"] = (round(random_phase_variance(drop), 6),
                                   "DRZKVAR for random sub-pixel phases")
        out.extra["resample"] = {"members": names}
        self.log.info("Resampled %d exposures", len(names))
        return out

    @staticmethod
    def _output_shell(first: Any) -> Any:
        """An empty ImageModel carrying the first member's metadata (not its arrays)."""
        from jwpipe.datamodels import ImageModel

        out = ImageModel()
        for ext in ("PRIMARY", "SCI"):
            header = out.header(ext)
            for card in first.header(ext).cards:
                if card.keyword and card.keyword not in ("", "COMMENT", "HISTORY", "EXTNAME",
                                                         "EXTVER", "AREA"):
                    header[card.keyword] = (card.value, card.comment)
        out.meta.filename = None
        return out
