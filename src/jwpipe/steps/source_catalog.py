"""``SourceCatalogStep``: detect and measure sources on a mosaic (jwst ``source_catalog``).

Built on photutils, as jwst's step (:mod:`jwpipe.algorithms.image_catalog`):

* Background and its RMS from ``Background2D`` (mesh ``bkg_boxsize``).
* Detection: the background-subtracted image convolved with a Gaussian of FWHM
  ``kernel_fwhm``; ``SourceFinder`` keeps regions of at least ``npixels`` connected pixels
  above ``snr_threshold`` x RMS and deblends them (``deblend``, ``nlevels``, ``contrast``;
  components of at least ``deblend_npixels``). The labels are written as
  ``<product>_segm.fits``.
* Segment properties from ``SourceCatalog``: windowed centroids, isophotal flux and area,
  Kron flux (``kron_params``), shape (``semimajor_sigma``, ``semiminor_sigma``,
  ``ellipticity``, ``orientation``), bounding-box corners on the sky.
* Aperture photometry at the radii of the ``aperture_ee1/2/3`` encircled energies from the
  APCORR reference (scaled by the mosaic's PXSCLRT), local background = sigma-clipped median
  in the reference's ``skyin``-``skyout`` annulus; ``aper_total_flux`` = the largest aperture
  times its aperture correction, adapted (``apcorr_dither``) to how much the mosaic's
  exposures, at their sub-pixel phases, widen a point source (DRZKVAR from ``resample``)
  compared with random phases (DRZKVRND). jwpipe's ``aperture_radii`` / ``annulus`` (mosaic pixels)
  replace the reference (no aperture correction then). Without an APCORR reference jwst's
  fallback is used (radii 1, 2, 3 px, annulus 5-10 px, no correction) with a warning.
* Magnitudes: AB from the Jy fluxes, Vega = AB - the ABVEGAOFFSET reference's offset (NaN
  with a warning when there is none); concentration indices ``CI_50_30``, ``CI_70_50``,
  ``CI_70_30``; ``is_extended`` where ``CI_50_30`` or ``CI_70_50`` exceeds its star
  threshold; nearest neighbour label and distance.

Units as jwst: fluxes in Jy (surface brightness x output pixel solid angle), magnitudes in
mag, ``aper_bkg_flux`` in Jy per pixel. Flux errors come from ERR multiplied by a
noise-correlation factor, because ERR describes single output pixels whose noise is
correlated with their neighbours after drizzling: ``error_correlation='measured'`` (default)
measures it on blank sky (the scatter of sums over source-free boxes of the largest
aperture's area, in units of the error ERR predicts for them); with fewer than 30 such boxes
(or ``'casertano'``) it is the Casertano et al. (2000, AJ 120, 2747) factor for the mosaic's
PIXFRAC and PXSCLRT.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from jwpipe.algorithms.image_catalog import (
    circular_photometry,
    concentration_indices,
    detect,
    drizzle_noise_factor,
    estimate_background,
    flux_to_abmag,
    measured_noise_factor,
    source_positions,
)
from jwpipe.algorithms.image_geometry import pixel_scale_deg
from jwpipe.algorithms.image_outliers import parse_pair
from jwpipe.atomic import atomic_path
from jwpipe.errors import ReferenceFileError, StepInputError
from jwpipe.steps._image_common import bad_pixel_mask, label, model_wcs
from jwpipe.steps._members import load_members
from jwpipe.stpipe import Step
from jwpipe.stpipe.outputs import Output

__all__ = ["SourceCatalogStep", "drizzle_noise_factor", "write_segmentation_map"]

#: jwst's apertures when no APCORR reference is available.
_FALLBACK_RADII = (1.0, 2.0, 3.0)
_FALLBACK_ANNULUS = (5.0, 10.0)


def write_segmentation_map(labels: np.ndarray, like: Any, path: str) -> str:
    """Write a ``_segm.fits`` file: the label image in SCI, the mosaic's WCS and PRIMARY."""
    from astropy.io import fits

    primary = fits.PrimaryHDU()
    for card in like.header("PRIMARY").cards:
        if card.keyword and card.keyword not in ("SIMPLE", "BITPIX", "NAXIS", "EXTEND",
                                                 "COMMENT", "HISTORY"):
            primary.header[card.keyword] = (card.value, card.comment)
    primary.header["FILENAME"] = os.path.basename(path)
    primary.header["DATAMODL"] = "SegmentationMapModel"
    sci = fits.ImageHDU(np.asarray(labels, dtype=np.int32), name="SCI")
    wcs = model_wcs(like)
    sci.header.update(wcs.to_header(relax=True))
    if os.path.dirname(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    with atomic_path(path) as tmp:
        fits.HDUList([primary, sci]).writeto(tmp, overwrite=True)
    return path


class SourceCatalogStep(Step):
    """Detect sources on the resampled mosaic and measure positions, fluxes and shapes."""

    class_alias = "source_catalog"
    spec = """
    bkg_boxsize = integer(default=1000)  # Background mesh box size (pixels)
    kernel_fwhm = float(default=2.0)  # FWHM of the detection kernel (pixels)
    snr_threshold = float(default=3.0)  # Detection threshold (x background RMS)
    npixels = integer(default=25)  # Least number of connected pixels of a source
    connectivity = option(4, 8, default=8)  # Pixel connectivity of a source region
    deblend = boolean(default=True)  # Deblend overlapping sources
    nlevels = integer(default=32)  # Multi-thresholding levels for deblending
    contrast = float(default=0.001)  # Least flux fraction of a deblended component
    deblend_npixels = integer(default=5)  # jwpipe: least pixels of a deblended component
    aperture_ee1 = integer(default=30)  # Smallest aperture encircled energy (percent)
    aperture_ee2 = integer(default=50)  # Middle aperture encircled energy (percent)
    aperture_ee3 = integer(default=70)  # Largest aperture encircled energy (percent)
    ci1_star_threshold = float(default=2.0)  # CI_50_30 above this: extended
    ci2_star_threshold = float(default=1.8)  # CI_70_50 above this: extended
    kron_params = float_list(min=2, max=3, default=None)  # Kron scale, minimum radius[, mask]
    aperture_radii = string(default=None)  # jwpipe: radii (pixels) instead of the APCORR ones
    annulus = string(default=None)  # jwpipe: background annulus radii (pixels)
    error_correlation = option('measured','casertano','none',default='measured')  # ERR correlation
    apcorr_dither = boolean(default=True)  # jwpipe: adapt APCORR to the mosaic's DRZKVAR
    """
    reference_file_types = ["apcorr", "abvegaoffset"]
    #: Both references are optional (jwst falls back without them): looked up when needed.
    prefetch_references = False
    workflow_scope = "product"
    outputs = (Output("cat", "Table", per="product", stage_product=True),)
    workflow_memory = (6.0, 300.0)

    def process(self, input: Any) -> Any:
        from astropy.table import Table

        from jwpipe.datamodels import ImageModel

        model = self._single_image(input)
        self._mosaic = model
        if not isinstance(model, ImageModel):
            raise StepInputError(f"{self.qualified_name}: {label(model)} is not an image")
        wcs = model_wcs(model, self.qualified_name)
        data = np.asarray(model.data, dtype=np.float64)
        err = np.asarray(model.err, dtype=np.float64)
        bad = bad_pixel_mask(model.dq, data.shape) | ~np.isfinite(data) | ~np.isfinite(err)
        if model.wht is not None:
            bad |= ~(np.asarray(model.wht) > 0)
        if bad.all():
            raise StepInputError(f"{self.qualified_name}: {label(model)} has no valid pixels")
        self._apcorr_dv = 0.0
        names, radii, apcorr, ann = self._apertures(model)
        bkg, _ = estimate_background(data, bad, box_size=int(self.bkg_boxsize), rms=False)
        sub = np.where(bad, 0.0, data - bkg)
        found = detect(sub, bad, box_size=int(self.bkg_boxsize), kernel_fwhm=self.kernel_fwhm,
                       snr_threshold=self.snr_threshold, npixels=self.npixels,
                       connectivity=int(self.connectivity), deblend=self.deblend,
                       nlevels=self.nlevels, contrast=self.contrast,
                       deblend_npixels=self.deblend_npixels, error=err)
        self.segmentation_map = found.labels
        n = 0 if found.segm is None else int(found.segm.n_labels)
        self.log.info("%d sources detected", n)
        omega = np.radians(pixel_scale_deg(wcs, data.shape)) ** 2  # sr per pixel
        to_jy = omega * 1e6 if (model.meta.bunit_data or "").upper() == "MJY/SR" else 1.0
        if to_jy == 1.0:
            self.log.warning("BUNIT is %r, not MJy/sr: fluxes are sums of pixel values",
                             model.meta.bunit_data)
        factor = self._noise_factor(model, sub, err, bad, found.labels, radii[-1])
        err_eff = err * factor
        offset = self._abvega_offset(model)
        table = Table()
        table.meta.update({"product": label(model), "aperture_radii_pix": list(radii),
                           "aperture_corrections": list(apcorr), "annulus_pix": list(ann),
                           "noise_correlation_factor": float(factor),
                           "apcorr_kernel_variance_change": float(self._apcorr_dv),
                           "pixel_solid_angle_sr": float(omega),
                           "abvega_offset": offset})
        if n == 0:
            return table
        from astropy.coordinates import SkyCoord
        from photutils.segmentation import SourceCatalog

        kron = tuple(self.kron_params) if self.kron_params else (2.5, 1.4, 0.0)
        cat = SourceCatalog(sub, found.segm, convolved_data=found.convolved,
                            error=np.where(bad, 0.0, err_eff), mask=bad, wcs=wcs,
                            kron_params=kron)
        x, y = source_positions(cat)
        ra, dec = wcs.all_pix2world(x, y, 0)
        table["label"] = np.asarray(cat.label, dtype=np.int32)
        table["xcentroid"] = x
        table["ycentroid"] = y
        table["sky_centroid"] = SkyCoord(ra, dec, unit="deg", frame="icrs")
        phot = circular_photometry(data, err_eff, bad, x, y, radii, ann)
        table["aper_bkg_flux"] = phot["bkg"] * to_jy
        table["aper_bkg_flux_err"] = phot["bkg_err"] * to_jy
        fluxes = {}
        for k, name in enumerate(names):
            table[f"aper{name}_flux"] = phot["flux"][k] * to_jy
            table[f"aper{name}_flux_err"] = phot["flux_err"][k] * to_jy
            fluxes[name] = phot["flux"][k]
        table["aper_total_flux"] = phot["flux"][-1] * apcorr[-1] * to_jy
        table["aper_total_flux_err"] = phot["flux_err"][-1] * apcorr[-1] * to_jy
        for key in [f"aper{name}" for name in names] + ["aper_total"]:
            self._magnitudes(table, key, offset)
        for key, ci in concentration_indices(fluxes).items():
            table[key] = ci
        table["is_extended"] = self._extended(table, names)
        table["nbad"] = phot["nbad"]
        self._neighbours(table, x, y)
        table["isophotal_flux"] = np.asarray(cat.segment_flux, float) * to_jy
        table["isophotal_flux_err"] = np.asarray(cat.segment_flux_err, float) * to_jy
        self._magnitudes(table, "isophotal", offset)
        table["isophotal_area"] = np.asarray(cat.area.value, float)
        table["kron_flux"] = np.asarray(cat.kron_flux, float) * to_jy
        table["kron_flux_err"] = np.asarray(cat.kron_flux_err, float) * to_jy
        self._magnitudes(table, "kron", offset)
        table["semimajor_sigma"] = np.asarray(cat.semimajor_axis.value, float)
        table["semiminor_sigma"] = np.asarray(cat.semiminor_axis.value, float)
        table["ellipticity"] = np.asarray(cat.ellipticity.value, float)
        table["orientation"] = np.asarray(cat.orientation.value, float)
        for corner in ("ll", "ul", "lr", "ur"):
            table[f"sky_bbox_{corner}"] = getattr(cat, f"sky_bbox_{corner}")
        self._units(table, to_jy != 1.0)
        return table

    # ------------------------------------------------------------------ apertures and refs

    def _apertures(self, model: Any) -> tuple[list[str], np.ndarray, np.ndarray,
                                              tuple[float, float]]:
        """Aperture names, radii (mosaic pixels), corrections and background annulus."""
        if self.aperture_radii:
            radii = self._radii()
            ann = parse_pair(self.annulus, "annulus") if self.annulus else \
                (3.0 * radii[-1], 4.5 * radii[-1])
            names = [f"{r:g}".replace(".", "_") for r in radii]
            corr = np.ones(len(radii))
        else:
            from jwpipe.datamodels.reference_phot import read_apcorr

            ee = (int(self.aperture_ee1), int(self.aperture_ee2), int(self.aperture_ee3))
            if not (0 < ee[0] < ee[1] < ee[2] < 100):
                raise StepInputError(f"{self.qualified_name}: aperture_ee1/2/3 must be "
                                     f"increasing percentages, got {ee}")
            names = [str(e) for e in ee]
            inst = model.meta.instrument
            try:
                path = self.get_reference_file(model, "apcorr")
            except ReferenceFileError as exc:
                path = "N/A"
                self.log.warning("%s", str(exc))  # not exc: its traceback holds the frames
            if path in ("N/A", ""):
                self.log.warning("No APCORR reference: jwst's fallback apertures %s px and "
                                 "annulus %s px, without aperture corrections",
                                 _FALLBACK_RADII, _FALLBACK_ANNULUS)
                radii, corr = np.array(_FALLBACK_RADII), np.ones(3)
                ann = _FALLBACK_ANNULUS
            else:
                ref = read_apcorr(path, inst.filter, inst.pupil, ee)
                # reference radii are in native detector pixels
                ratio = float(model.header("PRIMARY").get("PXSCLRT", 1.0) or 1.0)
                radii, corr = ref.radius / ratio, ref.apcorr
                ann = (ref.skyin / ratio, ref.skyout / ratio)
                corr = corr / self._dither_ee_ratio(model, ref, ratio, radii)
            if self.annulus:
                ann = parse_pair(self.annulus, "annulus")
        radii = np.asarray(radii, dtype=np.float64)
        if not radii[-1] <= ann[0] < ann[1]:
            raise StepInputError(
                f"{self.qualified_name}: annulus {tuple(ann)} must lie outside the largest "
                f"aperture {radii[-1]:g}")
        return names, radii, np.asarray(corr, dtype=np.float64), (float(ann[0]), float(ann[1]))

    def _dither_ee_ratio(self, model: Any, ref: Any, ratio: float, radii: np.ndarray
                         ) -> np.ndarray:
        """Encircled energy at ``radii`` on this mosaic over the reference's.

        The reference describes a PSF drizzled at random sub-pixel phases with the default
        drizzle (square kernel, pixfrac 1: kernel variance 1/6 reference px^2 per axis, the
        mosaic's DRZKVRND only when it was drizzled that way); this mosaic's exposures sit at
        particular phases of its own kernel (DRZKVAR, recorded by resample).
        A mosaic whose kernel does not widen its stars (one exposure through the ``point``
        kernel: DRZKVAR = 0) is narrower, and its small apertures hold more light than the
        reference says (measured: 8.8 % at the 70 % EE radius of a 2.1 px FWHM PSF).
        """
        primary = model.header("PRIMARY")
        self._apcorr_dv = 0.0
        if not self.apcorr_dither or "DRZKVAR" not in primary \
                or ref.curve_radius is None or ref.curve_radius.size < 3:
            return np.ones(radii.shape)
        from jwpipe.algorithms.drizzle_psf import encircled_energy_ratio, random_phase_variance

        # the reference's kernel, in this mosaic's pixels (not DRZKVRND: a point-kernel or
        # pixfrac < 1 mosaic's random phases are narrower than the reference's)
        described = random_phase_variance(1.0) / ratio**2
        dv = float(primary["DRZKVAR"]) - described
        self._apcorr_dv = dv
        ee_ratio = encircled_energy_ratio(ref.curve_radius / ratio, ref.curve_ee, radii, dv)
        self.log.info("Mosaic drizzle kernel variance %.4f px2 (the reference's %.4f): "
                      "aperture corrections divided by %s", float(primary["DRZKVAR"]),
                      described, np.array2string(ee_ratio, precision=4))
        return ee_ratio

    def _abvega_offset(self, model: Any) -> float:
        from jwpipe.datamodels.reference_phot import read_abvega_offset

        try:
            path = self.get_reference_file(model, "abvegaoffset")
        except ReferenceFileError as exc:
            self.log.warning("%s", str(exc))  # not exc: its traceback holds the frames
            path = "N/A"
        if path in ("N/A", ""):
            self.log.warning("No ABVEGAOFFSET reference: Vega magnitudes are NaN")
            return float("nan")
        inst = model.meta.instrument
        return read_abvega_offset(path, inst.filter, inst.pupil)

    # ------------------------------------------------------------------ columns

    @staticmethod
    def _magnitudes(table: Any, key: str, offset: float) -> None:
        ab, ab_err = flux_to_abmag(table[f"{key}_flux"], table[f"{key}_flux_err"])
        table[f"{key}_abmag"] = ab
        table[f"{key}_abmag_err"] = ab_err
        table[f"{key}_vegamag"] = ab - offset
        table[f"{key}_vegamag_err"] = ab_err

    def _extended(self, table: Any, names: list[str]) -> np.ndarray:
        if len(names) != 3:
            return np.zeros(len(table), dtype=bool)
        a, b, c = names
        with np.errstate(invalid="ignore"):
            return ((np.asarray(table[f"CI_{b}_{a}"]) > self.ci1_star_threshold)
                    | (np.asarray(table[f"CI_{c}_{b}"]) > self.ci2_star_threshold))

    @staticmethod
    def _neighbours(table: Any, x: np.ndarray, y: np.ndarray) -> None:
        from scipy.spatial import cKDTree

        labels = np.asarray(table["label"])
        if len(x) < 2:
            table["nn_label"] = np.full(len(x), -1, dtype=np.int32)
            table["nn_dist"] = np.full(len(x), np.nan)
            return
        dist, idx = cKDTree(np.column_stack([x, y])).query(np.column_stack([x, y]), k=2)
        table["nn_label"] = labels[idx[:, 1]].astype(np.int32)
        table["nn_dist"] = dist[:, 1]

    @staticmethod
    def _units(table: Any, jansky: bool) -> None:
        for col in table.colnames:
            if col.endswith(("_flux", "_flux_err")) and jansky:
                table[col].unit = "Jy"
            elif col.endswith(("mag", "mag_err")):
                table[col].unit = "mag"
            elif col in ("xcentroid", "ycentroid", "nn_dist", "isophotal_area",
                         "semimajor_sigma", "semiminor_sigma"):
                table[col].unit = "pix2" if col == "isophotal_area" else "pix"
            elif col == "orientation":
                table[col].unit = "deg"

    def _noise_factor(self, model: Any, residual: np.ndarray, err: np.ndarray,
                      bad: np.ndarray, labels: np.ndarray, radius: float) -> float:
        primary = model.header("PRIMARY")
        formula = drizzle_noise_factor(primary.get("PIXFRAC", 0), primary.get("PXSCLRT", 0)) \
            if "PIXFRAC" in primary and "PXSCLRT" in primary else 1.0
        if self.error_correlation == "none":
            return 1.0
        if self.error_correlation == "casertano":
            return formula
        from scipy import ndimage

        # mask every detected source generously (its segment grown by twice the aperture)
        srcmask = labels > 0
        grow = int(np.ceil(2 * radius)) + 2
        srcmask = ndimage.binary_dilation(srcmask, iterations=grow) if srcmask.any() \
            else srcmask
        box = max(2, round(np.sqrt(np.pi) * radius))  # area of the largest aperture
        factor, nbox = measured_noise_factor(residual, err, bad | srcmask, box)
        if nbox < 30:
            self.log.info("Only %d blank-sky boxes: noise correlation from the drizzle "
                          "parameters (%.3f)", nbox, formula)
            return formula
        self.log.info("Noise correlation factor %.3f from %d blank-sky boxes (Casertano: %.3f)",
                      factor, nbox, formula)
        return factor

    def _radii(self) -> list[float]:
        try:
            radii = sorted(float(v) for v in str(self.aperture_radii).replace(",", " ").split())
        except ValueError:
            raise StepInputError(
                f"{self.qualified_name}: aperture_radii must be numbers, got "
                f"{self.aperture_radii!r}") from None
        if not radii or radii[0] <= 0:
            raise StepInputError(f"{self.qualified_name}: aperture_radii must be positive")
        return radii

    def _single_image(self, input: Any) -> Any:
        from jwpipe.datamodels import ModelContainer

        if isinstance(input, ModelContainer | list | tuple) or (
                isinstance(input, str) and input.lower().endswith(".json")):
            container = load_members(input, self.qualified_name)
            if len(container) != 1:
                raise StepInputError(
                    f"{self.qualified_name}: needs one resampled image, got {len(container)}")
            return container[0]
        return self.open_model(input)

    def _save_results(self, result: Any) -> None:
        path = self.make_output_path(suffix="cat", ext=".ecsv")
        self.save_catalog(result, path)

    def save_catalog(self, table: Any, path: str) -> None:
        """Write the catalogue and, next to it, the ``_segm.fits`` segmentation map."""
        if os.path.dirname(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
        with atomic_path(path) as tmp:
            table.write(tmp, format="ascii.ecsv", overwrite=True)
        self.log.info("Saved catalogue in %s", path)
        labels = getattr(self, "segmentation_map", None)
        mosaic = getattr(self, "_mosaic", None)
        if labels is not None and mosaic is not None:
            segm = path[: -len("_cat.ecsv")] + "_segm.fits" if path.endswith("_cat.ecsv") \
                else os.path.splitext(path)[0] + "_segm.fits"
            write_segmentation_map(labels, mosaic, segm)
            self.log.info("Saved segmentation map in %s", segm)
