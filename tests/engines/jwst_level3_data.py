"""Small ``_calints`` members and CRDS caches for jwst's coron3, tso3 and ami3 (tests/engines).

Every file is written by STScI's stdatamodels: the members as jwst's Image2 writes them (a
CubeModel per exposure, with a simple imaging gWCS, INT_TIMES for time series, a star near the
reference pixel and a few cosmic-ray hits the outlier detection flags), the references
(``gain`` for tso_photometry, ``psfmask`` for align_refs, ``nrm`` and ``throughput`` for
ami_analyze) with the header keywords CRDS selects on; the context names every other type the
pipeline's steps declare as N/A, as a synced cache answers for types that do not apply.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
from jwst_data import IMAGER_OPTICS, _reference_meta, imager_distortion

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
        centre = (SHAPE[1] / 2 - 0.2 + 0.3 * n, SHAPE[0] / 2 + 0.2 - 0.2 * n)
        data = _cube(rng, nints, 80.0 + 10 * n, centre, hits=3)
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


def _cache(cache: Path, pipeline: type, refs: list[Path], instrument: str = "NIRCAM",
           keys: dict[str, tuple[str, ...]] | None = None, also: tuple[type, ...] = ()) -> str:
    """A context with a rule for each of ``refs`` (by DETECTOR, or by the keywords ``keys``
    names for its file) and N/A for every other type ``pipeline`` and its steps declare."""
    from jwpipe.engines.jwst_stages import _reference_types
    from jwpipe.references.cache_writer import install_reference, rule_from_file, write_context

    rules: dict = {}
    for path in refs:
        rule = rule_from_file(install_reference(cache, instrument, path),
                              (keys or {}).get(path.name, ("DETECTOR",)))[1]
        rules[rule.reftype] = [rule]
    declared = {t for p in (pipeline, *also) for c in (p, *p.step_defs.values())
                for t in _reference_types(c)}
    return write_context(cache, {instrument: {**{t: "N/A" for t in sorted(declared)},
                                              **rules}})


def write_tso3(folder: Path, nints: int = 6, also: tuple[type, ...] = ()) -> dict:
    """Two NRC_TSIMAGE segments (``_calints``, ``nints`` integrations of :data:`SHAPE` each),
    their tso3 association, and a CRDS cache with a stdatamodels-written GAIN (and N/A for the
    reference types of the pipelines ``also`` names)."""
    from jwst.pipeline import Tso3Pipeline
    from stdatamodels.jwst import datamodels as sdm

    inputs, made, cache = folder / "inputs", folder / "made", folder / "cache"
    for d in (inputs, made, cache):
        d.mkdir(parents=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _members(inputs, TSO_ROOTS, "NRC_TSIMAGE", "NRCA3", "F210M", "CLEAR", "SUB64P",
                 nints=nints, tso=True)
        gain = sdm.GainModel(data=np.full(SHAPE, 2.0, np.float32))
        _ref_meta(gain, "GAIN", "NRCA3", "SUB64P")
        gain.save(str(made / "jwst_nircam_gain_0001.fits"))
    context = _cache(cache, Tso3Pipeline, [made / "jwst_nircam_gain_0001.fits"], also=also)
    asn = {"asn_type": "tso3", "asn_rule": "candidate_Asn_Lv3TSO", "asn_id": "o002",
           "asn_pool": "jw01234_pool", "program": "01234", "target": "t001",
           "products": [{"name": TSO_PRODUCT, "members": [
               {"expname": f"{r}_calints.fits", "exptype": "science"} for r in TSO_ROOTS]}]}
    path = inputs / "jw01234-o002_tso3_001_asn.json"
    path.write_text(json.dumps(asn, indent=1))
    return {"inputs": inputs, "asn": path, "cache": cache, "context": context}


def write_coron3(folder: Path, nints: int = 4, also: tuple[type, ...] = ()) -> dict:
    """The real coron3 association's members (two NRC_CORON science exposures and a PSF
    reference star, ``_calints`` of ``nints`` integrations of :data:`SHAPE`), and a CRDS cache
    with a stdatamodels-written PSFMASK for align_refs (and N/A for the reference types of the
    pipelines ``also`` names)."""
    from jwst.pipeline import Coron3Pipeline
    from stdatamodels.jwst import datamodels as sdm

    inputs, made, cache = folder / "inputs", folder / "made", folder / "cache"
    for d in (inputs, made, cache):
        d.mkdir(parents=True)
    asn = json.loads(CORON_ASN.read_text())
    roots = [m["expname"].removesuffix("_calints.fits") for m in asn["products"][0]["members"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _members(inputs, roots, "NRC_CORON", "NRCA2", "F210M", "MASKRND", "SUB64P",
                 nints=nints)
        mask = sdm.PsfMaskModel(data=np.ones(SHAPE, np.float32))
        cy, cx = SHAPE[0] // 2, SHAPE[1] // 2  # the occulted core is not used to align
        mask.data[cy - 4:cy + 5, cx - 4:cx + 5] = 0.0
        _ref_meta(mask, "PSFMASK", "NRCA2", "SUB64P")
        mask.save(str(made / "jwst_nircam_psfmask_0001.fits"))
    context = _cache(cache, Coron3Pipeline, [made / "jwst_nircam_psfmask_0001.fits"],
                     also=also)
    path = inputs / CORON_ASN.name
    path.write_text(json.dumps(asn, indent=1))
    return {"inputs": inputs, "asn": path, "cache": cache, "context": context, "roots": roots,
            "product": asn["products"][0]["name"]}


#: The non-redundant mask's hole centres as designed (m, pupil plane; NRM_X_A1...), its
#: holes' flat-to-flat size, the pupil's flat-to-flat and circumscribed diameters (m), as the
#: NIRISS NRM reference file states them; AMI's pixel scale (deg).
NRM_HOLES = ((0.0, -2.64), (-2.28631, 0.0), (2.28631, -1.32), (-2.28631, 1.32),
             (-1.143155, 1.98), (2.28631, 1.32), (1.143155, 1.98))
NRM_F2F, NRM_DIAMETER, NRM_CIRCUMSCRIBED = 0.8, 6.559348, 6.610645669
AMI_SHAPE, AMI_SCALE = (80, 80), 65.6 / 3.6e6


def _nrm_pupil(npix: int) -> np.ndarray:
    """The mask's transmission sampled on ``npix`` x ``npix`` across the circumscribed pupil
    (hexagonal holes, flat sides along y)."""
    from jwst.ami.bp_fix import PUPLDIAM

    step = PUPLDIAM / npix
    y, x = (np.mgrid[0:npix, 0:npix] - (npix - 1) / 2) * step
    pupil = np.zeros((npix, npix), np.float32)
    half = NRM_F2F / 2
    for cx, cy in NRM_HOLES:
        dx, dy = np.abs(x - cx), np.abs(y - cy)
        pupil[(dy <= half) & (dy * 0.5 + dx * np.sqrt(3) / 2 <= half)] = 1.0
    return pupil


def _ami_psf(pupil: np.ndarray, offset: tuple[float, float]) -> np.ndarray:
    """The NRM's polychromatic fringe pattern on the 80x80 SUB80 (F480M half-power edges and
    centre), through jwst's own monochromatic PSF of the mask, shifted by ``offset`` pixels."""
    from jwst.ami.bp_fix import calcpsf, filthp_d, filtwl_d
    from scipy.ndimage import shift

    low, high = filthp_d["F480M"]
    psf = sum(calcpsf(wl, AMI_SHAPE[0], np.deg2rad(AMI_SCALE), pupil)
              for wl in (low, filtwl_d["F480M"], high))
    return shift(psf / psf.max(), offset, order=1)


