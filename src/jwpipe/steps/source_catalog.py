"""``SourceCatalogStep``: detect and measure sources on a mosaic (jwst ``source_catalog``).

Detection: background and noise from a clipped mesh (``bkg_boxsize``), Gaussian matched
filter of FWHM ``kernel_fwhm`` with the ERR map, regions of at least ``npixels`` connected
pixels above ``snr_threshold`` (not deblended), Gaussian-windowed centroids
(:func:`jwpipe.algorithms.image_sources.detect_sources`).

Photometry: circular apertures of radii ``aperture_radii`` (mosaic pixels) with exact pixel
overlaps and a local background from the annulus ``annulus``
(:func:`jwpipe.algorithms.image_photometry.aperture_photometry`). Without an APCORR
reference no aperture correction is applied: the largest aperture is reported as
``aper_total_flux`` and should be chosen to enclose the PSF. Fluxes are in microjansky
(surface brightness x output pixel solid angle). Their errors come from ERR, multiplied by
a noise-correlation factor, because ERR describes single output pixels whose noise is
correlated with their neighbours after drizzling. ``error_correlation='measured'`` (default)
measures the factor on blank sky: the scatter of sums over source-free boxes of the largest
aperture's area, in units of the error ERR predicts for them; with fewer than 30 such boxes
(or ``'casertano'``) it is the Casertano et al. (2000, AJ 120, 2747) factor for the mosaic's
PIXFRAC and PXSCLRT (1.5 for both 1; that value assumes random sub-pixel phases).

Output: an astropy Table (written as ``<product>_cat.ecsv``) with ``label``,
``xcentroid``, ``ycentroid`` (0-based pixels), ``ra``, ``dec`` (deg), ``isophotal_flux``,
``aper<r>_flux``/``_err`` for each radius, ``aper_bkg_flux`` (per pixel, MJy/sr),
``aper_total_flux``/``_err``, ``aper_total_abmag``/``_err``, ``npix``, ``snr``, ``nbad``
(pixels lost in the total aperture) and ``flags`` (1: windowed centroid failed, 2: touches a
bad pixel or the edge).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jwpipe.algorithms.image_geometry import pixel_scale_deg
from jwpipe.algorithms.image_outliers import parse_pair
from jwpipe.algorithms.image_photometry import aperture_photometry
from jwpipe.algorithms.image_sources import background_mesh, detect_sources
from jwpipe.atomic import atomic_path
from jwpipe.errors import StepInputError
from jwpipe.steps._image_common import bad_pixel_mask, label, load_members, model_wcs
from jwpipe.stpipe import Step

__all__ = ["SourceCatalogStep", "drizzle_noise_factor"]


def drizzle_noise_factor(pixfrac: float, scale_ratio: float) -> float:
    """Ratio of the true noise of a large aperture sum to that from per-pixel errors.

    Casertano et al. (2000): ``R = 1 / (1 - p / (3 s))`` for ``s >= p`` and
    ``R = (p / s) / (1 - s / (3 p))`` for ``s < p``, with ``s`` the output/input pixel scale
    ratio and ``p`` the drizzle pixfrac.
    """
    p, s = float(pixfrac), float(scale_ratio)
    if p <= 0 or s <= 0:
        return 1.0
    if s >= p:
        return 1.0 / (1.0 - p / (3.0 * s))
    return (p / s) / (1.0 - s / (3.0 * p))


def measured_noise_factor(residual: np.ndarray, err: np.ndarray, bad: np.ndarray,
                          box: int) -> tuple[float, int]:
    """Empirical noise-correlation factor from blank-sky boxes of ``box`` x ``box`` pixels.

    ``residual`` is the background-subtracted image with sources masked in ``bad``. For every
    box without masked pixels the sum of its pixels is compared with the error predicted from
    ERR alone (``sqrt(sum err^2)``); the factor is the robust (MAD) standard deviation of the
    normalised sums. Returns (factor, number of boxes).
    """
    ny, nx = residual.shape
    by, bx = ny // box, nx // box
    if by == 0 or bx == 0:
        return 1.0, 0
    cut = (slice(0, by * box), slice(0, bx * box))

    def blocks(a: np.ndarray) -> np.ndarray:
        return a[cut].reshape(by, box, bx, box).swapaxes(1, 2).reshape(by * bx, box * box)

    clean = ~blocks(bad).any(axis=1)
    sums = blocks(np.where(bad, 0.0, residual)).sum(axis=1)[clean]
    pred = np.sqrt((blocks(np.where(bad, 0.0, err)) ** 2).sum(axis=1)[clean])
    ok = pred > 0
    if ok.sum() < 3:
        return 1.0, int(ok.sum())
    z = sums[ok] / pred[ok]
    mad = 1.482602218505602 * np.median(np.abs(z - np.median(z)))
    return float(mad), int(ok.sum())


class SourceCatalogStep(Step):
    """Detect sources on the resampled mosaic and measure positions and aperture fluxes."""

    class_alias = "source_catalog"
    spec = """
    snr_threshold = float(default=3.0)  # Detection threshold (matched-filter S/N)
    kernel_fwhm = float(default=2.0)  # FWHM of the detection kernel (pixels)
    npixels = integer(default=25)  # Least number of connected pixels of a source
    connectivity = option(4, 8, default=8)  # Pixel connectivity of a source region
    bkg_boxsize = integer(default=1000)  # Background mesh box size (pixels)
    aperture_radii = string(default='2.0 4.0 8.0')  # jwpipe: aperture radii (pixels)
    annulus = string(default='12.0 18.0')  # jwpipe: background annulus radii (pixels)
    error_correlation = option('measured','casertano','none',default='measured')  # ERR correlation
    """
    workflow_scope = "product"
    product_suffix = "cat"
    workflow_output_ext = ".ecsv"
    workflow_memory = (6.0, 300.0)

    def process(self, input: Any) -> Any:
        from astropy.table import Table

        from jwpipe.datamodels import ImageModel

        model = self._single_image(input)
        radii = self._radii()
        ann = parse_pair(self.annulus, "annulus")
        if not radii[-1] <= ann[0] < ann[1]:
            raise StepInputError(
                f"{self.qualified_name}: annulus {ann} must lie outside the largest aperture "
                f"{radii[-1]}")
        if not isinstance(model, ImageModel):
            raise StepInputError(f"{self.qualified_name}: {label(model)} is not an image")
        wcs = model_wcs(model, self.qualified_name)
        data = np.asarray(model.data, dtype=np.float32)
        err = np.asarray(model.err, dtype=np.float32)
        bad = bad_pixel_mask(model.dq, data.shape) | ~np.isfinite(data) | ~np.isfinite(err)
        if model.wht is not None:
            bad |= ~(np.asarray(model.wht) > 0)
        if bad.all():
            raise StepInputError(f"{self.qualified_name}: {label(model)} has no valid pixels")
        box = int(max(16, min(self.bkg_boxsize, max(data.shape))))
        bkg, _ = background_mesh(data, bad, box_size=box)
        src = detect_sources(data, bad, fwhm=self.kernel_fwhm, snr_threshold=self.snr_threshold,
                             npixels=self.npixels, connectivity=int(self.connectivity),
                             background=bkg, error=err)
        self.log.info("%d sources detected", len(src))
        omega = np.radians(pixel_scale_deg(wcs, data.shape)) ** 2  # sr per pixel
        to_ujy = omega * 1e12 if (model.meta.bunit_data or "").upper() == "MJY/SR" else 1.0
        if to_ujy == 1.0:
            self.log.warning("BUNIT is %r, not MJy/sr: fluxes are sums of pixel values",
                             model.meta.bunit_data)
        factor = self._noise_factor(model, data - bkg, err, bad, src, radii[-1])
        ra, dec = wcs.all_pix2world(src["x"], src["y"], 0)
        table = Table()
        table["label"] = src["id"]
        table["xcentroid"] = src["x"]
        table["ycentroid"] = src["y"]
        table["ra"] = ra
        table["dec"] = dec
        table["isophotal_flux"] = src["flux"] * to_ujy
        total = None
        for r in radii:
            phot = aperture_photometry(data, err, src["x"], src["y"], r, annulus=ann, mask=bad)
            tag = f"aper{r:g}".replace(".", "_")
            table[f"{tag}_flux"] = phot["flux"] * to_ujy
            table[f"{tag}_flux_err"] = phot["flux_err"] * to_ujy * factor
            total = phot
        assert total is not None
        table["aper_bkg_flux"] = total["bkg"]
        flux = total["flux"] * to_ujy
        flux_err = total["flux_err"] * to_ujy * factor
        table["aper_total_flux"] = flux
        table["aper_total_flux_err"] = flux_err
        with np.errstate(invalid="ignore", divide="ignore"):
            table["aper_total_abmag"] = np.where(flux > 0, -2.5 * np.log10(flux * 1e-6 / 3631.0),
                                                 np.nan)
            table["aper_total_abmag_err"] = np.where(flux > 0, 2.5 / np.log(10) * flux_err / flux,
                                                     np.nan)
        table["npix"] = src["npix"]
        table["snr"] = src["snr"]
        table["nbad"] = total["nbad"]
        table["flags"] = src["flags"]
        for col, unit in (("ra", "deg"), ("dec", "deg"), ("aper_bkg_flux", model.meta.bunit_data)):
            table[col].unit = unit
        for col in table.colnames:
            if col.endswith(("_flux", "_flux_err")) and col != "aper_bkg_flux" and to_ujy != 1.0:
                table[col].unit = "uJy"
        table.meta.update({
            "product": label(model), "aperture_radii_pix": list(radii),
            "annulus_pix": list(ann), "noise_correlation_factor": float(factor),
            "pixel_solid_angle_sr": float(omega),
        })
        return table

    def _noise_factor(self, model: Any, residual: np.ndarray, err: np.ndarray,
                      bad: np.ndarray, src: np.ndarray, radius: float) -> float:
        primary = model.header("PRIMARY")
        formula = drizzle_noise_factor(primary.get("PIXFRAC", 0), primary.get("PXSCLRT", 0)) \
            if "PIXFRAC" in primary and "PXSCLRT" in primary else 1.0
        if self.error_correlation == "none":
            return 1.0
        if self.error_correlation == "casertano":
            return formula
        from scipy import ndimage

        # mask every detected source generously (its footprint grown by the largest aperture)
        srcmask = np.zeros(residual.shape, dtype=bool)
        iy = np.clip(np.rint(src["y"]).astype(int), 0, residual.shape[0] - 1)
        ix = np.clip(np.rint(src["x"]).astype(int), 0, residual.shape[1] - 1)
        srcmask[iy, ix] = True
        grow = int(np.ceil(2 * radius))
        srcmask = ndimage.binary_dilation(srcmask, iterations=grow) if src.size else srcmask
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
        import os

        path = self.make_output_path(suffix="cat", ext=".ecsv")
        if os.path.dirname(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
        with atomic_path(path) as tmp:
            result.write(tmp, format="ascii.ecsv", overwrite=True)
        self.log.info("Saved catalogue in %s", path)
