"""A small MIRI LRS fixed-slit exposure and the references jwst's Spec2 reads for it, all
written by stdatamodels (helpers for tests/engines).

jwst 3.0's Spec2 on MIR_LRS-FIXEDSLIT reads: ``assign_wcs`` DISTORTION (the imager's detector
to V2/V3) and SPECWCS (``MiriLRSSpecwcsModel``: the slit's reference pixel and the trace table
of x, y, wavelength and box corners); ``flat_field`` FLAT; ``pathloss`` PATHLOSS
(``MirLrsPathlossModel``: a wavelength x position grid); ``photom`` PHOTOM
(``MirLrsPhotomModel``: a row per FILTER and SUBARRAY with a relative response per
wavelength). ``extract_1d`` runs with EXTRACT1D and APCORR N/A (its default aperture, no
aperture correction), ``photom`` with AREA N/A, ``targ_centroid`` with no TA image (skipped, as
jwst skips it without one); ``resample_spec`` reads no reference.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

from jwst_data import SPEC2_ROOT, _reference_meta, imager_distortion, save_spec2_member

#: The slit's reference pixel (1-based, full frame = the subarray here) and the trace rows.
X_REF, Y_REF = 32.0, 40.0
SHAPE = (72, 64)


def write_lrs_rate(folder: Path, seed: int = 0) -> Path:
    """The spec2 association's ``_rate``: a 72x64 MIRI LRS fixed-slit image with a source
    trace down column ``X_REF`` on a flat background, Poisson-like noise, written by
    stdatamodels as jwst's Detector1 writes it; and a copy of the association next to it."""
    import numpy as np
    from stdatamodels.jwst import datamodels as sdm

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ny, nx = SHAPE
    x = np.arange(nx)
    profile = 50.0 * np.exp(-0.5 * ((x - (X_REF - 1)) / 1.2) ** 2)
    data = 2.0 + profile[None, :] * np.linspace(0.5, 1.5, ny)[:, None]
    data = rng.normal(data, 0.05 * np.sqrt(data)).astype(np.float32)
    model = sdm.ImageModel(data=data)
    # Poisson variance grows with the signal, the read noise's does not
    model.var_poisson = (0.0025 * np.abs(data)).astype(np.float32)
    model.var_rnoise = np.full(SHAPE, 0.0004, np.float32)
    model.err = np.sqrt(model.var_poisson + model.var_rnoise)
    model.var_flat = np.zeros(SHAPE, np.float32)
    model.dq = np.zeros(SHAPE, np.uint32)
    m = model.meta
    m.telescope, m.instrument.name, m.instrument.detector = "JWST", "MIRI", "MIRIMAGE"
    m.instrument.filter = "P750L"
    m.exposure.type, m.exposure.readpatt = "MIR_LRS-FIXEDSLIT", "FASTR1"
    m.exposure.nints, m.exposure.ngroups, m.exposure.nframes = 1, 5, 1
    m.exposure.frame_time = m.exposure.group_time = 2.775
    m.exposure.exposure_time = m.exposure.effective_exposure_time = 2.775 * 4
    m.exposure.start_time, m.exposure.mid_time, m.exposure.end_time = \
        59800.0, 59800.001, 59800.002
    m.observation.date, m.observation.time = "2023-06-01", "12:00:00"
    m.subarray.name, m.subarray.xstart, m.subarray.ystart = "FULL", 1, 1
    m.subarray.xsize, m.subarray.ysize = nx, ny
    m.subarray.fastaxis, m.subarray.slowaxis = 1, 2
    lrs_pointing(m)
    return save_spec2_member(model, folder)


def lrs_pointing(m) -> None:
    """An LRS exposure's pointing: its reference is the slit's reference pixel, where the
    target (a point source) is."""
    w = m.wcsinfo
    v2_ref, v3_ref = imager_distortion("MIRI")(X_REF - 1, Y_REF - 1)
    w.v2_ref, w.v3_ref, w.vparity, w.v3yangle = float(v2_ref), float(v3_ref), -1, 4.8
    w.ra_ref, w.dec_ref, w.roll_ref = 53.16, -27.79, 290.0
    m.target.ra, m.target.dec = 53.16, -27.79
    m.dither.x_offset, m.dither.y_offset = 0.0, 0.0
    m.velocity_aberration.scale_factor = 1.00002
    m.target.source_type = "POINT"