def _ami_members(folder: Path, roots, kinds, nints: int, suffix: str = "calints") -> None:
    """NIS_AMI SUB80 ``_calints`` (as Image2 leaves them), or ``_rateints`` (as Detector1
    does: no WCS, not flat-fielded or calibrated)."""
    from stdatamodels.jwst import datamodels as sdm

    rng = np.random.default_rng(11)
    pupil = _nrm_pupil(256)
    for n, (root, kind) in enumerate(zip(roots, kinds, strict=True)):
        peak = 3000.0 if kind == "science" else 5000.0
        psf = _ami_psf(pupil, (0.3 - 0.2 * n, -0.2 + 0.1 * n)) * peak
        data = (rng.poisson(np.clip(psf, 0, None), (nints, *AMI_SHAPE))
                + rng.normal(0.0, 3.0, (nints, *AMI_SHAPE))).astype(np.float32)
        shape = data.shape
        model = sdm.CubeModel(data=data, err=np.sqrt(np.abs(data) + 9).astype(np.float32),
                              dq=np.zeros(shape, np.uint32))
        model.dq[:, 5, 70] = 1  # one DO_NOT_USE pixel, away from the fringes
        for name in ("var_poisson", "var_rnoise", "var_flat"):
            setattr(model, name, np.full(shape, 1.0, np.float32))
        _meta(model, "NIRISS", "NIS", "NIS_AMI", "F480M", "NRM", "SUB80",
              60100.0 + n * 0.01)
        m = model.meta
        m.subarray.xstart, m.subarray.ystart = 1045, 1
        m.subarray.xsize, m.subarray.ysize = AMI_SHAPE[1], AMI_SHAPE[0]
        m.exposure.readpatt = "NISRAPID"
        m.wcs = _wcs(AMI_SHAPE, scale=AMI_SCALE * 3600)
        m.wcsinfo.cdelt1 = m.wcsinfo.cdelt2 = AMI_SCALE
        m.wcsinfo.crpix1 = m.wcsinfo.crpix2 = 40.5
        m.wcsinfo.roll_ref, m.wcsinfo.v3yangle, m.wcsinfo.vparity = 171.88, 0.5613, 1
        m.target.proposer_name = "TARGET" if kind == "science" else "CALIBRATOR"
        m.target.catalog_name = m.target.proposer_name
        m.target.ra, m.target.dec = 82.187 + 0.1 * n, -65.448
        m.target.proper_motion_ra = m.target.proper_motion_dec = 0.0
        m.target.ra_uncertainty = m.target.dec_uncertainty = 0.0001
        m.program.pi_name = "jwpipe tests"
        m.visit.start_time = f"2023-06-01 12:{n:02d}:00.000"
        if suffix == "rateints":
            del m.wcs
            m.cal_step.assign_wcs = m.cal_step.flat_field = m.cal_step.photom = None
            m.bunit_data = m.bunit_err = "DN/s"
            v2_ref, v3_ref = IMAGER_OPTICS["NIRISS"][:2]
            m.wcsinfo.v2_ref, m.wcsinfo.v3_ref = v2_ref, v3_ref
            m.wcsinfo.ra_ref, m.wcsinfo.dec_ref = m.target.ra, m.target.dec
            m.velocity_aberration.scale_factor = 1.00002
        m.filename = f"{root}_{suffix}.fits"
        model.save(str(folder / f"{root}_{suffix}.fits"))


