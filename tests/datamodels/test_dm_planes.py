"""Plane-by-plane reading of large arrays (``DataModel.planes``) and shape queries."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from jwpipe import datamodels as dm
from jwpipe.datamodels import PlaneStack
from jwpipe.steps import DarkCurrentStep


def _dark(path, planes, ny=6, nx=5, bitpix_scaled=False):
    rng = np.random.default_rng(1)
    cube = rng.normal(3.0, 1.0, (planes, ny, nx)).astype(np.float32)
    primary = fits.PrimaryHDU()
    for key, value in {"REFTYPE": "DARK", "INSTRUME": "NIRCAM", "DETECTOR": "NRCA1",
                       "SUBARRAY": "FULL", "NFRAMES": 1, "GROUPGAP": 0, "READPATT": "RAPID",
                       "SUBSTRT1": 1, "SUBSTRT2": 1, "SUBSIZE1": nx, "SUBSIZE2": ny}.items():
        primary.header[key] = value
    sci = fits.ImageHDU(cube, name="SCI")
    if bitpix_scaled:
        ints = np.arange(planes * ny * nx, dtype=np.int16).reshape(planes, ny, nx)
        sci = fits.ImageHDU(ints, name="SCI", do_not_scale_image_data=True)
        sci.header["BZERO"] = 10.0
        sci.header["BSCALE"] = 0.5
        cube = ints.astype(np.float32) * 0.5 + 10.0
    fits.HDUList([primary, sci]).writeto(path)
    return cube


@pytest.mark.parametrize("scaled", [False, True])
def test_planes_read_one_plane_at_a_time(tmp_path, scaled):
    cube = _dark(tmp_path / "dark.fits", 7, bitpix_scaled=scaled)
    model = dm.open(tmp_path / "dark.fits")
    stack = model.planes("data")
    assert isinstance(stack, PlaneStack)
    assert stack.shape == cube.shape and stack.ndim == 3 and len(stack) == 7
    for j in (0, 3, 6, -1):
        np.testing.assert_array_equal(stack[j], cube[j])
    window = stack.cut(slice(1, 4), slice(2, 5))
    assert window.shape == (7, 3, 3)
    np.testing.assert_array_equal(window[2], cube[2, 1:4, 2:5])
    assert "data" in model._lazy  # nothing loaded in full
    with pytest.raises(IndexError):
        stack[7]
    with pytest.raises(TypeError):
        stack[1:3]
    assert model.array_shape("data") == cube.shape
    np.testing.assert_array_equal(model.data, cube)  # the whole array still reads normally
    assert model.planes("data") is model.data  # once loaded, the array itself


def test_dark_step_with_longer_dark_equals_full_subtraction(tmp_path):
    """A 9-plane dark on a 4-group ramp: the step reads planes 0..3 and subtracts them."""
    cube = _dark(tmp_path / "dark.fits", 9)
    ramp = dm.RampModel(np.full((1, 4, 6, 5), 100.0, np.float32))
    for key, value in {"instrument.name": "NIRCAM", "instrument.detector": "NRCA1",
                       "subarray.name": "FULL", "exposure.nframes": 1, "exposure.groupgap": 0,
                       "exposure.ngroups": 4, "exposure.nints": 1,
                       "exposure.readpatt": "RAPID", "subarray.xstart": 1,
                       "subarray.ystart": 1, "subarray.xsize": 5, "subarray.ysize": 6}.items():
        node = ramp.meta
        *parents, leaf = key.split(".")
        for part in parents:
            node = getattr(node, part)
        setattr(node, leaf, value)
    out = DarkCurrentStep.call(ramp, override_dark=str(tmp_path / "dark.fits"))
    np.testing.assert_allclose(out.data[0], 100.0 - cube[:4], rtol=0, atol=1e-5)
