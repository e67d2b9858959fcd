"""Fixtures of the format tests: CRDS-format references and rate files written by stdatamodels."""

import pytest
from formats_data import write_distortion, write_filteroffset, write_rate

pytest.importorskip("stdatamodels")


@pytest.fixture(scope="session")
def formats_dir(tmp_path_factory):
    """Distortion, filteroffset and a full-frame rate file (one set for the session)."""
    d = tmp_path_factory.mktemp("formats")
    write_distortion(d / "jwst_nircam_distortion_0001.asdf")
    write_filteroffset(d / "jwst_nircam_filteroffset_0001.asdf",
                       [{"filter": "F200W", "pupil": "CLEAR", "column_offset": 0.71,
                         "row_offset": -0.43},
                        {"filter": "F150W", "pupil": "CLEAR", "column_offset": -0.2,
                         "row_offset": 0.1}])
    write_rate(d / "jw01234001001_01101_00001_nrca1_rate.fits")
    return d


