"""``simulate_field``: dithered NIRCam exposures with known truth, references and associations.

Output layout (``docs/simulate.md``)::

    OUTDIR/
      jw..._<det>_uncal.fits          one per exposure and detector
      jw...-o001_..._image2_NNNNN_asn.json   one image2 association per uncal file
      jw...-o001_..._image3_00001_asn.json   one image3 association for the field
      refs/                           CRDS cache: mappings/jwst/jwst_0001.pmap ..., references/
                                      jwst/nircam/jwst_nircam_<type>_NNNN.fits, config/jwst/
      truth/                          <root>_truth.fits, sources.ecsv, cosmic_rays.ecsv,
                                      pointing.ecsv
      simulation.yaml                 parameters, CRDS context and file list
"""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from astropy.table import Table

from jwpipe.errors import ValidationError
from jwpipe.simulate.config import (
    ARCSEC_PER_PIXEL,
    DETECTORS,
    REFERENCE_BORDER,
    SimulationConfig,
)
from jwpipe.simulate.detector import make_detector
from jwpipe.simulate.distortion import (
    FILTER_OFFSETS,
    distortion_model,
    exact_inverse,
    pixel_area_map,
    write_distortion_reference,
    write_filteroffset_reference,
)
from jwpipe.simulate.pointing import (
    default_dithers,
    detector_wcs,
    draw_pointings,
    focal_offsets,
    tan_wcs,
)
from jwpipe.simulate.ramps import Readout, bias_offsets, draw_cosmic_rays, simulate_ramps
from jwpipe.simulate.reffiles import (
    NOT_APPLICABLE_TYPES,
    PHOTMJSR,
    pixel_area_sr,
    write_photometry_references,
    write_reference_files,
)
from jwpipe.simulate.scene import make_catalog, render_scene
from jwpipe.simulate.truth import write_exposure_truth, write_table
from jwpipe.simulate.uncal import ExposureInfo, exposure_duration, exposure_root, write_uncal

__all__ = ["SimulationResult", "simulate_field"]

_DET_INDEX = {name: i for i, name in enumerate(DETECTORS)}


@dataclass
class SimulationResult:
    """Paths of everything a simulation wrote."""

    outdir: Path
    uncal_files: list[Path]
    store_dir: Path
    context: str
    truth_files: list[Path]
    sources: Path
    cosmic_rays: Path
    pointing: Path
    asn_image2: list[Path]
    asn_image3: Path
    config: SimulationConfig
    timings: dict[str, float] = field(default_factory=dict)


def _rng(cfg: SimulationConfig, *stream: int) -> np.random.Generator:
    return np.random.default_rng([cfg.seed, *stream])


def _clean_store(store: Path, overwrite: bool) -> None:
    existing = [store / d for d in ("mappings", "references", "config") if (store / d).exists()]
    if existing and not overwrite:
        raise ValidationError(
            f"simulate: {store} already holds a CRDS cache; pass overwrite=True "
            "(--overwrite) to replace it"
        )
    for path in existing:
        shutil.rmtree(path)


def _v2v3_ref(offset: tuple[float, float]) -> tuple[float, float]:
    """Synthetic V2/V3 (arcsec) of a detector centre: boresight at (120, -420), VPARITY -1."""
    return (120.0 - offset[0] * ARCSEC_PER_PIXEL, -420.0 + offset[1] * ARCSEC_PER_PIXEL)


def _exposure_gwcs(det2v2v3: Any, v2v3: tuple[float, float], centre_wcs: Any,
                   shape: tuple[int, int]) -> Any:
    """The gWCS of a detector whose centre (V2_REF, V3_REF) points where the TAN WCS
    ``centre_wcs`` puts its reference point, at that WCS's roll."""
    from jwpipe.algorithms import imaging_wcs

    ra, dec = (float(v) for v in centre_wcs.wcs.crval)
    pc = centre_wcs.wcs.get_pc()
    roll = float(np.degrees(np.arctan2(pc[0, 1], pc[1, 1])))
    return imaging_wcs.imaging_gwcs(
        det2v2v3, imaging_wcs.velocity_aberration(None, *v2v3),
        imaging_wcs.v2v3_to_sky(v2v3[0], v2v3[1], roll, ra, dec), shape)


