"""The simulator's distortion references read by STScI's stdatamodels and used by jwst.

The simulator writes its ``distortion`` and ``filteroffset`` references itself (ASDF with
astropy-modeling transforms); here stdatamodels opens and validates them as the models CRDS
serves, and jwst's own AssignWcsStep builds from them a gWCS that puts the simulated sources
where the simulator's truth says.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from formats_data import run_jwst

from jwpipe import datamodels
from jwpipe.references import CrdsCache, parameters_from_file
from jwpipe.simulate import simulate_field

SIZE = 256


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("simdist")
    res = simulate_field(out, n_exposures=1, size=SIZE, ngroups=2, seed=4, n_stars=120,
                         n_galaxies=0)
    uncal, truth = res.uncal_files[0], res.truth_files[0]
    # a rate file as Detector1 would write it (the noise-free truth rate is enough here)
    ramp = datamodels.open(uncal)
    rate = datamodels.ImageModel(ramp)
    ramp.close()
    rate.data = fits.getdata(truth, "RATE").astype(np.float32)
    path = rate.save(out / uncal.name.replace("_uncal", "_rate"))
    params = parameters_from_file(uncal)
    cache = CrdsCache(res.store_dir)
    return {"res": res, "rate": path, "truth": truth,
            "distortion": cache.get_reference_file(params, "distortion"),
            "filteroffset": cache.get_reference_file(params, "filteroffset")}


def test_stdatamodels_opens_the_simulated_references(sim):
    from stdatamodels.jwst.datamodels import DistortionModel, FilteroffsetModel

    with DistortionModel(sim["distortion"]) as dm:
        dm.validate()
        assert dm.meta.reftype.upper() == "DISTORTION"
        assert (dm.meta.instrument.name, dm.meta.instrument.detector,
                dm.meta.instrument.channel, dm.meta.exposure.type) == (
            "NIRCAM", "NRCA1", "SHORT", "NRC_IMAGE")
        assert dm.meta.instrument.p_pupil == "CLEAR|"
        assert str(dm.meta.input_units) == "pixel" and str(dm.meta.output_units) == "arcsec"
        ours = datamodels.DistortionModel(sim["distortion"]).model
        yy, xx = np.mgrid[0:SIZE:17, 0:SIZE:17].astype(float)
        np.testing.assert_array_equal(dm.model(xx, yy), ours(xx, yy))
        v2, v3 = dm.model(xx, yy)
        x, y = dm.model.inverse(v2, v3)
        assert np.hypot(x - xx, y - yy).max() < 1e-4  # the fitted inverse
    with FilteroffsetModel(sim["filteroffset"]) as fo:
        fo.validate()
        rows = {(f.filter, f.pupil): (f.column_offset, f.row_offset) for f in fo.filters}
        assert ("F200W", "CLEAR") in rows and len(rows) == 13


def test_jwst_assign_wcs_with_the_simulated_reference_finds_the_truth(sim, tmp_path):
    """jwst builds its gWCS from the simulator's references and the header pointing: the
    catalogue's sky positions land on the truth's nominal pixel positions (to the reference's
    fitted inverse, 1e-5 px), and those pixels on the catalogue positions (rounding)."""
    out = tmp_path / "jwst_assign_wcs.fits"
    run_jwst([{"step": "assign_wcs", "input": str(sim["rate"]), "output": str(out),
               "distortion": sim["distortion"], "filteroffset": sim["filteroffset"]}],
             tmp_path)
    jw = datamodels.open(str(out))
    src = Table.read(sim["truth"], hdu="SOURCES")
    cat = Table.read(sim["res"].sources, format="ascii.ecsv")
    on = np.asarray(src["on_detector"])
    assert on.sum() > 20
    x, y = np.asarray(src["x_nominal"])[on], np.asarray(src["y_nominal"])[on]
    ra, dec = jw.meta.wcs(x, y, with_bounding_box=False)
    sep = np.hypot((ra - cat["ra"][on]) * np.cos(np.radians(dec)), dec - cat["dec"][on]) * 3.6e6
    px, py = jw.meta.wcs.invert(cat["ra"][on], cat["dec"][on], with_bounding_box=False)
    dpix = np.hypot(px - x, py - y)
    print(f"jwst assign_wcs on the simulated reference vs truth: {on.sum()} sources, "
          f"max {sep.max():.2e} mas (pixel -> sky), {dpix.max():.2e} px (sky -> pixel)")
    assert sep.max() < 1e-3
    assert dpix.max() < 1e-4
