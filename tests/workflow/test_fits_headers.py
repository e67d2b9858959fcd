"""The planner's header reader agrees with astropy, and hands astropy what it does not handle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from jwpipe.errors import WorkflowError
from jwpipe.workflow import fits_headers
from jwpipe.workflow.fits_headers import read_selection
from jwpipe.workflow.plan import _selection_keywords

UNCAL = Path(__file__).parents[1] / "data" / "fits" / "jw01075001001_03105_00009_nrca2_uncal.fits"
KEYWORDS = _selection_keywords()


def _check(path):
    fast = fits_headers._fast(str(path), KEYWORDS)
    slow = fits_headers._astropy(str(path), KEYWORDS)
    assert fast == slow
    assert {k: type(v) for k, v in fast[0].items()} == {k: type(v) for k, v in slow[0].items()}
    return fast


def test_a_real_jwst_exposure():
    params, nbytes = _check(UNCAL)
    assert params["INSTRUME"] == "NIRCAM" and params["DETECTOR"] == "NRCA2"
    assert "DATE-OBS" in params and "TIME-OBS" in params
    assert nbytes == 4 * np.prod(fits.getdata(UNCAL, "SCI").shape)


def test_extensions_before_sci_are_skipped_by_size(tmp_path):
    primary = fits.PrimaryHDU(np.zeros((3, 5), np.int16))
    primary.header["INSTRUME"] = "NIRCAM"
    primary.header["NGROUPS"] = 7
    primary.header["TSOVISIT"] = False
    other = fits.ImageHDU(np.zeros((7, 11), np.float64), name="DQ")
    table = fits.BinTableHDU.from_columns([fits.Column("a", "E", array=np.arange(100.0))])
    sci = fits.ImageHDU(np.zeros((2, 4, 6), np.float32), name="SCI")
    path = tmp_path / "x.fits"
    fits.HDUList([primary, other, table, sci]).writeto(path)
    params, nbytes = _check(path)
    assert params == {"INSTRUME": "NIRCAM", "NGROUPS": 7, "TSOVISIT": False}
    assert nbytes == 4 * 48


def test_no_sci_uses_the_primary_array(tmp_path):
    path = tmp_path / "p.fits"
    fits.PrimaryHDU(np.zeros((9, 10), np.float32)).writeto(path)
    assert _check(path)[1] == 4 * 90


def test_long_string_and_compressed_sci_go_to_astropy(tmp_path, monkeypatch):
    primary = fits.PrimaryHDU()
    primary.header["FILTER"] = "F" * 100  # CONTINUE cards
    path = tmp_path / "long.fits"
    comp = fits.CompImageHDU(np.zeros((16, 16), np.float32), name="SCI")
    fits.HDUList([primary, comp]).writeto(path)
    with pytest.raises(fits_headers._Unhandled):
        fits_headers._fast(str(path), KEYWORDS)
    params, nbytes = read_selection(str(path), KEYWORDS)
    assert params["FILTER"] == "F" * 100 and nbytes == 4 * 256


def test_damaged_files_get_one_clear_error(tmp_path):
    path = tmp_path / "cut.fits"
    path.write_bytes(UNCAL.read_bytes()[:4000])  # header cut in its second block
    with pytest.raises(WorkflowError, match="cannot read the FITS headers"):
        read_selection(str(path), KEYWORDS)
    text = tmp_path / "text.fits"
    text.write_text("not a FITS file\n")
    with pytest.raises(WorkflowError, match="cannot read the FITS headers"):
        read_selection(str(text), KEYWORDS)


@pytest.mark.parametrize("text", ["1.0", "-2.5E-3", ".5", "1.", "+3.25e+10", "60096.500000000",
                                  "1.0D5", "-0.0", "1E5", "12345678901234567890.5"])
def test_real_values_read_as_astropy_reads_them(text):
    card = f"{'EXPSTART':8}= {text:>20}".ljust(80)
    ours = fits_headers._keywords([card.encode("ascii")], {"EXPSTART"})["EXPSTART"]
    theirs = fits.Card.fromstring(card).value
    assert ours == theirs and type(ours) is type(theirs)


@pytest.mark.parametrize("text", ["'JWST    '           / Telescope used", "'A'", "' lead'",
                                  "'it''s'  / quoted quote", "'x' junk", "''", "'a/b' / c",
                                  "'cont&'", "'NRC_IMAGE'/no space"])
def test_string_values_read_as_astropy_reads_them(text):
    card = f"{'EXP_TYPE':8}= {text}".ljust(80)
    try:
        theirs = fits.Card.fromstring(card).value
    except Exception:  # astropy cannot read it: neither can the planner
        with pytest.raises(Exception):  # noqa: B017
            fits_headers._keywords([card.encode("ascii")], {"EXP_TYPE"})
        return
    try:
        ours = fits_headers._keywords([card.encode("ascii")], {"EXP_TYPE"})["EXP_TYPE"]
    except fits_headers._Unhandled:  # a CONTINUE'd value: astropy's full reader reads it
        assert theirs.endswith("&")
        return
    assert ours == theirs and type(ours) is type(theirs)