def _world_to_pixel(gwcs: Any, catalog: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact 0-based pixel positions of the catalogue under a gWCS (iterated inverse)."""
    steps = gwcs.pipeline
    v2, v3 = steps[1].transform.inverse(*steps[2].transform.inverse(catalog["ra"],
                                                                    catalog["dec"]))
    return exact_inverse(steps[0].transform, v2, v3, gwcs.array_shape)


def _write_associations(
    outdir: Path, cfg: SimulationConfig, roots: list[str], version: str
) -> tuple[list[Path], Path]:
    from jwpipe.associations import asn_from_list, write_asn

    asn_id = f"o{cfg.observation}"
    pool = f"jw{cfg.program}_{version}_pool"
    common = {"asn_id": asn_id, "program": cfg.program, "target": "t001", "pool": pool}
    candidate = f"[('{asn_id}', 'observation')]"
    constraints = (f"DMSAttrConstraint('program'='{cfg.program}') "
                   f"DMSAttrConstraint('instrument'='nircam') "
                   f"DMSAttrConstraint('opt_elem'='{cfg.filter.lower()}') "
                   f"DMSAttrConstraint('opt_elem2'='{cfg.pupil.lower()}') "
                   "DMSAttrConstraint('exp_type'='nrc_image')")

    def finish(asn: dict[str, Any]) -> dict[str, Any]:
        asn["version_id"] = version  # deterministic for a seed (not the wall clock)
        asn["constraints"] = constraints
        for product in asn["products"]:
            for member in product["members"]:
                member["asn_candidate"] = candidate
        return asn

    image2 = []
    for i, root in enumerate(roots):
        asn = asn_from_list([f"{root}_rate.fits"], asn_type="image2",
                            rule="candidate_Asn_Lv2Image", **common)
        path = outdir / f"jw{cfg.program}-{asn_id}_{version}_image2_{i + 1:05d}_asn.json"
        image2.append(Path(write_asn(finish(asn), path)))
    product = f"jw{cfg.program}-{asn_id}_t001_nircam_{cfg.pupil.lower()}-{cfg.filter.lower()}"
    asn = asn_from_list([f"{r}_cal.fits" for r in roots], product_name=product,
                        asn_type="image3", rule="candidate_Asn_Lv3Image", **common)
    path3 = outdir / f"jw{cfg.program}-{asn_id}_{version}_image3_00001_asn.json"
    return image2, Path(write_asn(finish(asn), path3))


def simulate_field(
    outdir: str | Path,
    *,
    n_exposures: int = 4,
    detectors: tuple[str, ...] | list[str] = ("nrca1",),
    size: int = 256,
    ngroups: int = 10,
    nints: int = 1,
    readpatt: str = "RAPID",
    seed: int = 1,
    overwrite: bool = False,
    **options: Any,
) -> SimulationResult:
    """Simulate a dithered NIRCam imaging field with known truth.

    Parameters
    ----------
    outdir : path
        Output directory (created if needed).
    n_exposures : int
        Number of dithered exposures.
    detectors : sequence of str
        Short-wavelength NIRCam detectors (``nrca1`` ... ``nrcb4``); ``"sw"`` for all 8
        (the multi-detector mode: every exposure is one 8-detector pointing).
    size : int
        Array size in pixels (square, 16..2048; 2048 is the full frame with 4 outputs).
    ngroups, nints : int
        Groups per integration and integrations per exposure.
    readpatt : str
        NIRCam readout pattern (RAPID, BRIGHT1/2, SHALLOW2/4, MEDIUM2/8, DEEP2/8).
    seed : int
        Random seed; the output is a deterministic function of the parameters.
    overwrite : bool
        Replace an existing simulated reference store in ``outdir/refs``.
    **options
        Any other :class:`SimulationConfig` field: ``filter``, ``pupil``, ``program``,
        ``ra``, ``dec``, ``roll``, ``date_obs``, ``frame_time``, ``n_stars``, ``n_galaxies``,
        ``star_flux_range``/``galaxy_flux_range`` (microjansky), ``background`` (MJy/sr),
        ``psf_fwhm`` (pixels), ``cr_rate`` (hits/s/pixel), ``cr_amplitude_range`` (DN),
        ``pointing_error`` (pixel range), ``roll_error`` (degrees), ``dithers`` (list of
        (dx, dy) pixels), ``useafter``, ``hot_fraction``, ``dead_fraction``.

    Returns
    -------
    SimulationResult

    Raises
    ------
    ValidationError
        For invalid parameters, or an existing store without ``overwrite``.
    """
    fields = set(SimulationConfig.__dataclass_fields__)
    unknown = sorted(set(options) - fields)
    if unknown:
        raise ValidationError(f"simulate: unknown option(s) {', '.join(unknown)}")
    detectors = (detectors,) if isinstance(detectors, str) else tuple(detectors)
    cfg = SimulationConfig(n_exposures=n_exposures, detectors=detectors, size=size,
                           ngroups=ngroups, nints=nints, readpatt=readpatt, seed=seed, **options)
    if cfg.filter not in PHOTMJSR:
        raise ValidationError(
            f"simulate: filter {cfg.filter!r} not supported; choose from {', '.join(PHOTMJSR)}"
        )
    try:
        start0 = datetime.fromisoformat(cfg.date_obs)
    except ValueError:
        raise ValidationError(f"simulate: date_obs {cfg.date_obs!r} is not ISO date-time") from None
    timings: dict[str, float] = {}
    tick = time.perf_counter()

    outdir = Path(outdir)
    store, truth = outdir / "refs", outdir / "truth"
    for d in (outdir, store, truth):
        d.mkdir(parents=True, exist_ok=True)
    _clean_store(store, overwrite)

    shape = (cfg.size, cfg.size)
    dets = {d: make_detector(_rng(cfg, 1, _DET_INDEX[d]), *shape, border=REFERENCE_BORDER,
                             hot_fraction=cfg.hot_fraction, dead_fraction=cfg.dead_fraction)
            for d in cfg.detectors}
    from jwpipe.algorithms import imaging_wcs
    from jwpipe.references import rule_from_file, write_context
    from jwpipe.references.cache_writer import reference_dir

    # the focal plane: each detector's distortion (pixels -> V2/V3) and pixel-area map
    offsets = focal_offsets(cfg.detectors, cfg.size)
    v2v3 = {name: _v2v3_ref(offsets[name]) for name in cfg.detectors}
    filter_offset = FILTER_OFFSETS.get(cfg.filter) if cfg.pupil == "CLEAR" else None
    det2v2v3 = {}
    for name in cfg.detectors:
        det2v2v3[name] = imaging_wcs.detector_to_v2v3(
            distortion_model(cfg.size, *v2v3[name]), filter_offset)
    areas = {name: pixel_area_map(det2v2v3[name], shape) for name in cfg.detectors}

    rules: dict[str, Any] = {t: "N/A" for t in NOT_APPLICABLE_TYPES}
    refdir = reference_dir(store, "NIRCAM")
    for i, (name, det) in enumerate(dets.items()):
        written = write_reference_files(refdir, det, cfg, name, counter=1 + 10 * i,
                                        area=areas[name])
        written["distortion"] = write_distortion_reference(
            refdir, cfg, name, distortion_model(cfg.size, *v2v3[name]), counter=1 + i)
        written["filteroffset"] = write_filteroffset_reference(refdir, cfg, name, counter=1 + i)
        for path in written.values():
            rule = rule_from_file(path)[1]
            rules.setdefault(rule.reftype, []).append(rule)
    photometry = write_photometry_references(reference_dir(store, "NIRCAM"), cfg,
                                             counter=1 + 10 * len(dets))
    for path in photometry.values():
        rule = rule_from_file(path)[1]
        rules.setdefault(rule.reftype, []).append(rule)
    context = write_context(store, {"NIRCAM": rules}, derived_from="jwpipe simulation")
    timings["references"] = time.perf_counter() - tick

    # scene and pointings
    dithers = cfg.dithers or default_dithers(cfg.n_exposures, cfg.size)
    if len(dithers) != cfg.n_exposures:
        raise ValidationError(
            f"simulate: {len(dithers)} dithers given for {cfg.n_exposures} exposures"
        )
    pointings = draw_pointings(_rng(cfg, 3), (cfg.ra, cfg.dec), cfg.roll, dithers,
                               cfg.pointing_error, cfg.roll_error)
    margin = 10.0 + max(abs(v) for d in dithers for v in d)
    half = cfg.size / 2
    xs = [o[0] for o in offsets.values()]
    ys = [o[1] for o in offsets.values()]
    extent = (min(xs) - half - margin, max(xs) + half + margin,
              min(ys) - half - margin, max(ys) + half + margin)
    area = (extent[1] - extent[0]) * (extent[3] - extent[2])
    n_stars = cfg.n_stars if cfg.n_stars is not None else round(25 * area / 256**2)
    n_gal = cfg.n_galaxies if cfg.n_galaxies is not None else round(15 * area / 256**2)
    catalog = make_catalog(_rng(cfg, 2), tan_wcs((cfg.ra, cfg.dec), (1.0, 1.0), cfg.roll),
                           extent, n_stars=n_stars, n_galaxies=n_gal,
                           star_flux_range=cfg.star_flux_range,
                           galaxy_flux_range=cfg.galaxy_flux_range, psf_fwhm=cfg.psf_fwhm)
    photmjsr = PHOTMJSR[cfg.filter]
    pixar = pixel_area_sr()
    rate_per_ujy = 1e-12 / (photmjsr * pixar)
    background_rate = cfg.background / photmjsr

    readout = Readout(cfg.nints, cfg.ngroups, cfg.nframes, cfg.groupgap, cfg.tframe,
                      cfg.noutputs)
    duration = exposure_duration(cfg)
    version = start0.strftime("%Y%m%dt%H%M%S")
    uncal_files: list[Path] = []
    truth_files: list[Path] = []
    roots: list[str] = []
    cr_tables: list[Table] = []
    timings["scene"] = time.perf_counter() - tick - timings["references"]
    for pt in pointings:
        start = start0 + timedelta(seconds=pt.exposure * (duration + 120.0))
        for name in cfg.detectors:
            det = dets[name]
            di = _DET_INDEX[name]
            root = exposure_root(cfg, pt.exposure, name)
            true_wcs = detector_wcs(pt, offsets[name], cfg.size, true=True)
            nominal_wcs = detector_wcs(pt, offsets[name], cfg.size, true=False)
            # the true and the nominal (header pointing) gWCS through the distortion
            true_gwcs = _exposure_gwcs(det2v2v3[name], v2v3[name], true_wcs, shape)
            x, y = _world_to_pixel(true_gwcs, catalog)
            sky = render_scene(catalog, x, y, shape, rate_per_ujy, background_rate * areas[name])
            rate = (sky * det.flat).astype(np.float32)
            rate[det.refpix] = 0.0
            light = ~det.refpix & ~det.dead
            crs = draw_cosmic_rays(_rng(cfg, 4, pt.exposure, di), light, readout, cfg.cr_rate,
                                   cfg.cr_amplitude_range)
            bias = bias_offsets(_rng(cfg, 6, pt.exposure, di), readout, cfg.size)
            data = simulate_ramps(rate, det, readout, _rng(cfg, 5, pt.exposure, di), crs, bias)
            boresight = pt.focal_wcs(False).wcs.crval
            info = ExposureInfo(pt.exposure, name, start, nominal_wcs, pt.dither,
                                (float(boresight[0]), float(boresight[1])), v2v3[name])
            uncal = write_uncal(outdir / f"{root}_uncal.fits", data, cfg, info,
                                cfg.n_exposures)
            xn, yn = _world_to_pixel(
                _exposure_gwcs(det2v2v3[name], v2v3[name], nominal_wcs, shape), catalog)
            inside = (x > -0.5) & (x < cfg.size - 0.5) & (y > -0.5) & (y < cfg.size - 0.5)
            src = Table({"id": catalog["id"], "x": x, "y": y, "x_nominal": xn,
                         "y_nominal": yn, "rate_dn_s": catalog["flux_ujy"] * rate_per_ujy,
                         "on_detector": inside})
            cr = Table(crs)
            cr.rename_column("amplitude", "amplitude_dn")
            keywords = {
                "EXPROOT": root, "DETECTOR": name, "EXPOSURE": pt.exposure + 1,
                "DITHX": (pt.dither[0], "[pix] nominal dither x"),
                "DITHY": (pt.dither[1], "[pix] nominal dither y"),
                "PERRX": (pt.error[0], "[pix] true pointing error x"),
                "PERRY": (pt.error[1], "[pix] true pointing error y"),
                "ROLLERR": (pt.roll_error, "[deg] true roll error"),
                "BKGRATE": (background_rate, "[DN/s] sky level before flat"),
                "PHOTMJSR": (photmjsr, "[MJy/sr per DN/s]"), "PIXAR_SR": pixar,
                "NCR": (len(crs), "cosmic-ray hits"), "SEED": cfg.seed,
                "CRDS_CTX": (context, "CRDS context of the references"),
            }
            keywords.update({
                "V2_REF": (v2v3[name][0], "[arcsec] V2 of the array centre"),
                "V3_REF": (v2v3[name][1], "[arcsec] V3 of the array centre"),
                "RA_REF": (float(true_wcs.wcs.crval[0]), "[deg] true RA at V2_REF, V3_REF"),
                "DEC_REF": (float(true_wcs.wcs.crval[1]), "[deg] true Dec at V2_REF, V3_REF"),
                "ROLL_REF": (pt.roll + pt.roll_error, "[deg] true V3 position angle"),
            })
            true_header = imaging_wcs.sip_header(true_gwcs, shape, max_pix_error=1e-4,
                                                 max_inv_pix_error=1e-4)
            truth_files.append(write_exposure_truth(
                truth / f"{root}_truth.fits", rate=rate, true_wcs=true_header,
                nominal_wcs=nominal_wcs, sources=src, cosmic_rays=cr, keywords=keywords,
                area=areas[name]))
            cr.add_column(np.full(len(cr), root, dtype=f"U{len(root)}"), name="exposure", index=0)
            cr_tables.append(cr)
            uncal_files.append(uncal)
            roots.append(root)
    timings["exposures"] = time.perf_counter() - tick - timings["references"] - timings["scene"]

    sources = Table(catalog)
    sources["rate_dn_s"] = catalog["flux_ujy"] * rate_per_ujy
    sources.meta.update({"photmjsr": photmjsr, "pixar_sr": pixar,
                         "background_mjysr": cfg.background,
                         "background_dn_s": background_rate,
                         "note": "rate_dn_s is the total count rate before the flat field"})
    pointing = Table(rows=[
        (pt.exposure + 1, exposure_root(cfg, pt.exposure, "x")[:-2], *pt.dither, *pt.error,
         pt.roll_error, pt.roll, *pt.nominal_crval, *pt.true_crval) for pt in pointings],
        names=("exposure", "exposure_root", "dither_x", "dither_y", "error_x", "error_y",
               "roll_error", "roll", "nominal_ra", "nominal_dec", "true_ra", "true_dec"))
    from astropy.table import vstack

    crs_all = vstack(cr_tables) if cr_tables else Table()
    paths = {
        "sources": write_table(sources, truth / "sources.ecsv"),
        "cosmic_rays": write_table(crs_all, truth / "cosmic_rays.ecsv"),
        "pointing": write_table(pointing, truth / "pointing.ecsv"),
    }
    asn2, asn3 = _write_associations(outdir, cfg, roots, version)
    timings["total"] = time.perf_counter() - tick
    summary = {
        "jwpipe_simulation": 1,
        "parameters": {k: (list(v) if isinstance(v, tuple) else v)
                       for k, v in asdict(cfg).items()},
        "reference_store": {"path": "refs", "crds_context": context},
        "uncal": [p.name for p in uncal_files],
        "asn_image2": [p.name for p in asn2],
        "asn_image3": asn3.name,
        "truth": {"exposures": [f"truth/{p.name}" for p in truth_files],
                  **{k: f"truth/{p.name}" for k, p in paths.items()}},
    }
    (outdir / "simulation.yaml").write_text(yaml.safe_dump(summary, sort_keys=False))
    return SimulationResult(outdir, uncal_files, store, context, truth_files, paths["sources"],
                            paths["cosmic_rays"], paths["pointing"], asn2, asn3, cfg, timings)
