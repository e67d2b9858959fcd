"""Reference files and exposures in the formats CRDS serves, written by STScI's stdatamodels.

(Helpers for the tests in this directory; the fixtures are in ``conftest.py``.)

The distortion reference is a NIRCam-like imaging transform: full-frame 0-based pixels ->
V2/V3 arcsec through fourth-degree polynomials (0.031"/pixel, a 0.6 degree rotation, and
distortion of ~1" at the corners), with a fitted polynomial inverse, as CRDS distortion
references carry one.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

V2_REF, V3_REF = 120.632, -527.471  # arcsec, NRCA1-like
NPIX = 2048
SCALE = 0.031  # arcsec per pixel


def _distortion_polynomials():
    """Forward polynomials (centred pixels -> V2/V3 offsets) and their fitted inverses."""
    from astropy.modeling import fitting, models

    th = np.radians(0.6)
    c, s = np.cos(th), np.sin(th)
    # v2 runs against +x (VPARITY = -1); ~1" of quadratic/cubic distortion at the corners
    px = models.Polynomial2D(4, c0_0=0.0, c1_0=-SCALE * c, c0_1=SCALE * s,
                             c2_0=2.0e-7, c1_1=-1.2e-7, c0_2=0.6e-7,
                             c3_0=-2.5e-10, c1_2=-2.0e-10, c2_1=0.8e-10, c0_3=0.5e-10,
                             c4_0=1.0e-14, c2_2=-2.0e-14)
    py = models.Polynomial2D(4, c0_0=0.0, c1_0=SCALE * s, c0_1=SCALE * c,
                             c2_0=-0.8e-7, c1_1=1.5e-7, c0_2=-1.0e-7,
                             c3_0=0.7e-10, c2_1=-1.8e-10, c1_2=1.0e-10, c0_3=-2.2e-10,
                             c0_4=1.5e-14, c3_1=0.8e-14)
    g = np.linspace(-1100.0, 1100.0, 60)
    xx, yy = np.meshgrid(g, g)
    u, v = px(xx, yy), py(xx, yy)
    fit = fitting.LinearLSQFitter()
    ix = fit(models.Polynomial2D(6), u, v, xx)
    iy = fit(models.Polynomial2D(6), u, v, yy)
    return px, py, ix, iy


def nircam_distortion_model():
    """The detector (0-based, full frame) -> V2V3 (arcsec) transform, with its inverse."""
    from astropy.modeling import models

    px, py, ix, iy = _distortion_polynomials()
    centre = (NPIX - 1) / 2.0
    fwd = (models.Shift(-centre) & models.Shift(-centre) | models.Mapping((0, 1, 0, 1))
           | px & py | models.Shift(V2_REF) & models.Shift(V3_REF))
    inv = (models.Shift(-V2_REF) & models.Shift(-V3_REF) | models.Mapping((0, 1, 0, 1))
           | ix & iy | models.Shift(centre) & models.Shift(centre))
    fwd.inverse = inv
    return fwd


def _ref_meta(model, reftype, instrument="NIRCAM", detector="NRCA1"):
    model.meta.reftype = reftype
    model.meta.instrument.name = instrument
    model.meta.instrument.detector = detector
    model.meta.author = "jwpipe tests"
    model.meta.pedigree = "GROUND"
    model.meta.useafter = "2022-01-01T00:00:00"
    model.meta.description = f"test {reftype}"
    model.meta.telescope = "JWST"
    if instrument == "NIRCAM":
        model.meta.instrument.channel = "SHORT"
        model.meta.instrument.module = "A"
    return model


def write_distortion(path, instrument="NIRCAM", detector="NRCA1"):
    """A DISTORTION reference (ASDF) written by stdatamodels."""
    from stdatamodels.jwst.datamodels import DistortionModel

    dist = DistortionModel(model=nircam_distortion_model(), input_units="pixel",
                           output_units="arcsec")
    _ref_meta(dist, "DISTORTION", instrument, detector)
    dist.meta.instrument.channel = "SHORT"
    dist.meta.instrument.module = "A"
    dist.meta.instrument.p_pupil = "CLEAR|"
    dist.meta.exposure.type = "NRC_IMAGE"
    dist.save(os.fspath(path))
    return os.fspath(path)


def write_filteroffset(path, offsets, instrument="NIRCAM", detector="NRCA1"):
    """A FILTEROFFSET reference (ASDF) written by stdatamodels; offsets: list of dicts."""
    from stdatamodels.jwst.datamodels import FilteroffsetModel

    fo = FilteroffsetModel()
    _ref_meta(fo, "FILTEROFFSET", instrument, detector)
    fo.filters = offsets
    fo.meta.input_units = "pixel"
    fo.save(os.fspath(path))
    return os.fspath(path)


def write_rate(path, shape=(NPIX, NPIX), *, xstart=1, ystart=1, filter="F200W",
               pupil="CLEAR", va_scale=1.00003, seed=0):
    """A NIRCam imaging ``_rate`` file written by stdatamodels (as jwst's Detector1 writes)."""
    from stdatamodels.jwst.datamodels import ImageModel

    rng = np.random.default_rng(seed)
    model = ImageModel(data=rng.normal(1.0, 0.1, shape).astype(np.float32))
    model.err = np.full(shape, 0.1, np.float32)
    model.var_poisson = np.full(shape, 0.005, np.float32)
    model.var_rnoise = np.full(shape, 0.005, np.float32)
    model.var_flat = np.zeros(shape, np.float32)
    m = model.meta
    m.telescope = "JWST"
    m.instrument.name = "NIRCAM"
    m.instrument.detector = "NRCA1"
    m.instrument.channel = "SHORT"
    m.instrument.module = "A"
    m.instrument.filter = filter
    m.instrument.pupil = pupil
    m.exposure.type = "NRC_IMAGE"
    m.exposure.start_time = 59800.0
    m.exposure.mid_time = 59800.001
    m.exposure.end_time = 59800.002
    m.exposure.readpatt = "MEDIUM8"
    m.exposure.nints = 1
    m.exposure.ngroups = 5
    m.exposure.nframes = 8
    m.exposure.groupgap = 2
    m.exposure.exposure_time = 429.5
    m.exposure.effective_exposure_time = 429.5
    m.exposure.measurement_time = 386.5
    m.exposure.integration_time = 429.5
    m.exposure.duration = 440.9
    m.observation.date = "2022-08-15"
    m.observation.time = "12:00:00"
    m.subarray.name = "FULL" if shape == (NPIX, NPIX) else "SUB400P"
    m.subarray.xstart = xstart
    m.subarray.ystart = ystart
    m.subarray.xsize = shape[1]
    m.subarray.ysize = shape[0]
    m.subarray.fastaxis = -1
    m.subarray.slowaxis = 2
    w = m.wcsinfo
    w.v2_ref = V2_REF
    w.v3_ref = V3_REF
    w.vparity = -1
    w.v3yangle = -0.6
    w.ra_ref = 53.1625
    w.dec_ref = -27.7914
    w.roll_ref = 293.7
    m.velocity_aberration.scale_factor = va_scale
    model.save(os.fspath(path))
    return os.fspath(path)


def offline_crds_env(directory):
    """Environment for jwst with an empty, read-only CRDS cache under ``directory``.

    jwst records the context of any reference it used: the client reads it from the cache's
    ``server_config`` even when every reference is an override; no server is configured.
    """
    cache = os.path.join(os.fspath(directory), "crds_cache")
    os.makedirs(os.path.join(cache, "config", "jwst"), exist_ok=True)
    with open(os.path.join(cache, "config", "jwst", "server_config"), "w") as f:
        f.write(repr({
            "observatory": "jwst", "operational_context": "jwst_0001.pmap",
            "latest_context": "jwst_0001.pmap", "bad_files": "", "bad_files_list": [],
            "effective_mode": "local", "checkout_url": "none",
            "last_synced": "2026-01-01 00:00:00", "force_remote_mode": False,
            "download_metadata": {}, "crds_version": {"str": "13.0.0"}}))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CRDS_") and k != "STPIPE_DISABLE_CRDS_STEPPARS"}
    env.update(CRDS_PATH=cache, CRDS_READONLY_CACHE="1", STPIPE_DISABLE_CRDS_STEPPARS="1")
    return env


def run_jwst(tasks, tmp_path):
    """Run ``_run_jwst.py`` on ``tasks`` offline (:func:`offline_crds_env`)."""
    import json
    import subprocess
    import sys

    pytest.importorskip("jwst")
    spec = tmp_path / "jwst_tasks.json"
    spec.write_text(json.dumps(tasks))
    script = os.path.join(os.path.dirname(__file__), "_run_jwst.py")
    proc = subprocess.run([sys.executable, script, str(spec)], env=offline_crds_env(tmp_path),
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc
