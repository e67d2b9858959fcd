"""Small ``_calints`` members and CRDS caches for jwst's coron3, tso3 and ami3 (tests/engines).

Every file is written by STScI's stdatamodels: the members as jwst's Image2 writes them (a
CubeModel per exposure, with a simple imaging gWCS, INT_TIMES for time series, a star near
the reference pixel and a few cosmic-ray hits the outlier detection flags), the references
(``gain`` for tso_photometry, ``psfmask`` for align_refs) with the header keywords CRDS selects
on; the context names every other type the pipeline's steps declare as N/A, as a synced cache
answers for types that do not apply.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

SHAPE = (64, 64)
TSO_ROOTS = ("jw01234002001_03101_00001-seg001_nrca3", "jw01234002001_03101_00001-seg002_nrca3")
TSO_PRODUCT = "jw01234-o002_t001_nircam_f210m-clear-sub64p"
CORON_ASN = Path(__file__).parent.parent / "data" / "asn" / \
    "jw10005_20181020T033546_pool-c1000_coron3_001_asn.json"
AMI_ASN = Path(__file__).parent.parent / "data" / "asn" / \
    "jw87600_20180824T213416_pool-o027_ami3_001_asn.json"


def _wcs(shape: tuple[int, int], ra: float = 80.0, dec: float = -69.5, scale: float = 0.031):
    """A tangent-plane imaging gWCS (detector -> world), as assign_wcs leaves on a _cal."""
    from astropy import coordinates as coord
    from astropy import units as u
    from astropy.modeling import models
    from gwcs import coordinate_frames as cf
    from gwcs import wcs

    ny, nx = shape
    transform = ((models.Shift(-(nx - 1) / 2) & models.Shift(-(ny - 1) / 2))
                 | (models.Scale(scale / 3600) & models.Scale(scale / 3600))
                 | models.Pix2Sky_TAN() | models.RotateNative2Celestial(ra, dec, 180))
    detector = cf.Frame2D(name="detector", axes_order=(0, 1), unit=(u.pix, u.pix))
    sky = cf.CelestialFrame(reference_frame=coord.ICRS(), name="world",
                            unit=(u.deg, u.deg))
    result = wcs.WCS([(detector, transform), (sky, None)])
    result.bounding_box = ((-0.5, nx - 0.5), (-0.5, ny - 0.5))
    return result


def _cube(rng: np.random.Generator, nints: int, flux: float, center: tuple[float, float],
          hits: int) -> np.ndarray:
    y, x = np.mgrid[0:SHAPE[0], 0:SHAPE[1]]
    star = flux * np.exp(-((x - center[0]) ** 2 + (y - center[1]) ** 2) / (2 * 1.5**2))
    data = rng.normal(1.0, 0.05, (nints, *SHAPE)) + star
    for _ in range(hits):  # cosmic rays away from the star
        i, yy, xx = rng.integers(nints), rng.integers(2, 20), rng.integers(2, 20)
        data[i, yy, xx] += 500.0
    return data.astype(np.float32)


def _meta(model, instrument: str, detector: str, exp_type: str, filt: str, pupil: str,
          subarray: str, start: float) -> None:
    m = model.meta
    m.telescope, m.instrument.name, m.instrument.detector = "JWST", instrument, detector
    m.instrument.filter, m.instrument.pupil = filt, pupil
    if instrument == "NIRCAM":
        m.instrument.channel, m.instrument.module = "SHORT", "A"
    m.exposure.type, m.exposure.readpatt = exp_type, "RAPID"
    nints = model.data.shape[0]
    m.exposure.nints, m.exposure.ngroups, m.exposure.nframes = nints, 3, 1
    m.exposure.integration_time, m.exposure.frame_time = 2.0, 0.68
    m.exposure.exposure_time = m.exposure.effective_exposure_time = 2.0 * nints
    m.exposure.measurement_time = m.exposure.duration = 2.0 * nints
    m.exposure.start_time, m.exposure.mid_time = start, start + 0.0005
    m.exposure.end_time = start + 0.001
    m.observation.date, m.observation.time = "2023-06-01", "12:00:00"
    m.subarray.name, m.subarray.xstart, m.subarray.ystart = subarray, 1, 1
    m.subarray.xsize, m.subarray.ysize = SHAPE[1], SHAPE[0]
    m.bunit_data, m.bunit_err = "MJy/sr", "MJy/sr"
    m.photometry.pixelarea_steradians, m.photometry.pixelarea_arcsecsq = 2.26e-14, 9.6e-4
    m.wcsinfo.siaf_xref_sci, m.wcsinfo.siaf_yref_sci = 32.5, 32.5
    m.wcsinfo.ra_ref, m.wcsinfo.dec_ref, m.wcsinfo.roll_ref = 80.0, -69.5, 0.0
    m.wcsinfo.v2_ref, m.wcsinfo.v3_ref, m.wcsinfo.v3yangle = 120.6, -527.5, 0.0
    m.wcsinfo.vparity = -1
    m.cal_step.assign_wcs = m.cal_step.flat_field = m.cal_step.photom = "COMPLETE"
    m.wcs = _wcs(SHAPE)
    corners = " ".join(f"{v:.9f}" for pair in m.wcs.footprint() for v in pair)
    m.wcsinfo.s_region = f"POLYGON ICRS  {corners}"


def _members(folder: Path, roots, exp_type: str, detector: str, filt: str, pupil: str,
             subarray: str, nints: int = 6, tso: bool = False,
             instrument: str = "NIRCAM") -> None:
    from stdatamodels.jwst import datamodels as sdm

    rng = np.random.default_rng(7)
    for n, root in enumerate(roots):
        data = _cube(rng, nints, 80.0 + 10 * n, (31.8 + 0.3 * n, 32.2 - 0.2 * n), hits=3)
        model = sdm.CubeModel(data=data, err=np.full(data.shape, 0.05, np.float32),
                              dq=np.zeros(data.shape, np.uint32))
        for name in ("var_poisson", "var_rnoise", "var_flat"):
            setattr(model, name, np.full(data.shape, 0.0008, np.float32))
        start = 60100.0 + n * 0.01
        _meta(model, instrument, detector, exp_type, filt, pupil, subarray, start)
        model.meta.visit.tsovisit = tso
        if tso:
            first = 1 + n * nints
            model.meta.exposure.integration_start = first
            model.meta.exposure.integration_end = first + nints - 1
            step = 2.0 / 86400
            rows = [(first + i, start + i * step, start + (i + 0.5) * step,
                     start + (i + 1) * step, start + i * step, start + (i + 0.5) * step,
                     start + (i + 1) * step) for i in range(nints)]
            model.int_times = np.array(rows, dtype=[
                ("integration_number", "<i4"), ("int_start_MJD_UTC", "<f8"),
                ("int_mid_MJD_UTC", "<f8"), ("int_end_MJD_UTC", "<f8"),
                ("int_start_BJD_TDB", "<f8"), ("int_mid_BJD_TDB", "<f8"),
                ("int_end_BJD_TDB", "<f8")])
        model.meta.filename = f"{root}_calints.fits"
        model.save(str(folder / f"{root}_calints.fits"))


def _ref_meta(model, reftype: str, detector: str, subarray: str) -> None:
    m = model.meta
    m.reftype, m.author, m.pedigree, m.telescope = reftype, "jwpipe tests", "GROUND", "JWST"
    m.instrument.name, m.instrument.detector = "NIRCAM", detector
    m.useafter, m.description = "2022-01-01T00:00:00", f"test {reftype}"
    m.subarray.name, m.subarray.xstart, m.subarray.ystart = subarray, 1, 1
    m.subarray.xsize, m.subarray.ysize = SHAPE[1], SHAPE[0]


def _cache(cache: Path, pipeline: type, refs: list[Path], instrument: str = "NIRCAM") -> str:
    """A context with a rule (by DETECTOR) for each of ``refs`` and N/A for every other type
    ``pipeline`` and its steps declare."""
    from jwpipe.engines.jwst_stages import _reference_types
    from jwpipe.references.cache_writer import install_reference, rule_from_file, write_context

    rules: dict = {}
    for path in refs:
        rule = rule_from_file(install_reference(cache, "NIRCAM", path), ("DETECTOR",))[1]
        rules[rule.reftype] = [rule]
    declared = {t for c in (pipeline, *pipeline.step_defs.values()) for t in _reference_types(c)}
    return write_context(cache, {instrument: {**{t: "N/A" for t in sorted(declared)},
                                              **rules}})


def write_tso3(folder: Path) -> dict:
    """Two NRC_TSIMAGE segments (``_calints``, 6 integrations of 64x64 each), their tso3
    association, and a CRDS cache with a stdatamodels-written GAIN."""
    from jwst.pipeline import Tso3Pipeline
    from stdatamodels.jwst import datamodels as sdm

    inputs, made, cache = folder / "inputs", folder / "made", folder / "cache"
    for d in (inputs, made, cache):
        d.mkdir(parents=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _members(inputs, TSO_ROOTS, "NRC_TSIMAGE", "NRCA3", "F210M", "CLEAR", "SUB64P",
                 tso=True)
        gain = sdm.GainModel(data=np.full(SHAPE, 2.0, np.float32))
        _ref_meta(gain, "GAIN", "NRCA3", "SUB64P")
        gain.save(str(made / "jwst_nircam_gain_0001.fits"))
    context = _cache(cache, Tso3Pipeline, [made / "jwst_nircam_gain_0001.fits"])
    asn = {"asn_type": "tso3", "asn_rule": "candidate_Asn_Lv3TSO", "asn_id": "o002",
           "asn_pool": "jw01234_pool", "program": "01234", "target": "t001",
           "products": [{"name": TSO_PRODUCT, "members": [
               {"expname": f"{r}_calints.fits", "exptype": "science"} for r in TSO_ROOTS]}]}
    path = inputs / "jw01234-o002_tso3_001_asn.json"
    path.write_text(json.dumps(asn, indent=1))
    return {"inputs": inputs, "asn": path, "cache": cache, "context": context}


def write_coron3(folder: Path) -> dict:
    """The real coron3 association's members (two NRC_CORON science exposures and a PSF
    reference star, ``_calints`` of 4 integrations of 64x64), and a CRDS cache with a
    stdatamodels-written PSFMASK for align_refs."""
    from jwst.pipeline import Coron3Pipeline
    from stdatamodels.jwst import datamodels as sdm

    inputs, made, cache = folder / "inputs", folder / "made", folder / "cache"
    for d in (inputs, made, cache):
        d.mkdir(parents=True)
    asn = json.loads(CORON_ASN.read_text())
    roots = [m["expname"].removesuffix("_calints.fits") for m in asn["products"][0]["members"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _members(inputs, roots, "NRC_CORON", "NRCA2", "F210M", "MASKRND", "SUB64P", nints=4)
        mask = sdm.PsfMaskModel(data=np.ones(SHAPE, np.float32))
        mask.data[28:37, 28:37] = 0.0  # the occulted core is not used for the alignment
        _ref_meta(mask, "PSFMASK", "NRCA2", "SUB64P")
        mask.save(str(made / "jwst_nircam_psfmask_0001.fits"))
    context = _cache(cache, Coron3Pipeline, [made / "jwst_nircam_psfmask_0001.fits"])
    path = inputs / CORON_ASN.name
    path.write_text(json.dumps(asn, indent=1))
    return {"inputs": inputs, "asn": path, "cache": cache, "context": context, "roots": roots,
            "product": asn["products"][0]["name"]}


def write_ami3(folder: Path) -> dict:
    """The real ami3 association with its second member made a PSF reference star, its
    members as NIS_AMI ``_calints`` (to plan: ami_analyze's NRM and THROUGHPUT references
    are N/A in the cache)."""
    from jwst.pipeline import Ami3Pipeline

    inputs, cache = folder / "inputs", folder / "cache"
    for d in (inputs, cache):
        d.mkdir(parents=True)
    asn = json.loads(AMI_ASN.read_text())
    members = asn["products"][0]["members"]
    members[1]["exptype"] = "psf"
    roots = [m["expname"].removesuffix("_cal.fits") for m in members]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _members(inputs, roots, "NIS_AMI", "NIS", "F480M", "NRM", "SUB80", nints=2,
                 instrument="NIRISS")
    context = _cache(cache, Ami3Pipeline, [], instrument="NIRISS")
    path = inputs / AMI_ASN.name
    path.write_text(json.dumps(asn, indent=1))
    return {"inputs": inputs, "asn": path, "cache": cache, "context": context, "roots": roots}
