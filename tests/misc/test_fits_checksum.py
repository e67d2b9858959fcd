"""jwpipe.fits_checksum: FITS DATASUM/CHECKSUM verification without astropy.

Files are written by astropy (``checksum=True``) and by jwpipe's own writer; the verdicts are
compared with astropy's on intact files, and every single-bit flip must be caught, including
flips in a header's blank cards and fill, which astropy (re-serializing the header it parsed)
does not see.
"""

from __future__ import annotations

import random
import subprocess
import sys
import warnings

import numpy as np
import pytest
from astropy.io import fits

from jwpipe import datamodels
from jwpipe.fits_checksum import Unreadable, verify_file


def _astropy_failures(path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with fits.open(path, checksum=True) as hdul:
            for hdu in hdul:
                _ = hdu.data
    return [str(w.message) for w in caught if "verification failed" in str(w.message).lower()]


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """An astropy-written file of every HDU kind a JWST file has, with odd data sizes and a
    variable-length column in the heap."""
    path = tmp_path_factory.mktemp("ck") / "mixed.fits"
    heap = fits.Column(name="v", format="PJ()",
                       array=np.array([np.arange(3), np.arange(7)], dtype=object))
    text = fits.Column(name="s", format="5A", array=np.array(["ab", "cdefg"]))
    fits.HDUList([
        fits.PrimaryHDU(np.arange(7, dtype=np.uint8)),
        fits.ImageHDU(np.arange(5, dtype=np.uint16) + 30000, name="U16"),
        fits.BinTableHDU.from_columns([heap, text], name="T"),
        fits.ImageHDU(np.random.default_rng(1).random((3, 5)), name="F64"),
        fits.ImageHDU(name="EMPTY"),
    ]).writeto(path, checksum=True)
    return path


def test_intact_files_pass_as_astropy_says(mixed, tmp_path):
    model = datamodels.RampModel((1, 3, 40, 40))
    model.meta.instrument.name = "NIRCAM"
    model.extra["note"] = "x" * 101  # an ASDF extension of odd length
    model.save(tmp_path / "model.fits")  # jwpipe's own writer
    for path in (mixed, tmp_path / "model.fits"):
        assert _astropy_failures(path) == []
        assert verify_file(path) == []


def test_files_without_checksums_pass(tmp_path):
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.ones((4, 4)), name="SCI")]).writeto(
        tmp_path / "plain.fits")
    assert verify_file(tmp_path / "plain.fits") == []


def test_every_bit_flip_is_caught(mixed, tmp_path):
    raw = mixed.read_bytes()
    rng = random.Random(7)
    bad = tmp_path / "bad.fits"
    for _ in range(200):
        damaged = bytearray(raw)
        at = rng.randrange(len(raw))
        damaged[at] ^= 1 << rng.randrange(8)
        bad.write_bytes(damaged)
        try:
            problems = verify_file(bad)
        except Unreadable:
            continue  # a structural card damaged: refused as unreadable
        assert problems, f"flip at byte {at} not caught"


def test_data_and_header_damage_are_named(mixed, tmp_path):
    raw = bytearray(mixed.read_bytes())
    with fits.open(mixed) as hdul:
        data_at = hdul["F64"].fileinfo()["datLoc"]
    raw[data_at + 3] ^= 0x10
    (tmp_path / "d.fits").write_bytes(raw)
    problems = verify_file(tmp_path / "d.fits")
    assert problems[0].startswith("HDU 3 (F64): DATASUM verification failed")
    assert _astropy_failures(tmp_path / "d.fits")  # astropy agrees
    raw = bytearray(mixed.read_bytes())
    end = raw.index(b"END     ")
    raw[end + 100] = ord("x")  # the primary header's fill after END
    (tmp_path / "h.fits").write_bytes(raw)
    assert verify_file(tmp_path / "h.fits") == ["HDU 0 (PRIMARY): CHECKSUM verification failed"]


def test_truncated_and_foreign_files_are_unreadable(mixed, tmp_path):
    raw = mixed.read_bytes()
    with fits.open(mixed) as hdul:
        cut = hdul["F64"].fileinfo()["datLoc"] + 50
    (tmp_path / "t.fits").write_bytes(raw[:cut])
    with pytest.raises(Unreadable, match="truncated"):
        verify_file(tmp_path / "t.fits")
    (tmp_path / "x.fits").write_bytes(b"not fits" * 400)
    with pytest.raises(Unreadable):
        verify_file(tmp_path / "x.fits")


def test_verification_does_not_import_astropy(mixed):
    code = ("import sys; from jwpipe.fits_checksum import verify_file; "
            f"assert verify_file({str(mixed)!r}) == []; "
            "print(sorted(m for m in sys.modules if m.startswith('astropy')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