def _ami_image2_references(made: Path) -> list[Path]:
    """What jwst's Image2 reads for NIS_AMI SUB80 members, written by stdatamodels: the
    NIRISS imager DISTORTION, an F480M/NRM FILTEROFFSET and PHOTOM row, a SUB80 FLAT."""
    from stdatamodels.jwst import datamodels as sdm

    rng = np.random.default_rng(5)
    flat = sdm.FlatModel(data=rng.normal(1.0, 0.02, AMI_SHAPE).astype(np.float32),
                         dq=np.zeros(AMI_SHAPE, np.uint32),
                         err=np.full(AMI_SHAPE, 0.01, np.float32))
    offset = sdm.FilteroffsetModel()
    offset.filters = [{"filter": "F480M", "pupil": "NRM", "column_offset": 0.2,
                       "row_offset": -0.1}]
    offset.meta.input_units = "pixel"
    photom = sdm.NisImgPhotomModel()
    photom.phot_table = np.array([("F480M", "NRM", 0.25, 0.01)],
                                 dtype=[("filter", "S12"), ("pupil", "S12"),
                                        ("photmjsr", "<f4"), ("uncertainty", "<f4")])
    photom.meta.photometry.pixelarea_steradians = (AMI_SCALE * np.pi / 180) ** 2
    photom.meta.photometry.pixelarea_arcsecsq = (AMI_SCALE * 3600) ** 2
    dist = sdm.DistortionModel(model=imager_distortion("NIRISS"), input_units="pixel",
                               output_units="arcsec")
    paths = []
    for model, reftype in ((dist, "DISTORTION"), (offset, "FILTEROFFSET"), (flat, "FLAT"),
                           (photom, "PHOTOM")):
        _reference_meta(model, reftype, "NIRISS", "NIS")
        if reftype == "FLAT":
            sub = model.meta.subarray
            sub.name, sub.xstart, sub.ystart = "SUB80", 1045, 1
            sub.xsize, sub.ysize = AMI_SHAPE[1], AMI_SHAPE[0]
        ext = "asdf" if reftype in ("DISTORTION", "FILTEROFFSET") else "fits"
        path = made / f"jwst_niriss_{reftype.lower()}_0001.{ext}"
        model.save(str(path))
        paths.append(path)
    return paths