def write_lrs_references(folder: Path) -> list[Path]:
    """SPECWCS, DISTORTION, FLAT, PATHLOSS and PHOTOM for the LRS exposure (stdatamodels)."""
    import numpy as np
    from stdatamodels.jwst import datamodels as sdm

    folder.mkdir(parents=True, exist_ok=True)
    full = SHAPE
    rng = np.random.default_rng(11)
    # the trace: wavelength falls from 14 to 5 micron down the rows, with a slight tilt
    y_center = np.linspace(26.0, -30.0, 29)  # relative to Y_REF, decreasing as in the CDP
    wave = 5.0 + (y_center - y_center.min()) / np.ptp(y_center) * 9.0
    x_center = 0.01 * y_center
    table = np.zeros(y_center.size, dtype=[(n, "<f8") for n in (
        "x_center", "y_center", "wavelength", "x0", "y0", "x1", "y1", "x2", "y2", "x3", "y3")])
    table["x_center"], table["y_center"], table["wavelength"] = x_center, y_center, wave
    table["x0"] = table["x3"] = x_center - 4.0
    table["x1"] = table["x2"] = x_center + 4.0
    table["y0"] = table["y1"] = y_center + 1.0
    table["y2"] = table["y3"] = y_center - 1.0
    specwcs = sdm.MiriLRSSpecwcsModel()
    specwcs.wavetable = table
    specwcs.meta.x_ref, specwcs.meta.y_ref = X_REF, Y_REF
    specwcs.meta.x_ref_slitless, specwcs.meta.y_ref_slitless = X_REF, Y_REF
    for i, (v2, v3) in enumerate(((-414.5, -400.1), (-413.5, -400.1), (-413.5, -399.9),
                                  (-414.5, -399.9)), start=1):
        setattr(specwcs.meta, f"v2_vert{i}", v2)
        setattr(specwcs.meta, f"v3_vert{i}", v3)
    dist = sdm.DistortionModel(model=imager_distortion("MIRI"), input_units="pixel",
                               output_units="arcsec")
    flat = sdm.FlatModel(data=rng.normal(1.0, 0.02, full).astype(np.float32),
                         dq=np.zeros(full, np.uint32), err=np.full(full, 0.01, np.float32))
    pwave = np.linspace(15.0, 4.0, 12)  # decreasing, as in the CDP (jwst flips it)
    pathloss = sdm.MirLrsPathlossModel()
    pathloss.pathloss_table = np.array(
        [(w, np.full((5, 5), 0.9 - 0.01 * i, np.float32), np.full((5, 5), 0.01, np.float32))
         for i, w in enumerate(pwave)],
        dtype=[("wavelength", "<f4"), ("pathloss", "<f4", (5, 5)),
               ("pathloss_err", "<f4", (5, 5))])
    for key, value in (("crpix1", 3.0), ("crpix2", 3.0), ("crval1", 0.0), ("crval2", 0.0),
                       ("cdelt1", 0.2), ("cdelt2", 0.2)):
        setattr(pathloss.meta.wcsinfo, key, value)
    nelem = 20
    rwave = np.zeros(100, np.float32)
    rwave[:nelem] = np.linspace(4.0, 15.0, nelem)
    resp = np.zeros(100, np.float32)
    resp[:nelem] = np.linspace(0.8, 1.2, nelem)
    photom = sdm.MirLrsPhotomModel()
    photom.phot_table = np.array(
        [("P750L", sub, 0.05, 0.001, nelem, rwave, resp, np.full(100, 0.01, np.float32))
         for sub in ("FULL", "SLITLESSPRISM")],  # fixed slit; slitless (jwst_tso_spec_data)
        dtype=[("filter", "S12"), ("subarray", "S15"), ("photmjsr", "<f4"),
               ("uncertainty", "<f4"), ("nelem", "<i2"), ("wavelength", "<f4", (100,)),
               ("relresponse", "<f4", (100,)), ("reluncertainty", "<f4", (100,))])
    photom.meta.photometry.pixelarea_steradians = 2.9e-13
    photom.meta.photometry.pixelarea_arcsecsq = 0.0123
    paths = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for reftype, model, ext in (("specwcs", specwcs, "fits"), ("distortion", dist, "asdf"),
                                    ("flat", flat, "fits"), ("pathloss", pathloss, "fits"),
                                    ("photom", photom, "fits")):
            _reference_meta(model, reftype.upper(), "MIRI", "MIRIMAGE")
            if reftype == "flat":
                model.meta.subarray.xsize, model.meta.subarray.ysize = full[1], full[0]
            path = folder / f"jwst_miri_{reftype}_0101.{ext}"
            model.save(str(path))
            paths.append(path)
    return paths


