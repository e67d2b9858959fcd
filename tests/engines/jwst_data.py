"""Small real-format exposures and a CRDS cache jwst can run on (helpers for tests/engines).

The exposures are the simulator's NIRCam ramps (256x256 subarray, 5 groups) re-written by
STScI's stdatamodels (jwst reads the ASDF extension that stdatamodels writes and the simulator
does not). The cache is the simulator's, plus what jwst needs and it lacks, each in a derived
context (the cache's operational one):

* a DISTORTION and a FILTEROFFSET reference written by stdatamodels, in place of the
  simulator's own (with ``simulator_wcs`` the simulator's are kept: they are the WCS its scene
  was drawn through, and only with them do ``V2_REF``/``V3_REF`` and ``RA_REF``/``DEC_REF``
  fall on the detector, where jwst's resample measures its output pixel scale);
* ``N/A`` rules for the reference types jwst's steps declare and the simulator's context does
  not name at all (``reset``, ``rscd``, the NIRSpec/NIRISS optics types, ...): CRDS answers
  "unknown reference type" for those, and jwst's pipelines prefetch every declared type.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import warnings
from pathlib import Path

FORMATS = Path(__file__).parent.parent / "formats"
ROOTS = ("jw01234001001_02101_00001_nrca1", "jw01234001001_02101_00002_nrca1")
PRODUCT = "jw01234-o001_t001_nircam_clear-f200w"


def missing_reftypes(cache: Path, context: str, instrument: str = "NIRCAM") -> list[str]:
    """Reference types jwst's Detector1, Image2 and Image3 steps declare (their
    ``reference_file_types``) that ``context`` names no rule or N/A for."""
    from jwst.pipeline import Detector1Pipeline, Image2Pipeline, Image3Pipeline

    from jwpipe.references.cache_writer import read_selector

    imap = read_selector(cache, read_selector(cache, context)[instrument])
    declared = {t for p in (Detector1Pipeline, Image2Pipeline, Image3Pipeline)
                for c in p.step_defs.values() for t in c.reference_file_types}
    return sorted(declared - set(imap))


def make_field(root: Path, size: int = 256, ngroups: int = 5,
               simulator_wcs: bool = False) -> dict:
    """Simulate two dithered exposures, re-write them with stdatamodels, complete the cache;
    return the paths.

    With ``simulator_wcs`` the cache keeps the simulator's own DISTORTION and FILTEROFFSET
    (the ones its scene was drawn through, so the WCS is the data's true one and ``RA_REF``,
    ``DEC_REF`` fall on the detector) instead of the stdatamodels-written test references.
    """
    sys.path.insert(0, str(FORMATS))
    from formats_data import write_distortion, write_filteroffset
    from stdatamodels.jwst import datamodels as sdm

    from jwpipe.references.cache_writer import derive_context, install_reference, rule_from_file
    from jwpipe.simulate import simulate_field

    sim = simulate_field(root / "sim", n_exposures=2, size=size, ngroups=ngroups, seed=3,
                         overwrite=True)
    cache = sim.store_dir
    made = root / "made"
    made.mkdir()
    rules = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # schema warnings about simulated keyword values
        written = [write_distortion(made / "jwst_nircam_distortion_0101.asdf"),
                   write_filteroffset(made / "jwst_nircam_filteroffset_0102.asdf",
                                      [{"filter": "F200W", "pupil": "CLEAR",
                                        "column_offset": 0.0, "row_offset": 0.0}])]
        for path in written:
            rule = rule_from_file(install_reference(cache, "NIRCAM", path), ("DETECTOR",))[1]
            rules[rule.reftype] = [rule]
        with_wcs = sim.context if simulator_wcs else derive_context(cache, sim.context,
                                                                    {"NIRCAM": rules})
        lacking = missing_reftypes(cache, with_wcs)
        context = derive_context(cache, with_wcs, {"NIRCAM": {t: "N/A" for t in lacking}},
                                 operational=True)
        inputs = root / "inputs"
        inputs.mkdir()
        for uncal in sim.uncal_files:
            with sdm.Level1bModel(str(uncal)) as model:
                model.save(str(inputs / uncal.name))
    asn = inputs / sim.asn_image3.name
    shutil.copy(sim.asn_image3, asn)
    return {"inputs": inputs, "asn": asn, "cache": cache, "context": context,
            "lacking": lacking, "sim_context": sim.context}


#: MIRI and NIRISS imaging exposures written by stdatamodels: (root, detector, EXP_TYPE,
#: READPATT, filter, pupil, frame time in s, full-frame shape of the references).
OTHER_IMAGERS = {
    "MIRI": ("jw01234002001_02101_00001_mirimage", "MIRIMAGE", "MIR_IMAGE", "FASTR1", "F770W",
             None, 2.775, (1024, 1032)),
    "NIRISS": ("jw01234003001_02101_00001_nis", "NIS", "NIS_IMAGE", "NISRAPID", "CLEAR",
               "F150W", 10.737, (2048, 2048)),
}


def _reference_meta(model, reftype: str, instrument: str, detector: str):
    m = model.meta
    m.reftype, m.author, m.pedigree, m.telescope = reftype, "jwpipe tests", "GROUND", "JWST"
    m.instrument.name, m.instrument.detector = instrument, detector
    m.useafter, m.description = "2022-01-01T00:00:00", f"test {reftype}"
    with contextlib.suppress(AttributeError):  # photom and area schemas have no subarray
        m.subarray.name, m.subarray.xstart, m.subarray.ystart = "FULL", 1, 1
    return model


def write_other_imager(folder: Path, instrument: str, shape=(64, 64), ngroups: int = 6,
                       seed: int = 0) -> tuple[Path, list[Path]]:
    """A MIRI or NIRISS imaging ``_uncal`` (a 64x64 subarray with a Poisson ramp, and the
    pointing jwst's ``assign_wcs`` reads) and its references, all written by stdatamodels:
    GAIN and READNOISE for Detector1, those of :func:`write_image2_references` for Image2."""
    import numpy as np
    from stdatamodels.jwst import datamodels as sdm

    root, detector, exp_type, readpatt, filt, pupil, tframe, full = OTHER_IMAGERS[instrument]
    rng = np.random.default_rng(seed)
    ramp = 1000 + np.cumsum(rng.poisson(50.0, (1, ngroups, *shape)), axis=1)
    model = sdm.Level1bModel(data=ramp.astype(np.uint16))
    m = model.meta
    m.telescope, m.instrument.name, m.instrument.detector = "JWST", instrument, detector
    m.instrument.filter = filt
    if pupil:
        m.instrument.pupil = pupil
    m.exposure.type, m.exposure.readpatt = exp_type, readpatt
    m.exposure.nints, m.exposure.ngroups, m.exposure.nframes, m.exposure.groupgap = \
        1, ngroups, 1, 0
    m.exposure.frame_time = m.exposure.group_time = tframe
    m.exposure.integration_time = m.exposure.exposure_time = tframe * ngroups
    m.exposure.effective_exposure_time = m.exposure.measurement_time = tframe * (ngroups - 1)
    m.exposure.duration = tframe * (ngroups + 1)
    m.exposure.start_time, m.exposure.mid_time, m.exposure.end_time = \
        59800.0, 59800.001, 59800.002
    m.observation.date, m.observation.time = "2023-06-01", "12:00:00"
    m.observation.program_number, m.observation.observation_number = "01234", "002"
    m.observation.visit_number = "001"
    m.subarray.name, m.subarray.xstart, m.subarray.ystart = "SUB64", 1, 1
    m.subarray.xsize, m.subarray.ysize = shape[1], shape[0]
    m.subarray.fastaxis, m.subarray.slowaxis = 1, 2
    v2_ref, v3_ref, _, _ = IMAGER_OPTICS[instrument]
    w = m.wcsinfo
    w.v2_ref, w.v3_ref, w.vparity, w.v3yangle = v2_ref, v3_ref, -1, 0.5
    w.ra_ref, w.dec_ref, w.roll_ref = 53.16, -27.79, 290.0
    m.velocity_aberration.scale_factor = 1.00002
    folder.mkdir(parents=True, exist_ok=True)
    uncal = folder / f"{root}_uncal.fits"
    refs = [folder / f"jwst_{instrument.lower()}_{t}_0001.fits" for t in ("gain", "readnoise")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save(str(uncal))
        _reference_meta(sdm.GainModel(data=np.full(full, 5.0, np.float32)), "GAIN",
                        instrument, detector).save(str(refs[0]))
        _reference_meta(sdm.ReadnoiseModel(data=np.full(full, 10.0, np.float32)), "READNOISE",
                        instrument, detector).save(str(refs[1]))
    return uncal, refs + write_image2_references(folder, instrument)


def other_imager_cache(cache: Path, refs: dict[str, list[Path]]) -> str:
    """A CRDS cache for MIRI and NIRISS: their GAIN, READNOISE, DISTORTION, FILTEROFFSET,
    FLAT, PHOTOM and AREA, every other type jwst's imaging steps declare N/A (so those steps
    skip themselves, in a workflow as in process)."""
    from jwst.pipeline import Detector1Pipeline, Image2Pipeline, Image3Pipeline

    from jwpipe.references.cache_writer import install_reference, rule_from_file, write_context

    declared = {t for p in (Detector1Pipeline, Image2Pipeline, Image3Pipeline)
                for c in p.step_defs.values() for t in c.reference_file_types}
    rules: dict[str, dict] = {}
    for instrument, files in refs.items():
        types: dict = {t: "N/A" for t in sorted(declared)}
        for path in files:
            rule = rule_from_file(install_reference(cache, instrument, path), ("DETECTOR",))[1]
            types[rule.reftype] = [rule]
        rules[instrument] = types
    return write_context(cache, rules)


#: Imager optics for the distortion references: (V2_REF, V3_REF arcsec, pixel scale arcsec,
#: rotation degrees), close to the MIRIM_FULL and NIS_CEN apertures.
IMAGER_OPTICS = {"MIRI": (-453.36, -373.87, 0.1109, 4.8), "NIRISS": (-290.1, -697.5, 0.0656, 0.6)}


def imager_distortion(instrument: str):
    """Full-frame 0-based detector pixels -> V2/V3 (arcsec), the frames jwst's
    ``assign_wcs`` composes for MIRI and NIRISS imaging (subarray shift, filter offset, this,
    velocity aberration, V2/V3 -> sky): a rotation and scale with a few tenths of an arcsec of
    quadratic distortion at the corners, and a fitted polynomial inverse."""
    import numpy as np
    from astropy.modeling import fitting, models

    v2_ref, v3_ref, scale, rotation = IMAGER_OPTICS[instrument]
    ny, nx = OTHER_IMAGERS[instrument][7]
    cx, cy = (nx - 1) / 2.0, (ny - 1) / 2.0
    c, s = np.cos(np.radians(rotation)), np.sin(np.radians(rotation))
    half = max(nx, ny) / 2.0
    bend = 0.3 / half**2  # arcsec at the corner
    px = models.Polynomial2D(2, c1_0=-scale * c, c0_1=scale * s, c2_0=bend, c1_1=-bend / 2)
    py = models.Polynomial2D(2, c1_0=scale * s, c0_1=scale * c, c0_2=-bend, c1_1=bend / 3)
    grid = np.linspace(-1.1 * half, 1.1 * half, 40)
    xx, yy = np.meshgrid(grid, grid)
    u, v = px(xx, yy), py(xx, yy)
    fit = fitting.LinearLSQFitter()
    ix, iy = fit(models.Polynomial2D(4), u, v, xx), fit(models.Polynomial2D(4), u, v, yy)
    forward = (models.Shift(-cx) & models.Shift(-cy) | models.Mapping((0, 1, 0, 1)) | px & py
               | models.Shift(v2_ref) & models.Shift(v3_ref))
    forward.inverse = (models.Shift(-v2_ref) & models.Shift(-v3_ref)
                       | models.Mapping((0, 1, 0, 1)) | ix & iy
                       | models.Shift(cx) & models.Shift(cy))
    return forward


def write_image2_references(folder: Path, instrument: str) -> list[Path]:
    """The references jwst's Image2 reads for a MIRI or NIRISS imaging exposure, written by
    stdatamodels: DISTORTION, FILTEROFFSET, FLAT, PHOTOM (``MirImgPhotomModel`` /
    ``NisImgPhotomModel`` with their instrument's table columns) and AREA."""
    import numpy as np
    from stdatamodels.jwst import datamodels as sdm

    _, detector, exp_type, _, filt, pupil, _, full = OTHER_IMAGERS[instrument]
    scale = IMAGER_OPTICS[instrument][2]
    pixar_a2 = scale**2
    pixar_sr = pixar_a2 * (np.pi / 180 / 3600) ** 2
    low = instrument.lower()
    paths = {t: folder / f"jwst_{low}_{t}_0001.{ext}" for t, ext in (
        ("distortion", "asdf"), ("filteroffset", "asdf"), ("flat", "fits"), ("photom", "fits"),
        ("area", "fits"))}
    rng = np.random.default_rng(7)
    dist = sdm.DistortionModel(model=imager_distortion(instrument), input_units="pixel",
                               output_units="arcsec")
    offset = sdm.FilteroffsetModel()
    offset.filters = [{"filter": filt, **({"pupil": pupil} if pupil else {}),
                       "column_offset": 0.4, "row_offset": -0.3}]
    offset.meta.input_units = "pixel"
    flat = sdm.FlatModel(data=rng.normal(1.0, 0.02, full).astype(np.float32),
                         dq=np.zeros(full, np.uint32),
                         err=np.full(full, 0.01, np.float32))
    flat.dq[5, 7] = 1  # one DO_NOT_USE pixel, carried into the data's DQ by flat_field
    if instrument == "MIRI":
        photom = sdm.MirImgPhotomModel()
        photom.phot_table = np.array([(filt, "SUB64", 0.35, 0.01), (filt, "FULL", 0.35, 0.01)],
                                     dtype=[("filter", "S12"), ("subarray", "S17"),
                                            ("photmjsr", "<f4"), ("uncertainty", "<f4")])
    else:
        photom = sdm.NisImgPhotomModel()
        photom.phot_table = np.array([(filt, pupil, 0.25, 0.01)],
                                     dtype=[("filter", "S12"), ("pupil", "S12"),
                                            ("photmjsr", "<f4"), ("uncertainty", "<f4")])
    area = sdm.PixelAreaModel(data=rng.normal(1.0, 0.01, full).astype(np.float32))
    for model in (photom, area):
        model.meta.photometry.pixelarea_steradians = pixar_sr
        model.meta.photometry.pixelarea_arcsecsq = pixar_a2
    models_by_type = {"distortion": dist, "filteroffset": offset, "flat": flat,
                      "photom": photom, "area": area}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for reftype, model in models_by_type.items():
            _reference_meta(model, reftype.upper(), instrument, detector)
            with contextlib.suppress(AttributeError):  # types without EXP_TYPE in their schema
                model.meta.exposure.type = exp_type
            model.save(str(paths[reftype]))
    return list(paths.values())


#: The spectroscopic exposure of the real spec2 association
#: ``tests/data/asn/jw80600_20171108T041522_pool-o013_spec2_001_asn.json`` (MIRI LRS).
SPEC2_ASN = Path(__file__).parent.parent / "data" / "asn" / \
    "jw80600_20171108T041522_pool-o013_spec2_001_asn.json"
SPEC2_ROOT = "jw80600013001_02101_00001_mirimage"


def write_spec2_inputs(folder: Path, exp_type: str = "MIR_LRS-FIXEDSLIT") -> Path:
    """The spec2 association's ``_rate`` (a 64x64 MIRI image of ``exp_type``, written by
    stdatamodels as jwst's Detector1 writes it) next to a copy of the association."""
    import numpy as np
    from stdatamodels.jwst import datamodels as sdm

    folder.mkdir(parents=True, exist_ok=True)
    shape = (64, 64)
    model = sdm.ImageModel(data=np.ones(shape, np.float32))
    model.err = np.full(shape, 0.1, np.float32)
    m = model.meta
    m.telescope, m.instrument.name, m.instrument.detector = "JWST", "MIRI", "MIRIMAGE"
    m.instrument.filter = "P750L"
    m.exposure.type, m.exposure.readpatt = exp_type, "FASTR1"
    m.exposure.nints, m.exposure.ngroups, m.exposure.nframes = 1, 5, 1
    m.exposure.start_time, m.exposure.mid_time, m.exposure.end_time = \
        59800.0, 59800.001, 59800.002
    m.observation.date, m.observation.time = "2023-06-01", "12:00:00"
    m.subarray.name, m.subarray.xstart, m.subarray.ystart = "FULL", 1, 1
    m.subarray.xsize, m.subarray.ysize = shape[1], shape[0]
    return save_spec2_member(model, folder)


def save_spec2_member(model, folder: Path) -> Path:
    """Save ``model`` as the spec2 association's ``_rate`` in ``folder``, next to a copy of
    the association; the copy's path."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save(str(folder / f"{SPEC2_ROOT}_rate.fits"))
    asn = folder / SPEC2_ASN.name
    shutil.copy(SPEC2_ASN, asn)
    return asn


def spec2_cache(cache: Path) -> str:
    """A CRDS cache whose context names every reference type jwst's Detector1 and Spec2 steps
    declare as N/A for MIRI (what a synced cache answers for types that do not apply)."""
    from jwst.pipeline import Detector1Pipeline, Spec2Pipeline

    from jwpipe.engines.jwst_stages import _reference_types
    from jwpipe.references.cache_writer import write_context

    declared = {t for p in (Detector1Pipeline, Spec2Pipeline)
                for c in p.step_defs.values() for t in _reference_types(c)}
    return write_context(cache, {"MIRI": {t: "N/A" for t in sorted(declared)}})


def uncal_instead(rateints: Path) -> Path:
    """Replace a ``_rateints`` by an ``_uncal`` of the same exposure (its metadata, a zero
    ramp of 3 groups per integration): enough to plan Detector1 in front of it."""
    import numpy as np
    from stdatamodels.jwst import datamodels as sdm

    uncal = rateints.with_name(rateints.name.replace("_rateints", "_uncal"))
    with sdm.open(rateints) as cube:
        ramp = sdm.Level1bModel(data=np.zeros((cube.data.shape[0], 3, *cube.data.shape[1:]),
                                              np.uint16))
        ramp.update(cube)
        ramp.meta.exposure.ngroups = 3
        ramp.save(str(uncal))
    rateints.unlink()
    return uncal
