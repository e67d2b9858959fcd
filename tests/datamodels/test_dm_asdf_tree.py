"""The ASDF metadata tree is read and written without asdf, identically to asdf."""

from __future__ import annotations

import io
import math
import subprocess
import sys
import warnings

import numpy as np
import pytest
from astropy.io import fits

from jwpipe import datamodels as dm
from jwpipe.datamodels import _asdf_tree

UNCAL = "jw01075001001_03105_00009_nrca2_uncal.fits"


def _raw(path) -> bytes:
    return bytes(np.asarray(fits.getdata(path, "ASDF")["ASDF_METADATA"][0], dtype=np.uint8))


@pytest.fixture
def stsci_uncal(data_dir, tmp_path):
    """The real SDP uncal, re-saved by STScI's stdatamodels (its tree references FITS arrays)."""
    sdm = pytest.importorskip("stdatamodels.jwst.datamodels")
    path = tmp_path / "jw01075001001_03105_00009_nrca2_uncal.fits"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with sdm.Level1bModel(str(data_dir / "fits" / UNCAL)) as model:
            model.save(str(path))
    return path


def test_plain_decoder_equals_asdf_on_stsci_files(data_dir, stsci_uncal):
    for path in (data_dir / "fits" / UNCAL, stsci_uncal):
        raw = _raw(path)
        plain = _asdf_tree.decode(raw, str(path))
        assert plain == _asdf_tree.decode_with_asdf(raw, str(path))
        assert plain["meta"]["instrument"]["detector"] == "NRCA2"
        assert "data" not in plain  # the ndarray pointing at SCI is dropped, not resolved


def test_plain_decoder_ignores_binary_blocks():
    import asdf

    buffer = io.BytesIO()
    asdf.AsdfFile({"meta": {"a": 1}, "arr": np.arange(5)}).write_to(buffer)
    raw = buffer.getvalue()
    assert b"BLK" in raw
    assert _asdf_tree.decode(raw, "x") == {"meta": {"a": 1}}
    assert _asdf_tree.decode_with_asdf(raw, "x") == {"meta": {"a": 1}}


def test_encoded_tree_reads_back_through_asdf():
    import asdf

    tree = {"meta": {"date": "2026-01-01T00:00:00.000", "strings": [
        "2026-01-01", "1e5", "yes", "null", "~", "", "0x10", "üñï", "a: b", "- x"],
        "numbers": [0, -3, 1.5e300, 2.5e-320, float("inf")], "flags": [True, False, None],
        "nested": {"deep": {"list": [[1, 2], {"k": "v"}]}}}, "extra": {"n": 1}}
    raw = _asdf_tree.encode(tree)
    with asdf.open(io.BytesIO(raw)) as af:
        back = {k: v for k, v in af.tree.items() if k not in ("asdf_library", "history")}
    assert back == tree
    assert _asdf_tree.decode(raw, "x") == tree
    nan = _asdf_tree.decode(_asdf_tree.encode({"x": float("nan")}), "x")["x"]
    assert math.isnan(nan)


def test_stdatamodels_reads_product_tree(stsci_uncal, tmp_path):
    sdm = pytest.importorskip("stdatamodels.jwst.datamodels")
    model = dm.open(stsci_uncal)
    model.meta.observation.observation_label = "written by jwpipe"
    model.save(tmp_path / "again_uncal.fits")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with sdm.open(str(tmp_path / "again_uncal.fits")) as back:
            assert back.meta.observation.observation_label == "written by jwpipe"
            assert back.meta.instrument.detector == "NRCA2"
            assert back.meta.exposure.ngroups == model.meta.exposure.ngroups


def test_open_and_save_do_not_import_asdf(stsci_uncal, tmp_path):
    code = (
        "import sys; from jwpipe import datamodels as dm\n"
        f"m = dm.open({str(stsci_uncal)!r}); m.extra['k'] = 1; assert m.data is not None\n"
        f"m.save({str(tmp_path / 'out_uncal.fits')!r})\n"
        "print('asdf' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"
    assert dm.open(tmp_path / "out_uncal.fits").extra == {"k": 1}
