"""Small MIRI LRS slitless time-series exposures (``_rateints``) and their tso-spec2
association, written by stdatamodels (helpers for tests/engines).

The exposures are MIR_LRS-SLITLESS with TSOVISIT true, as jwst's Detector1 writes the
``_rateints`` of a time series: a (nints, 72, 64) CubeModel with its INT_TIMES table. The
references are those of :mod:`jwst_spec_data` (jwst's Spec2 reads DISTORTION, SPECWCS, FLAT and
PHOTOM for slitless LRS; PATHLOSS does not apply). The association is written in the structure
of the real tso-spec2 association in ``tests/data/asn`` (one product per exposure, its
``_rateints`` as the science member).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from jwst_spec_data import X_REF, lrs_pointing

#: The slitless subarray: one row short of the references' frame, starting on its second row
#: (jwst's slitless WCS needs a subarray: its reference point is given in the full frame).
SHAPE = (71, 64)
YSTART = 2

REAL_ASN = Path(__file__).parent.parent / "data" / "asn" / \
    "jw10004_20171108T090028_pool-o001_tso-spec2_001_asn.json"
TSO_SPEC_ROOTS = ("jw01234003001_04101_00001-seg001_mirimage",
                  "jw01234003001_04101_00001-seg002_mirimage")
NINTS = 3


def write_lrs_rateints(folder: Path, roots: tuple[str, ...] = TSO_SPEC_ROOTS) -> Path:
    """One ``_rateints`` per segment (``NINTS`` integrations each, the trace down column
    ``X_REF`` varying in depth between integrations) and their tso-spec2 association."""
    import numpy as np
    from stdatamodels.jwst import datamodels as sdm

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    ny, nx = SHAPE
    x = np.arange(nx)
    profile = 50.0 * np.exp(-0.5 * ((x - (X_REF - 1)) / 1.2) ** 2)
    for seg, root in enumerate(roots):
        depth = 1.0 - 0.01 * np.arange(NINTS)[:, None, None] * (seg + 1)
        clean = 2.0 + depth * profile[None, None, :] * np.linspace(0.5, 1.5, ny)[None, :, None]
        data = rng.normal(clean, 0.05 * np.sqrt(clean)).astype(np.float32)
        model = sdm.CubeModel(data=data)
        model.err = (0.05 * np.sqrt(np.abs(data))).astype(np.float32)
        model.var_poisson = (model.err**2 * 0.9).astype(np.float32)
        model.var_rnoise = (model.err**2 * 0.1).astype(np.float32)
        model.var_flat = np.zeros(data.shape, np.float32)
        model.dq = np.zeros(data.shape, np.uint32)
        m = model.meta
        m.telescope, m.instrument.name, m.instrument.detector = "JWST", "MIRI", "MIRIMAGE"
        m.instrument.filter = "P750L"
        m.exposure.type, m.exposure.readpatt = "MIR_LRS-SLITLESS", "FASTR1"
        m.visit.tsovisit = True
        # NINTS is the exposure's, over its segments (jwst's tso3 sizes INT_TIMES by it)
        m.exposure.nints = NINTS * len(roots)
        m.exposure.ngroups, m.exposure.nframes = 5, 1
        m.exposure.frame_time = m.exposure.group_time = 2.775
        m.exposure.integration_time = 2.775 * 4
        m.exposure.exposure_time = m.exposure.effective_exposure_time = 2.775 * 4 * NINTS
        start = 59800.0 + seg * 0.01
        step = 2.775 * 5 / 86400
        m.exposure.start_time, m.exposure.mid_time = start, start + NINTS * step / 2
        m.exposure.end_time = start + NINTS * step
        first = 1 + seg * NINTS
        m.exposure.integration_start, m.exposure.integration_end = first, first + NINTS - 1
        model.int_times = np.array(
            [(first + i, *[start + (i + f) * step for f in (0, 0.5, 1)] * 2)
             for i in range(NINTS)],
            dtype=[("integration_number", "<i4"), ("int_start_MJD_UTC", "<f8"),
                   ("int_mid_MJD_UTC", "<f8"), ("int_end_MJD_UTC", "<f8"),
                   ("int_start_BJD_TDB", "<f8"), ("int_mid_BJD_TDB", "<f8"),
                   ("int_end_BJD_TDB", "<f8")])
        m.observation.date, m.observation.time = "2023-06-01", "12:00:00"
        m.subarray.name, m.subarray.xstart, m.subarray.ystart = "SLITLESSPRISM", 1, YSTART
        m.subarray.xsize, m.subarray.ysize = nx, ny
        m.subarray.fastaxis, m.subarray.slowaxis = 1, 2
        lrs_pointing(m)
        m.wcsinfo.s_region = ("POLYGON ICRS  53.159 -27.791 53.161 -27.791 53.161 -27.789 "
                              f"53.159 -27.789{seg}")  # one per segment: tso3 keeps the first
        m.filename = f"{root}_rateints.fits"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.save(str(folder / f"{root}_rateints.fits"))
    asn = json.loads(REAL_ASN.read_text())
    asn.update(program="01234", asn_pool="jw01234_20230601T000000_pool", asn_id="o003")
    asn["constraints"] = (asn["constraints"].replace("niriss", "miri")
                          .replace("'nis'", "'mirimage'").replace("nis_soss", "mir_lrs-slitless"))
    asn["products"] = [{"name": root, "members": [
        {"expname": f"{root}_rateints.fits", "exptype": "science", "exposerr": "null"}]}
        for root in roots]
    path = folder / "jw01234_20230601T000000_pool-o003_tso-spec2_001_asn.json"
    path.write_text(json.dumps(asn, indent=4))
    return path


def write_soss_rateints(folder: Path) -> Path:
    """The real tso-spec2 association (NIRISS SOSS) and its member's ``_rateints``: a small
    stdatamodels-written NIS_SOSS CubeModel (2 integrations of 16x32) under the member's name,
    enough for planning (SOSS runs need references that cannot be made small)."""
    import shutil

    import numpy as np
    from stdatamodels.jwst import datamodels as sdm

    folder.mkdir(parents=True, exist_ok=True)
    asn = folder / REAL_ASN.name
    shutil.copy(REAL_ASN, asn)
    member = json.loads(asn.read_text())["products"][0]["members"][0]["expname"]
    shape = (2, 16, 32)
    model = sdm.CubeModel(data=np.ones(shape, np.float32), dq=np.zeros(shape, np.uint32),
                          err=np.full(shape, 0.1, np.float32))
    m = model.meta
    m.telescope, m.instrument.name, m.instrument.detector = "JWST", "NIRISS", "NIS"
    m.instrument.filter, m.instrument.pupil = "CLEAR", "GR700XD"
    m.exposure.type, m.exposure.readpatt = "NIS_SOSS", "NISRAPID"
    m.visit.tsovisit = True
    m.exposure.nints, m.exposure.ngroups, m.exposure.nframes = shape[0], 3, 1
    m.observation.date, m.observation.time = "2023-06-01", "12:00:00"
    m.subarray.name, m.subarray.xstart, m.subarray.ystart = "SUBSTRIP256", 1, 1793
    m.subarray.xsize, m.subarray.ysize = shape[2], shape[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save(str(folder / member))
    return asn