def _ami_references(made: Path) -> list[Path]:
    """NIRISS NRM and F480M THROUGHPUT references, written by stdatamodels."""
    from jwst.ami.bp_fix import filthp_d
    from stdatamodels.jwst import datamodels as sdm

    nrm = sdm.NRMModel(nrm=_nrm_pupil(256))
    nrm.flat_to_flat, nrm.diameter = NRM_F2F, NRM_DIAMETER
    nrm.pupil_circumscribed = NRM_CIRCUMSCRIBED
    for i, (x, y) in enumerate(NRM_HOLES, 1):
        setattr(nrm, f"x_a{i}", x)
        setattr(nrm, f"y_a{i}", y)
    nrm.meta.exposure.type = "NIS_AMI"
    low, high = filthp_d["F480M"]
    wave = np.linspace(low - 0.1e-6, high + 0.1e-6, 40)
    table = np.zeros(wave.size, [("wavelength", "<f4"), ("throughput", "<f4")])
    table["wavelength"] = wave * 1e10  # Angstrom
    table["throughput"] = np.where((wave >= low) & (wave <= high), 0.9, 0.01)
    throughput = sdm.ThroughputModel(filter_table=table)
    throughput.meta.instrument.filter = "F480M"
    paths = []
    for model, reftype, name in ((nrm, "NRM", "jwst_niriss_nrm_0001.fits"),
                                 (throughput, "THROUGHPUT", "jwst_niriss_throughput_0001.fits")):
        m = model.meta
        m.reftype, m.author, m.pedigree, m.telescope = reftype, "jwpipe tests", "GROUND", "JWST"
        m.instrument.name, m.instrument.detector = "NIRISS", "NIS"
        m.useafter, m.description = "2022-01-01T00:00:00", f"test {reftype}"
        model.save(str(made / name))
        paths.append(made / name)
    return paths


def write_ami3(folder: Path, nints: int = 2, suffix: str = "calints") -> dict:
    """The real ami3 association with its second member made a PSF reference star and its
    members named ``_calints`` (as jwst 3 reads them), the members NIS_AMI SUB80 ``_calints``
    (``nints`` integrations of the NRM's fringes, written by stdatamodels), and a CRDS cache
    with stdatamodels-written NRM (by EXP_TYPE) and THROUGHPUT (by FILTER) references, the
    match parameters of the operational NIRISS rmaps."""
    from jwst.pipeline import Ami3Pipeline, Detector1Pipeline, Image2Pipeline

    inputs, made, cache = folder / "inputs", folder / "made", folder / "cache"
    for d in (inputs, made, cache):
        d.mkdir(parents=True)
    asn = json.loads(AMI_ASN.read_text())
    members = asn["products"][0]["members"]
    members[1]["exptype"] = "psf"
    roots = [m["expname"].removesuffix("_cal.fits") for m in members]
    for member, root in zip(members, roots, strict=True):
        member["expname"] = f"{root}_calints.fits"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _ami_members(inputs, roots, [m["exptype"] for m in members], nints, suffix)
        refs = _ami_references(made)
        image2 = _ami_image2_references(made) if suffix == "rateints" else []
    context = _cache(cache, Ami3Pipeline, [*refs, *image2], instrument="NIRISS",
                     keys={refs[0].name: ("EXP_TYPE",), refs[1].name: ("FILTER",)},
                     also=(Detector1Pipeline, Image2Pipeline) if image2 else ())
    path = inputs / AMI_ASN.name
    path.write_text(json.dumps(asn, indent=1))
    return {"inputs": inputs, "asn": path, "cache": cache, "context": context, "roots": roots,
            "product": asn["products"][0]["name"]}
