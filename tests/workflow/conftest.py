"""Fixtures: a small field of FITS exposures for workflow tests."""

from __future__ import annotations

import numpy as np
import pytest
from wfhelpers import HERE, pythonpath

from jwpipe import datamodels
from jwpipe.associations import asn_from_list, write_asn


@pytest.fixture
def field(tmp_path, monkeypatch):
    """Three exposures as _uncal FITS files, an image3 association, a gain 'reference'."""
    monkeypatch.setenv("PYTHONPATH", pythonpath())
    monkeypatch.setenv("JWPIPE_ALLOW_IMPORT", "wfsteps")
    monkeypatch.syspath_prepend(str(HERE))
    data = tmp_path / "data"
    data.mkdir()
    roots = [f"jw01234001001_01101_0000{i}_nrca1" for i in range(1, 4)]
    for i, root in enumerate(roots):
        model = datamodels.ImageModel(data=np.full((8, 8), float(i), np.float32))
        model.meta.instrument.name = "NIRCAM"
        model.meta.instrument.detector = "NRCA1"
        model.data[0, 0] = 10.0 * i
        model.save(str(data / f"{root}_uncal.fits"))
    asn = asn_from_list([f"{r}_cal.fits" for r in roots], product_name="jw01234-o001_t001_nircam")
    write_asn(asn, data / "image3_asn.json")
    gain = tmp_path / "gain.txt"
    gain.write_text("0.5\n")
    return {"dir": data, "asn": str(data / "image3_asn.json"), "roots": roots, "gain": gain,
            "tmp": tmp_path}
