"""Threaded FITS writing of big image extensions (``_fitswrite``), checked against astropy."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from astropy.io import fits

from jwpipe import datamodels as dm
from jwpipe._threads import THREADS_ENV
from jwpipe.datamodels import _fitsio, _fitswrite


@pytest.fixture
def small_limits(monkeypatch):
    # many chunks per extension, and the fast path for arrays of a few kB
    monkeypatch.setattr(_fitswrite, "_MIN_FAST_BYTES", 1000)
    monkeypatch.setattr(_fitswrite, "_CHUNK_BYTES", 4096 + 8)


def _hdul(seed=3):
    rng = np.random.default_rng(seed)
    header = fits.Header()
    header["BUNIT"] = "DN/s"
    header["COMMENTX"] = ("a value", "a comment")
    primary = fits.Header()
    primary["TELESCOP"] = "JWST"
    data = {
        "SCI": rng.standard_normal((3, 70, 51)).astype(np.float32),
        "DQ": rng.integers(0, 2**32, (70, 53), dtype=np.uint32),  # BZERO 2**31 on disk
        "F8": rng.standard_normal((60, 71)),
        "I8": rng.integers(-2**62, 2**62, (60, 31), dtype=np.int64),
        "U8": rng.integers(0, 2**64 - 1, (60, 31), dtype=np.uint64),
        "I4": rng.integers(-2**31, 2**31, (7, 50), dtype=np.int32),
        "NANS": np.full((40, 40), np.nan, np.float32),
        "U1": rng.integers(0, 255, (40, 41), dtype=np.uint8),  # left to astropy
        "TINY": np.zeros((3, 3), np.float32),  # left to astropy
    }
    hdus = [fits.PrimaryHDU(header=primary)]
    hdus += [fits.ImageHDU(a, header=header.copy(), name=n) for n, a in data.items()]
    hdus.append(fits.BinTableHDU.from_columns(
        [fits.Column(name="a", format="J", array=np.arange(5))], name="TAB"))
    return fits.HDUList(hdus), data


def _strip_stamps(raw: bytes) -> bytes:
    return re.sub(rb"(CHECKSUM= '.{16}'|updated \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)", b"", raw)


def test_same_file_as_astropy_and_checksums_verify(tmp_path, small_limits):
    hdul, data = _hdul()
    copies = {n: a.copy() for n, a in data.items()}
    _fitsio.write_atomic(hdul, str(tmp_path / "fast.fits"))
    for name, array in data.items():  # the inputs are not touched (astropy swaps in place)
        assert array.dtype.isnative and np.array_equal(array, copies[name], equal_nan=True)
    reference, _ = _hdul()
    reference.writeto(tmp_path / "astropy.fits", checksum=True)
    fast = (tmp_path / "fast.fits").read_bytes()
    ref = (tmp_path / "astropy.fits").read_bytes()
    # the same bytes but for the time stamps in the checksum comments (and so CHECKSUM itself)
    assert len(fast) == len(ref) and _strip_stamps(fast) == _strip_stamps(ref)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a failed checksum verification is a warning in astropy
        with fits.open(tmp_path / "fast.fits", checksum=True) as a, \
                fits.open(tmp_path / "astropy.fits") as b:
            for ha, hb in zip(a, b, strict=True):
                assert ha.header.get("DATASUM") == hb.header.get("DATASUM")
                if ha.name in data:
                    np.testing.assert_array_equal(ha.data, data[ha.name])


def test_damaged_fast_extension_fails_verification(tmp_path, small_limits):
    hdul, _ = _hdul()
    path = tmp_path / "fast.fits"
    _fitsio.write_atomic(hdul, str(path))
    with fits.open(path) as opened:
        where = opened["SCI"].fileinfo()["datLoc"] + 1000
    raw = bytearray(path.read_bytes())
    raw[where] ^= 0x01
    path.write_bytes(bytes(raw))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with fits.open(path, checksum=True) as opened:
            opened["SCI"].data  # noqa: B018
    messages = " ".join(str(w.message) for w in caught)
    assert "Checksum verification failed for HDU ('SCI', 1)" in messages
    assert "Datasum verification failed for HDU ('SCI', 1)" in messages


@pytest.mark.parametrize("threads", ["1", "3"])
def test_bytes_do_not_depend_on_threads(tmp_path, small_limits, monkeypatch, threads):
    monkeypatch.setenv(THREADS_ENV, "2")
    _fitsio.write_atomic(_hdul()[0], str(tmp_path / "two.fits"))
    monkeypatch.setenv(THREADS_ENV, threads)
    _fitsio.write_atomic(_hdul()[0], str(tmp_path / "other.fits"))
    assert _strip_stamps((tmp_path / "two.fits").read_bytes()) == _strip_stamps(
        (tmp_path / "other.fits").read_bytes())


def test_checksum_of_known_values():
    # the FITS checksum convention's rule: the 16 characters of ~S make the HDU sum -0
    for value in (0, 1, 0xFFFFFFFF, 0x12345678, 0xDEADBEEF, 0x80000000):
        text = _fitswrite.checksum_encode(value)
        assert len(text) == 16 and all(0x30 <= ord(c) <= 0x7A for c in text)
        unrotated = text[1:] + text[0]
        # the characters minus the '0' offsets add up (as 32-bit words) to the value
        words = [int.from_bytes(unrotated[i:i + 4].encode(), "big") for i in range(0, 16, 4)]
        assert (sum(words) - 4 * 0x30303030) & 0xFFFFFFFF == value
    assert _fitswrite.fits_word_sum(b"\x00\x00\x00\x01\xff\xff\xff\xff") == 1  # end-around carry
    assert _fitswrite.fits_word_sum(b"\x01\x02") == 0x01020000  # zero-padded word


def test_model_round_trip_uses_fast_path(tmp_path, monkeypatch):
    calls = []
    real = _fitswrite._write_data
    monkeypatch.setattr(_fitswrite, "_write_data",
                        lambda fd, image, offset: calls.append(image.hdu.name) or real(
                            fd, image, offset))
    model = dm.ImageModel((600, 512))
    rng = np.random.default_rng(5)
    model.data = rng.standard_normal((600, 512)).astype(np.float32)
    model.dq = rng.integers(0, 2**31, (600, 512), dtype=np.uint32)
    model.save(tmp_path / "m.fits")
    assert {"SCI", "DQ"} <= set(calls)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with fits.open(tmp_path / "m.fits", checksum=True) as hdul:
            assert hdul["SCI"].header["DATASUM"] != "0"
    again = dm.open(tmp_path / "m.fits")
    np.testing.assert_array_equal(again.data, model.data)
    np.testing.assert_array_equal(again.dq, model.dq)