def lrs_cache(cache: Path, refs: list[Path]) -> str:
    """A CRDS cache whose context selects ``refs`` for MIRI (by DETECTOR) and names every
    other type jwst's Detector1, Spec2 (and Spec3) steps declare N/A."""
    from jwst.pipeline import Detector1Pipeline, Spec2Pipeline, Spec3Pipeline

    from jwpipe.engines.jwst_stages import _reference_types
    from jwpipe.references.cache_writer import install_reference, rule_from_file, write_context

    declared = {t for p in (Detector1Pipeline, Spec2Pipeline, Spec3Pipeline)
                for c in p.step_defs.values() for t in _reference_types(c)}
    types: dict = {t: "N/A" for t in sorted(declared)}
    for path in refs:
        rule = rule_from_file(install_reference(cache, "MIRI", path), ("DETECTOR",))[1]
        types[rule.reftype] = [rule]
    return write_context(cache, {"MIRI": types})


#: The three exposures of the spec3 association's source and its product; a cosmic-ray hit
#: in the second's ``_rate`` (row, column) that Spec3's outlier detection flags (with two
#: members their median holds half the hit, and its gradient term hides it).
SPEC3_ROOTS = tuple(f"jw80600013001_02101_0000{i}_mirimage" for i in (1, 2, 3))
SPEC3_PRODUCT = "jw80600-o013_t001_miri_p750l"
SPEC3_HIT = (30, 33)


def write_lrs_spec3(folder: Path, *, exp_type: str = "MIR_LRS-FIXEDSLIT",
                    background: bool = False) -> Path:
    """A spec3 association of three MIRI LRS fixed-slit exposures of one source (the real
    ``jw80600...spec3_001_asn.json`` with more members; ``background``: the others as
    background members) and their ``_rate`` files (:func:`write_lrs_rate`, seeds 1 to 3, the
    second with a 500 DN/s hit at :data:`SPEC3_HIT`)."""
    import json

    from stdatamodels.jwst import datamodels as sdm

    folder.mkdir(parents=True, exist_ok=True)
    for seed, root in enumerate(SPEC3_ROOTS, start=1):
        scratch = folder / f".seed{seed}"
        write_lrs_rate(scratch, seed=seed)
        with sdm.open(str(scratch / f"{SPEC2_ROOT}_rate.fits")) as model:
            model.meta.exposure.type = exp_type
            if seed == 2:
                model.data[SPEC3_HIT] += 500.0
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.save(str(folder / f"{root}_rate.fits"))
        shutil.rmtree(scratch)
    real = Path(__file__).parent.parent / "data" / "asn" / \
        "jw80600_20171108T041522_pool-o013_spec3_001_asn.json"
    table = json.loads(real.read_text())
    first = table["products"][0]["members"][0]
    table["products"][0]["members"] = [
        {**first, "expname": f"{root}_cal.fits",
         "exptype": "background" if background and i else "science"}
        for i, root in enumerate(SPEC3_ROOTS)]
    asn = folder / real.name
    asn.write_text(json.dumps(table, indent=4))
    return asn
