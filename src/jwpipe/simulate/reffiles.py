"""Write the simulator's reference files in the JWST reference-file layouts (jwst.md section 4).

Every file has an empty primary HDU with the standard keywords (REFTYPE, DESCRIP, AUTHOR,
USEAFTER, PEDIGREE, TELESCOP, INSTRUME, DETECTOR, FILETYPE, DATAMODL, subarray keywords) and the
type's data extensions. Arrays are in DMS (science) orientation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits

from jwpipe.simulate._io import write_fits_atomic
from jwpipe.simulate.config import ARCSEC_PER_PIXEL, DETECTORS, SimulationConfig
from jwpipe.simulate.detector import DQ, DetectorProperties

__all__ = ["NOT_APPLICABLE_TYPES", "PHOTMJSR", "measured_encircled_energy", "pixel_area_sr",
           "write_photometry_references", "write_reference_files"]

#: Illustrative MJy/sr per DN/s for the short-wavelength filters (CLEAR pupil).
PHOTMJSR: dict[str, float] = {
    "F070W": 0.52, "F090W": 0.33, "F115W": 0.28, "F140M": 0.60, "F150W": 0.24,
    "F150W2": 0.08, "F162M": 0.55, "F164N": 5.10, "F182M": 0.48, "F187N": 4.50,
    "F200W": 0.22, "F210M": 0.45, "F212N": 4.20,
}

#: Reference types that do not apply to the simulated data (written as N/A rules).
NOT_APPLICABLE_TYPES = ("ipc", "refpix", "sirskernel", "persat", "trapdensity", "trappars",
                        "pictureframe")

_MODELS = {
    "mask": ("MaskModel", "Bad-pixel mask"),
    "saturation": ("SaturationModel", "Saturation thresholds (raw DN, bias included)"),
    "superbias": ("SuperBiasModel", "Super bias"),
    "linearity": ("LinearityModel", "Linearity correction coefficients"),
    "dark": ("DarkModel", "Dark current, cumulative DN per group"),
    "gain": ("GainModel", "Gain"),
    "readnoise": ("ReadnoiseModel", "CDS read noise"),
    "flat": ("FlatModel", "Pixel flat field"),
    "photom": ("NrcImgPhotomModel", "Photometric conversion"),
    "area": ("PixelAreaModel", "Relative pixel area"),
}


def pixel_area_sr() -> float:
    """Solid angle of one pixel in steradians."""
    return float(np.deg2rad(ARCSEC_PER_PIXEL / 3600.0) ** 2)


def _dq_def(names: list[str]) -> fits.BinTableHDU:
    values = np.array([DQ[n] for n in names], dtype=np.uint32)
    bits = np.array([int(v).bit_length() - 1 for v in values], dtype=np.int32)
    cols = [
        fits.Column("BIT", "J", array=bits),
        fits.Column("VALUE", "J", array=values, bzero=2**31),
        fits.Column("NAME", "40A", array=np.array(names)),
        fits.Column("DESCRIPTION", "80A", array=np.array([n.replace("_", " ").lower()
                                                           for n in names])),
    ]
    return fits.BinTableHDU.from_columns(cols, name="DQ_DEF")


def _primary(cfg: SimulationConfig, detector: str, reftype: str, **extra) -> fits.PrimaryHDU:
    model, descrip = _MODELS[reftype]
    _, _, _, fast, slow = DETECTORS[detector]
    h = fits.Header()
    h["DATE"] = (cfg.useafter, "date this file was created (UTC)")
    h["REFTYPE"] = (reftype.upper(), "reference file type")
    h["DESCRIP"] = f"{descrip} (jwpipe simulation)"
    h["AUTHOR"] = ("jwpipe.simulate", "author of the reference file")
    h["USEAFTER"] = (cfg.useafter, "use after this date")
    h["PEDIGREE"] = ("SIMULATION", "pedigree of the reference file")
    h["TELESCOP"] = ("JWST", "telescope used to acquire the data")
    h["INSTRUME"] = ("NIRCAM", "instrument used to acquire the data")
    h["DETECTOR"] = (detector, "name of detector used to acquire the data")
    h["FILETYPE"] = (reftype.upper(), "type of data in the file")
    h["DATAMODL"] = (model, "type of data model")
    h["SUBARRAY"] = (cfg.subarray, "subarray used")
    h["SUBSTRT1"] = (1, "starting pixel in axis 1 direction")
    h["SUBSTRT2"] = (1, "starting pixel in axis 2 direction")
    h["SUBSIZE1"] = (cfg.size, "number of pixels in axis 1 direction")
    h["SUBSIZE2"] = (cfg.size, "number of pixels in axis 2 direction")
    h["FASTAXIS"] = (fast, "fast readout axis direction")
    h["SLOWAXIS"] = (slow, "slow readout axis direction")
    for key, value in extra.items():
        h[key] = value
    h["HISTORY"] = "Written by jwpipe.simulate from the same arrays that generated the data."
    h["HISTORY"] = f"Simulation seed {cfg.seed}."
    return fits.PrimaryHDU(header=h)


def _image(data: np.ndarray, name: str, bunit: str | None = None) -> fits.ImageHDU:
    hdu = fits.ImageHDU(data, name=name)
    if bunit:
        hdu.header["BUNIT"] = bunit
    return hdu


def dark_reference(det: DetectorProperties, cfg: SimulationConfig) -> np.ndarray:
    """Expected cumulative dark signal (DN) of each group for the readout pattern."""
    g = np.arange(cfg.ngroups, dtype=np.float64)
    mean_frame = g * (cfg.nframes + cfg.groupgap) + (cfg.nframes + 1) / 2.0
    return (det.dark_rate[None, :, :] * (cfg.tframe * mean_frame)[:, None, None]).astype(
        np.float32)


def write_reference_files(
    directory: Path, det: DetectorProperties, cfg: SimulationConfig, detector: str, counter: int,
    area: np.ndarray | None = None,
) -> dict[str, Path]:
    """Write the ten reference files of one detector; return reftype -> path.

    The CRDS cache's rules for them are written by the caller (:mod:`jwpipe.references`).
    ``area`` is the detector's relative pixel area (distortion): the AREA reference, and a
    factor of the FLAT reference, which flattens the sky as JWST's flats do (None: 1).

    Files are named ``jwst_nircam_<reftype>_<NNNN>.fits`` with a running number starting at
    ``counter``.
    """
    f32 = np.float32
    ny, nx = det.gain.shape
    zeros_dq = np.zeros((ny, nx), dtype=np.uint32)
    pixar = pixel_area_sr()
    pixar_a2 = ARCSEC_PER_PIXEL**2
    area = np.ones((ny, nx), f32) if area is None else np.asarray(area, f32)
    flat = np.where(det.refpix, det.flat, det.flat * area).astype(f32)
    flat_dq = np.where(det.flat == 0, DQ["DO_NOT_USE"] | DQ["NO_FLAT_FIELD"], 0).astype(np.uint32)
    rp = {"READPATT": (cfg.readpatt, "readout pattern")}
    hdus: dict[str, list[fits.hdu.base.ExtensionHDU]] = {
        "mask": [_image(det.mask, "DQ"),
                 _dq_def(["DO_NOT_USE", "DEAD", "HOT", "NO_FLAT_FIELD", "REFERENCE_PIXEL"])],
        "saturation": [_image(det.saturation, "SCI", "DN"), _image(zeros_dq, "DQ"),
                       _dq_def(["DO_NOT_USE"])],
        "superbias": [_image(det.superbias, "SCI", "DN"),
                      _image(np.full((ny, nx), 2.0, f32), "ERR", "DN"), _image(zeros_dq, "DQ"),
                      _dq_def(["DO_NOT_USE"])],
        "linearity": [_image(det.lin_coeffs, "COEFFS"), _image(zeros_dq, "DQ"),
                      _dq_def(["DO_NOT_USE"])],
        "dark": [_image(dark_reference(det, cfg), "SCI", "DN"),
                 _image(np.full((cfg.ngroups, ny, nx), 0.01, f32), "ERR", "DN"),
                 _image(zeros_dq, "DQ"), _dq_def(["DO_NOT_USE"])],
        "gain": [_image(det.gain, "SCI", "ELECTRONS/DN")],
        "readnoise": [_image(det.readnoise, "SCI", "DN")],
        "flat": [_image(flat, "SCI"), _image(np.full((ny, nx), 0.005, f32), "ERR"),
                 _image(flat_dq, "DQ"), _dq_def(["DO_NOT_USE", "NO_FLAT_FIELD"])],
        "area": [_image(area, "SCI")],
    }
    filters = sorted(PHOTMJSR)
    photom = fits.BinTableHDU.from_columns(
        [fits.Column("filter", "12A", array=np.array(filters)),
         fits.Column("pupil", "12A", array=np.array(["CLEAR"] * len(filters))),
         fits.Column("photmjsr", "E", array=np.array([PHOTMJSR[f] for f in filters], f32)),
         fits.Column("uncertainty", "E",
                     array=np.array([0.01 * PHOTMJSR[f] for f in filters], f32))],
        name="PHOTOM",
    )
    hdus["photom"] = [photom]
    extra: dict[str, dict] = {
        "superbias": rp,
        "readnoise": rp,
        "dark": rp | {
            "NFRAMES": (cfg.nframes, "number of frames per group"),
            "NGROUPS": (cfg.ngroups, "number of groups in integration"),
            "GROUPGAP": (cfg.groupgap, "number of frames dropped between groups"),
            "TFRAME": (cfg.tframe, "[s] time between frames"),
            "TGROUP": (cfg.tgroup, "[s] time between groups"),
        },
        "gain": {"GAINFACT": (1.0, "gain scale factor")},
        "flat": {"FILTER": (cfg.filter, "filter"), "PUPIL": (cfg.pupil, "pupil"),
                 "EXP_TYPE": ("NRC_IMAGE", "type of data")},
        "photom": {"EXP_TYPE": ("NRC_IMAGE", "type of data"),
                   "PIXAR_SR": (pixar, "nominal pixel area in steradians"),
                   "PIXAR_A2": (pixar_a2, "nominal pixel area in arcsec^2")},
        "area": {"FILTER": (cfg.filter, "filter"), "PUPIL": (cfg.pupil, "pupil"),
                 "EXP_TYPE": ("NRC_IMAGE", "type of data"),
                 "PIXAR_SR": (pixar, "nominal pixel area in steradians"),
                 "PIXAR_A2": (pixar_a2, "nominal pixel area in arcsec^2")},
    }
    paths: dict[str, Path] = {}
    directory.mkdir(parents=True, exist_ok=True)
    for i, reftype in enumerate(_MODELS):
        path = directory / f"jwst_nircam_{reftype}_{counter + i:04d}.fits"
        primary = _primary(cfg, detector, reftype, **extra.get(reftype, {}))
        write_fits_atomic(fits.HDUList([primary, *hdus[reftype]]), path)
        paths[reftype] = path
    return paths


#: Encircled-energy levels written to the simulator's APCORR reference (fractions).
APCORR_EEFRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
#: Illustrative AB - Vega offsets (mag) of the simulated filters.
ABVEGA_OFFSET = 1.0


def measured_encircled_energy(cfg: SimulationConfig, radius: np.ndarray) -> np.ndarray:
    """Fraction of a simulated star's flux that circular-aperture photometry on the default
    mosaic finds within ``radius`` (native pixels), averaged over sub-pixel phases.

    The simulator's PSF is a Gaussian of FWHM ``cfg.psf_fwhm`` integrated over the detector
    pixel; drizzling (square kernel, pixfrac 1, native scale) spreads it over the input pixel
    footprint, the output pixel averages it, and exact-overlap apertures treat pixels as
    uniform. Averaged over phases each of the four is a convolution with a unit box, so the
    profile is a Gaussian convolved with four unit boxes along each axis, integrated here
    numerically over the disc.
    """
    sigma = cfg.psf_fwhm / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    h = 0.01
    half = 6.0 * sigma + 3.0
    t = np.arange(-half, half + h / 2, h)
    profile = np.exp(-0.5 * (t / sigma) ** 2)
    box = np.ones(round(1.0 / h))
    for _ in range(4):
        profile = np.convolve(profile, box, mode="same")
    profile /= profile.sum()
    rr = np.hypot(t[:, None], t[None, :])
    weights = profile[:, None] * profile[None, :]
    order = np.argsort(rr, axis=None)
    cum = np.cumsum(weights.ravel()[order])
    return np.interp(np.asarray(radius, dtype=np.float64), rr.ravel()[order], cum)


def write_photometry_references(directory: Path, cfg: SimulationConfig, counter: int
                                ) -> dict[str, Path]:
    """Write APCORR (FITS) and ABVEGAOFFSET (ASDF) references for the source catalogue.

    APCORR rows are exact for the simulated PSF as measured on the default mosaic
    (:func:`measured_encircled_energy`): the radius enclosing ``eefraction``,
    ``apcorr = 1 / eefraction``, and a background annulus well outside the PSF. Files:
    ``jwst_nircam_apcorr_<NNNN>.fits`` and ``jwst_nircam_abvegaoffset_<NNNN>.asdf``.
    """
    import asdf
    from astropy.table import Table

    ee = np.array(APCORR_EEFRACTIONS)
    n = ee.size
    grid = np.linspace(0.05, 4.0 * cfg.psf_fwhm, 2000)
    radius = np.interp(ee, measured_encircled_energy(cfg, grid), grid)
    skyin, skyout = np.ceil(4.0 * cfg.psf_fwhm), np.ceil(6.0 * cfg.psf_fwhm)
    table = fits.BinTableHDU.from_columns(
        [fits.Column("filter", "12A", array=np.array([cfg.filter] * n)),
         fits.Column("pupil", "15A", array=np.array([cfg.pupil] * n)),
         fits.Column("eefraction", "E", array=ee.astype(np.float32)),
         fits.Column("radius", "E", array=radius.astype(np.float32)),
         fits.Column("apcorr", "E", array=(1.0 / ee).astype(np.float32)),
         fits.Column("skyin", "E", array=np.full(n, skyin, np.float32)),
         fits.Column("skyout", "E", array=np.full(n, skyout, np.float32))],
        name="APCORR")
    h = fits.Header()
    for key, value in (("DATE", cfg.useafter), ("REFTYPE", "APCORR"),
                       ("DESCRIP", "Aperture corrections of the simulated PSF"),
                       ("AUTHOR", "jwpipe.simulate"), ("USEAFTER", cfg.useafter),
                       ("PEDIGREE", "SIMULATION"), ("TELESCOP", "JWST"), ("INSTRUME", "NIRCAM"),
                       ("EXP_TYPE", "NRC_IMAGE"), ("FILETYPE", "APCORR"),
                       ("DATAMODL", "NrcImgApcorrModel")):
        h[key] = value
    paths = {"apcorr": directory / f"jwst_nircam_apcorr_{counter:04d}.fits",
             "abvegaoffset": directory / f"jwst_nircam_abvegaoffset_{counter + 1:04d}.asdf"}
    write_fits_atomic(fits.HDUList([fits.PrimaryHDU(header=h), table]), paths["apcorr"])
    filters = sorted(set(PHOTMJSR) | {cfg.filter})
    tree = {
        "meta": {"reftype": "ABVEGAOFFSET", "useafter": cfg.useafter, "author": "jwpipe.simulate",
                 "pedigree": "SIMULATION", "telescope": "JWST", "model_type": "ABVegaOffsetModel",
                 "description": "AB - Vega offsets (jwpipe simulation)",
                 "instrument": {"name": "NIRCAM"}, "exposure": {"type": "NRC_IMAGE"}},
        "abvega_offset": Table({"filter": filters, "pupil": [cfg.pupil] * len(filters),
                                "abvega_offset": [ABVEGA_OFFSET] * len(filters)}),
    }
    tmp = paths["abvegaoffset"].with_name(paths["abvegaoffset"].name + ".part")
    asdf.AsdfFile(tree).write_to(tmp)
    tmp.replace(paths["abvegaoffset"])
    return paths
