"""Tests of the jwpipe datamodels: reading, writing, metadata, reference files, errors."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits

from jwpipe import __version__
from jwpipe import datamodels as dm
from jwpipe.datamodels import dqflags
from jwpipe.datamodels.keywords import KEYWORDS
from jwpipe.errors import DataModelError

UNCAL = "jw01075001001_03105_00009_nrca2_uncal.fits"


@pytest.fixture
def uncal(data_dir):
    return str(data_dir / "fits" / UNCAL)


def _asdf_tree(path):
    import asdf

    raw = bytes(fits.getdata(path, "ASDF")["ASDF_METADATA"][0])
    import io

    with asdf.open(io.BytesIO(raw)) as af:
        return dict(af.tree)


# --------------------------------------------------------------------------- real uncal file
def test_real_uncal_opens_as_float32_ramp(uncal):
    with dm.open(uncal) as model:
        assert type(model) is dm.RampModel
        assert model.shape == (1, 1, 1, 1)
        assert model.data.dtype == np.float32
        raw = fits.getdata(uncal, "SCI")  # astropy applies BZERO -> uint16
        np.testing.assert_array_equal(model.data, raw.astype(np.float32))
        assert model.pixeldq.dtype == np.uint32 and model.pixeldq.shape == (1, 1)
        assert model.groupdq.dtype == np.uint8 and model.groupdq.shape == (1, 1, 1, 1)
        assert not model.pixeldq.any() and not model.groupdq.any()
        assert model.zeroframe is None
        meta = model.meta
        assert meta.instrument.name == "NIRCAM"
        assert meta.instrument.detector == "NRCA2"
        assert meta.instrument.filter == "F210M"
        assert meta.instrument.pupil == "MASKRND"
        assert meta.exposure.ngroups == 10
        assert meta.exposure.nints == 1
        assert meta.exposure.nframes == 1
        assert meta.exposure.groupgap == 0
        assert meta.exposure.frame_time == pytest.approx(10.73677)
        assert meta.exposure.group_time == pytest.approx(10.73677)
        assert meta.exposure.readpatt == "RAPID"
        assert meta.exposure.type == "NRC_CORON"
        assert meta.subarray.name == "FULL"
        assert (meta.subarray.xstart, meta.subarray.ystart) == (1, 1)
        assert (meta.subarray.xsize, meta.subarray.ysize) == (2048, 2048)
        assert meta.observation.date == "2022-05-14"
        assert meta.observation.time == "18:15:30.545"
        assert meta.wcsinfo.crpix1 == 712.0 and meta.wcsinfo.crpix2 == pytest.approx(1515.9)
        assert meta.wcsinfo.v3yangle == pytest.approx(0.03188519)
        assert meta.wcsinfo.vparity == -1
        assert meta.wcsinfo.roll_ref == pytest.approx(198.1509949487168)
        assert meta.bunit_data == "DN"
        assert meta.model_type == "Level1bModel"
        assert meta.filename == UNCAL
        assert meta.cal_step.dq_init is None
        assert meta.ref_file.mask.name is None
        assert meta.photometry.pixelarea_steradians is None
        # unmapped metadata comes from the file's ASDF tree
        assert meta.nircam_focus.fam_la1 == 0
        assert model.get_crds_parameters() == {
            "TELESCOP": "JWST",
            "INSTRUME": "NIRCAM",
            "DETECTOR": "NRCA2",
            "EXP_TYPE": "NRC_CORON",
            "READPATT": "RAPID",
            "SUBARRAY": "FULL",
            "FILTER": "F210M",
            "PUPIL": "MASKRND",
            "DATE-OBS": "2022-05-14",
            "TIME-OBS": "18:15:30.545",
            "NGROUPS": 10,
            "NFRAMES": 1,
            "GROUPGAP": 0,
            "NINTS": 1,
            "SUBSTRT1": 1,
            "SUBSTRT2": 1,
            "SUBSIZE1": 2048,
            "SUBSIZE2": 2048,
            "NOUTPUTS": 4,
            "CHANNEL": "SHORT",
            "MODULE": "A",
            "TSOVISIT": False,
        }


def test_read_crds_parameters_matches_model(uncal, tmp_path):
    with dm.open(uncal) as model:
        assert dm.read_crds_parameters(uncal) == model.get_crds_parameters()
    _stdatamodels_style_saturation(tmp_path / "sat.fits")
    assert dm.read_crds_parameters(tmp_path / "sat.fits")["REFTYPE"] == "SATURATION"
    with pytest.raises(DataModelError, match="does not exist"):
        dm.read_crds_parameters(tmp_path / "none.fits")


def test_keyword_table_agrees_with_stsci_file(uncal):
    """Every mapped path that STScI's own tree holds must equal the header card we map it to."""
    tree = _asdf_tree(uncal)["meta"]
    checked = 0
    with dm.open(uncal) as model:
        for path in KEYWORDS:
            node = tree
            for part in path.split("."):
                node = node.get(part) if isinstance(node, dict) else None
            if node is None or isinstance(node, dict):
                continue
            ours = model.meta
            for part in path.split("."):
                ours = getattr(ours, part)
            if isinstance(node, float):
                assert ours == pytest.approx(node), path
            else:
                assert ours == node, path
            checked += 1
    assert checked > 150


def test_uncal_round_trip_preserves_unmapped_cards(uncal, tmp_path):
    out = tmp_path / "x_ramp.fits"
    with dm.open(uncal) as model:
        model.meta.cal_step.dq_init = "COMPLETE"
        model.meta.exposure.ngroups = 9
        written = model.save(out)
    assert written == str(out)
    original = fits.getheader(uncal, 0)
    saved = fits.getheader(out, 0)
    skip = {"FILENAME", "DATAMODL", "NGROUPS", "S_DQINIT", "JWPIPEV", "CHECKSUM", "DATASUM"}
    orig_cards = [(c.keyword, c.value, c.comment) for c in original.cards if c.keyword not in skip]
    new_cards = [(c.keyword, c.value, c.comment) for c in saved.cards if c.keyword not in skip]
    assert new_cards == orig_cards  # same cards, same order, blank/comment cards included
    assert saved["NGROUPS"] == 9
    assert saved.comments["NGROUPS"] == original.comments["NGROUPS"]
    assert saved["FILENAME"] == "x_ramp.fits"
    assert saved["DATAMODL"] == "RampModel"
    assert saved["JWPIPEV"] == __version__
    orig_sci = fits.getheader(uncal, "SCI")
    new_sci = fits.getheader(out, "SCI")
    structural = {"BITPIX", "BZERO", "BSCALE", "CHECKSUM", "DATASUM"}
    assert [(c.keyword, c.value) for c in orig_sci.cards if c.keyword not in structural] == [
        (c.keyword, c.value) for c in new_sci.cards if c.keyword not in structural
    ]
    assert new_sci["BITPIX"] == -32


# --------------------------------------------------------------------------- round trips
def _fill(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.normal(100, 10, shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(0, min(info.max, 2**32 - 1), shape, endpoint=True).astype(dtype)


MODEL_CASES = [
    (
        dm.RampModel,
        {"data": (2, 3, 5, 6), "pixeldq": (5, 6), "groupdq": (2, 3, 5, 6), "zeroframe": (2, 5, 6)},
    ),
    (
        dm.ImageModel,
        {
            "data": (5, 6),
            "dq": (5, 6),
            "err": (5, 6),
            "var_poisson": (5, 6),
            "var_rnoise": (5, 6),
            "var_flat": (5, 6),
            "area": (5, 6),
            "wht": (5, 6),
            "con": (1, 5, 6),
        },
    ),
    (
        dm.CubeModel,
        {
            "data": (3, 5, 6),
            "dq": (3, 5, 6),
            "err": (3, 5, 6),
            "var_poisson": (3, 5, 6),
            "var_rnoise": (3, 5, 6),
            "var_flat": (3, 5, 6),
        },
    ),
    (dm.MaskModel, {"dq": (5, 6)}),
    (dm.SaturationModel, {"data": (5, 6), "dq": (5, 6)}),
    (dm.SuperBiasModel, {"data": (5, 6), "err": (5, 6), "dq": (5, 6)}),
    (dm.LinearityModel, {"coeffs": (5, 5, 6), "dq": (5, 6)}),
    (dm.DarkModel, {"data": (4, 5, 6), "err": (4, 5, 6), "dq": (5, 6)}),
    (dm.GainModel, {"data": (5, 6)}),
    (dm.ReadnoiseModel, {"data": (5, 6)}),
    (dm.FlatModel, {"data": (5, 6), "err": (5, 6), "dq": (5, 6)}),
    (dm.PixelAreaModel, {"data": (5, 6)}),
]


@pytest.mark.parametrize(("cls", "arrays"), MODEL_CASES, ids=lambda c: getattr(c, "__name__", ""))
def test_round_trip_every_model(cls, arrays, tmp_path):
    values = {
        name: _fill(shape, cls._arrays[name].dtype, i)
        for i, (name, shape) in enumerate(arrays.items())
    }
    model = cls(**values)
    model.meta.instrument.name = "NIRCAM"
    model.meta.instrument.detector = "NRCA1"
    model.meta.exposure.nframes = 1
    model.meta.exposure.groupgap = 0
    model.meta.subarray.xstart = 1
    model.meta.photometry.pixelarea_steradians = 2.3e-14
    model.extra["jwpipe"] = {"step": "x", "pars": {"a": 1, "b": [1.5, "s", None, True]}}
    path = model.save(tmp_path / f"{cls.__name__}.fits")
    with dm.open(path) as back:
        assert type(back) is cls
        for name, array in values.items():
            got = getattr(back, name)
            assert got.dtype == np.dtype(cls._arrays[name].dtype), name
            np.testing.assert_array_equal(got, array, err_msg=name)
        assert back.meta.instrument.detector == "NRCA1"
        assert back.meta.subarray.xstart == 1
        assert back.meta.photometry.pixelarea_steradians == 2.3e-14
        assert back.meta.model_type == cls.__name__
        assert back.extra == model.extra
        if isinstance(back, dm.ReferenceFileModel):
            assert back.get_crds_parameters()["REFTYPE"] == cls.reftype
    names = [h.name for h in fits.open(path)]
    assert names[0] == "PRIMARY" and names[-1] == "ASDF"
    if cls._primary == "data":
        assert names[1] == "SCI"


def test_photom_round_trip_and_lookup(tmp_path):
    table = np.array(
        [("F200W", "CLEAR", 0.25, 0.01), ("F210M", "MASKRND", 1.5, 0.1)],
        dtype=[("filter", "S12"), ("pupil", "S12"), ("photmjsr", "f4"), ("uncertainty", "f4")],
    )
    model = dm.PhotomModel(phot_table=table)
    model.meta.photometry.pixelarea_steradians = 9.1e-14
    model.meta.photometry.pixelarea_arcsecsq = 0.00387
    model.meta.instrument.name = "NIRCAM"
    path = model.save(tmp_path / "photom.fits")
    assert fits.getheader(path, 0)["PIXAR_SR"] == 9.1e-14  # primary header for photom refs
    with dm.open(path) as back:
        assert isinstance(back, dm.PhotomModel)
        row = back.find_row("F210M", "MASKRND")
        assert row["photmjsr"] == pytest.approx(1.5)
        assert back.find_row("F444W", "CLEAR") is None
        assert back.meta.photometry.pixelarea_arcsecsq == pytest.approx(0.00387)


def test_unsigned_and_scaled_images_read_exactly(tmp_path):
    """BZERO-scaled uint16 SCI and int32 DQ with bit 31 (sign) are converted exactly."""
    rng = np.random.default_rng(3)
    sci = rng.integers(0, 65535, (2, 4, 33, 40), endpoint=True).astype(np.uint16)
    sci[0, 0, 0, :3] = (0, 32768, 65535)
    dq = np.array([[0, 1, 2**31, 2**31 + 513]], dtype=np.uint32)
    path = tmp_path / "scaled.fits"
    fits.HDUList(
        [fits.PrimaryHDU(), fits.ImageHDU(sci, name="SCI"), fits.ImageHDU(dq, name="DQ")]
    ).writeto(path)
    assert fits.getheader(path, "SCI")["BZERO"] == 32768
    with dm.open(path) as ramp:
        np.testing.assert_array_equal(ramp.data, sci.astype(np.float32))
    with dm.MaskModel(path) as mask:
        assert mask.dq.dtype == np.uint32
        np.testing.assert_array_equal(mask.dq, dq)
    # signed int32 DQ (allowed in masks) with negative values keeps its bit pattern
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(dq.view(np.int32), name="DQ")]).writeto(
        tmp_path / "signed.fits"
    )
    with dm.MaskModel(tmp_path / "signed.fits") as mask:
        np.testing.assert_array_equal(mask.dq, dq)


def test_float64_and_small_chunks(tmp_path, monkeypatch):
    from jwpipe.datamodels import _fitsio

    monkeypatch.setattr(_fitsio, "_CHUNK_BYTES", 64)  # force many chunks, ragged last one
    data = np.arange(7 * 9, dtype=np.float64).reshape(7, 9) / 3
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data, name="SCI")]).writeto(tmp_path / "d.fits")
    with dm.open(tmp_path / "d.fits") as image:
        assert type(image) is dm.ImageModel
        np.testing.assert_array_equal(image.data, data.astype(np.float32))


# --------------------------------------------------------------------------- metadata
def test_meta_access_rules():
    model = dm.ImageModel((3, 4))
    assert model.meta.exposure.ngroups is None
    assert model.meta.cal_step.flat_field is None
    assert model.meta.ref_file.flat.name is None
    assert model.meta.model_type == "ImageModel"
    with pytest.raises(AttributeError):
        _ = model.meta.not_a_known_thing
    # open-ended families: any step alias / reference type reads None and can be set
    assert model.meta.cal_step.my_new_step is None
    assert model.meta.ref_file.my_new_reftype.name is None
    model.meta.cal_step.my_new_step = "COMPLETE"
    model.meta.ref_file.my_new_reftype.name = "ref.fits"
    assert model.meta.cal_step.my_new_step == "COMPLETE"
    assert model.meta.ref_file.my_new_reftype.name == "ref.fits"
    model.meta.exposure.ngroups = np.int64(7)
    assert model.meta.exposure.ngroups == 7 and type(model.meta.exposure.ngroups) is int
    model.meta.exposure.frame_time = 2
    assert model.meta.exposure.frame_time == 2.0
    model.meta.instrument = {"name": "NIRCAM", "detector": "NRCB1"}
    assert model.meta.instrument.detector == "NRCB1"
    with pytest.raises(DataModelError, match="NGROUPS"):
        model.meta.exposure.ngroups = "ten"
    with pytest.raises(DataModelError, match="cannot be stored"):
        model.meta.my_obj = object()
    model.meta.exposure.ngroups = None
    assert "NGROUPS" not in model.header("PRIMARY")
    assert model.meta.exposure.ngroups is None
    model.meta.my_group = {"a": {"b": 1}}
    assert model.meta.my_group.a.b == 1
    flat = model.meta.to_dict()
    assert flat["instrument.detector"] == "NRCB1" and flat["my_group.a.b"] == 1


def test_cal_step_and_ref_file_keywords(tmp_path):
    model = dm.RampModel(np.zeros((1, 3, 4, 4), np.float32))
    model.meta.cal_step.dq_init = "COMPLETE"
    model.meta.cal_step.dark_sub = "SKIPPED"
    model.meta.cal_step.ramp_fit = "FAILED"
    model.meta.ref_file.mask.name = "jwst_nircam_mask_0001.fits"
    model.meta.ref_file.readnoise.name = "N/A"
    model.meta.ref_file.crds.context_used = "jwst_1234.pmap"
    path = model.save(tmp_path / "r.fits")
    header = fits.getheader(path, 0)
    assert header["S_DQINIT"] == "COMPLETE"
    assert header["S_DARK"] == "SKIPPED"
    assert header["S_RAMP"] == "FAILED"
    assert header["R_MASK"] == "jwst_nircam_mask_0001.fits"
    assert header["R_READNO"] == "N/A"
    assert header["CRDS_CTX"] == "jwst_1234.pmap"
    with dm.open(path) as back:
        assert back.meta.cal_step.dark_sub == "SKIPPED"
        assert back.meta.ref_file.readnoise.name == "N/A"
        assert back.meta.ref_file.crds.context_used == "jwst_1234.pmap"


def test_extra_and_unknown_meta_stored_in_asdf_tree(tmp_path):
    model = dm.ImageModel((2, 2))
    model.extra["provenance"] = {"version": __version__, "timing": {"jump": 1.25}}
    model.meta.instrument.my_setting = "abc"
    path = model.save(tmp_path / "e.fits")
    tree = _asdf_tree(path)
    assert tree["extra"]["provenance"]["timing"]["jump"] == 1.25
    assert tree["meta"] == {"instrument": {"my_setting": "abc"}}
    hdu = fits.open(path)["ASDF"]
    assert hdu.columns.names == ["ASDF_METADATA"] and hdu.data.shape == (1,)
    assert hdu.header["TFORM1"].endswith("B")
    with dm.open(path) as back:
        assert back.extra == model.extra
        assert back.meta.instrument.my_setting == "abc"


def test_file_without_asdf_extension(tmp_path):
    data = np.ones((3, 4), np.float32)
    header = fits.Header([("INSTRUME", "NIRCAM"), ("FOOKEY", 12, "kept")])
    fits.HDUList([fits.PrimaryHDU(header=header), fits.ImageHDU(data, name="SCI")]).writeto(
        tmp_path / "plain.fits"
    )
    with dm.open(tmp_path / "plain.fits") as model:
        assert type(model) is dm.ImageModel
        assert model.extra == {}
        assert model.meta.instrument.name == "NIRCAM"
        model.save(tmp_path / "plain2.fits")
    assert fits.getheader(tmp_path / "plain2.fits", 0).comments["FOOKEY"] == "kept"


def test_unknown_extensions_preserved(tmp_path, uncal):
    group = np.array(
        [(1, 1, 0.5)],
        dtype=[("integration_number", "i4"), ("group_number", "i2"), ("bary_end_time", "f8")],
    )
    int_times = np.array(
        [(1, 59000.1)], dtype=[("integration_number", "i4"), ("int_mid_MJD_UTC", "f8")]
    )
    ramp = dm.RampModel(np.zeros((1, 2, 3, 3), np.float32))
    ramp.int_times = int_times
    hdul = ramp.to_hdulist()
    hdul.insert(2, fits.BinTableHDU(group, name="GROUP"))
    hdul.insert(3, fits.ImageHDU(np.arange(6, dtype=np.int16).reshape(2, 3), name="WEIRD"))
    hdul.writeto(tmp_path / "in.fits")
    with dm.open(tmp_path / "in.fits") as model:
        assert model.group["bary_end_time"][0] == 0.5
        assert model.int_times["int_mid_MJD_UTC"][0] == 59000.1
        model.save(tmp_path / "out.fits")
    with fits.open(tmp_path / "out.fits") as out:
        assert "WEIRD" in out and "GROUP" in out and "INT_TIMES" in out
        np.testing.assert_array_equal(out["WEIRD"].data, np.arange(6).reshape(2, 3))


def test_copy_is_deep(tmp_path):
    model = dm.ImageModel((2, 3))
    model.meta.instrument.name = "NIRCAM"
    model.extra["a"] = [1]
    twin = model.copy()
    twin.data[0, 0] = 5
    twin.meta.instrument.name = "MIRI"
    twin.extra["a"].append(2)
    assert model.data[0, 0] == 0
    assert model.meta.instrument.name == "NIRCAM"
    assert model.extra == {"a": [1]}


def test_model_from_model_and_constructors(uncal):
    with dm.RampModel(uncal) as ramp:
        image = dm.ImageModel(ramp)
        assert image.data is None  # 4-D data do not fit an image
        assert image.meta.instrument.detector == "NRCA2"
        assert image.meta.model_type == "ImageModel"
    cube = dm.CubeModel((2, 3, 4))
    assert cube.shape == (2, 3, 4) and cube.dq.shape == (2, 3, 4) and cube.area is None
    with pytest.raises(DataModelError, match="dimensions"):
        dm.ImageModel(np.zeros((2, 3, 4)))
    with pytest.raises(DataModelError, match="cannot be converted"):
        dm.ImageModel(np.zeros((2, 3), dtype=complex))
    with pytest.raises(TypeError):
        dm.ImageModel((2, 2), nonsense=np.zeros(2))


def test_open_returns_model_unchanged():
    model = dm.ImageModel((2, 2))
    assert dm.open(model) is model


# --------------------------------------------------------------------------- atomic save
def test_failed_save_leaves_nothing(tmp_path, monkeypatch):
    model = dm.ImageModel(np.ones((64, 64), np.float32))
    target = tmp_path / "out.fits"

    real_writeto = fits.HDUList.writeto

    def broken(self, fileobj, *args, **kwargs):
        fileobj.write(b"SIMPLE  = partial")
        raise OSError("disk full")

    monkeypatch.setattr(fits.HDUList, "writeto", broken)
    with pytest.raises(OSError, match="disk full"):
        model.save(target)
    assert os.listdir(tmp_path) == []
    assert model.meta.filename is None
    # an existing file stays intact when the replacement fails
    monkeypatch.setattr(fits.HDUList, "writeto", real_writeto)
    model.save(target)
    before = target.read_bytes()
    monkeypatch.setattr(fits.HDUList, "writeto", broken)
    with pytest.raises(OSError):
        model.save(target)
    assert target.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["out.fits"]


def test_save_overwrite_false_and_input_not_modified(tmp_path, uncal):
    copy = tmp_path / UNCAL
    shutil.copy(uncal, copy)
    before = copy.read_bytes()
    with dm.open(copy) as model:
        model.data += 1
        model.meta.exposure.ngroups = 3
        with pytest.raises(DataModelError, match="already exists"):
            model.save(copy, overwrite=False)
    assert copy.read_bytes() == before


# --------------------------------------------------------------------------- bad files
def test_missing_file(tmp_path):
    with pytest.raises(DataModelError, match="does not exist"):
        dm.open(tmp_path / "nope.fits")
    with pytest.raises(DataModelError, match="does not exist"):
        dm.RampModel(tmp_path / "nope.fits")


def test_not_fits(tmp_path):
    path = tmp_path / "text.fits"
    path.write_text("hello, I am not FITS\n" * 200)
    with pytest.raises(DataModelError, match=r"text.fits"):
        dm.open(path)


def test_truncated(tmp_path, uncal):
    model = dm.ImageModel(np.ones((50, 50), np.float32))
    model.save(tmp_path / "full.fits")
    raw = (tmp_path / "full.fits").read_bytes()
    for cut in (len(raw) // 2, 5000, 100):
        (tmp_path / "cut.fits").write_bytes(raw[:cut])
        with pytest.raises(DataModelError, match=r"cut.fits"):
            with dm.open(tmp_path / "cut.fits") as m:
                _ = m.data


def test_lacks_sci_and_wrong_dimensionality(tmp_path):
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.ones((2, 2)), name="FOO")]).writeto(
        tmp_path / "nosci.fits"
    )
    with pytest.raises(DataModelError, match="lacks a SCI"):
        dm.open(tmp_path / "nosci.fits")
    with pytest.raises(DataModelError, match="lacks the SCI"):
        dm.ImageModel(tmp_path / "nosci.fits")
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.ones(5), name="SCI")]).writeto(
        tmp_path / "onedim.fits"
    )
    with pytest.raises(DataModelError, match="1 dimensions"):
        dm.open(tmp_path / "onedim.fits")
    fits.HDUList(
        [fits.PrimaryHDU(), fits.ImageHDU(np.ones((2, 3), np.float32), name="SCI")]
    ).writeto(tmp_path / "img.fits")
    with pytest.raises(DataModelError, match=r"img.fits.*2 dimensions"):
        dm.RampModel(tmp_path / "img.fits")
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.ImageHDU(np.ones((2, 3), np.float32), name="SCI"),
            fits.ImageHDU(np.ones((3, 3), np.uint32), name="DQ"),
        ]
    ).writeto(tmp_path / "mismatch.fits")
    with pytest.raises(DataModelError, match="DQ has shape"):
        dm.open(tmp_path / "mismatch.fits")


def test_wrong_dtype(tmp_path):
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.ImageHDU(np.ones((2, 3), np.float32), name="SCI"),
            fits.ImageHDU(np.ones((2, 3), np.float32), name="DQ"),
        ]
    ).writeto(tmp_path / "floatdq.fits")
    with pytest.raises(DataModelError, match=r"DQ.*float32"):
        dm.open(tmp_path / "floatdq.fits")


def test_missing_required_keywords(tmp_path):
    dark = dm.DarkModel(np.zeros((2, 3, 3), np.float32))
    with pytest.raises(DataModelError, match="NFRAMES"):
        dark.save(tmp_path / "dark.fits")
    fits.HDUList(
        [
            fits.PrimaryHDU(header=fits.Header([("REFTYPE", "DARK")])),
            fits.ImageHDU(np.zeros((2, 3, 3), np.float32), name="SCI"),
        ]
    ).writeto(tmp_path / "dark.fits")
    with pytest.raises(DataModelError, match=r"dark.fits.*NFRAMES"):
        dm.open(tmp_path / "dark.fits")
    table = fits.HDUList([fits.PrimaryHDU(header=fits.Header([("REFTYPE", "PHOTOM")]))])
    table.writeto(tmp_path / "photom.fits")
    with pytest.raises(DataModelError, match="PHOTOM table"):
        dm.open(tmp_path / "photom.fits")


def test_bad_asdf_extension(tmp_path):
    model = dm.ImageModel((2, 2))
    hdul = model.to_hdulist()
    junk = np.frombuffer(b"#ASDF 1.0.0\n%YAML 1.1\n--- [unclosed\n", dtype=np.uint8)
    hdul[-1] = fits.BinTableHDU.from_columns(
        [fits.Column(name="ASDF_METADATA", format=f"{junk.size}B", array=junk[None, :])],
        name="ASDF",
    )
    hdul.writeto(tmp_path / "badtree.fits")
    with pytest.raises(DataModelError, match="ASDF"):
        dm.open(tmp_path / "badtree.fits")


def test_lazy_arrays_survive_replacement_of_the_file(tmp_path):
    path = tmp_path / "a_cal.fits"
    dm.ImageModel(np.full((4, 4), 1, np.float32), err=np.full((4, 4), 2, np.float32)).save(path)
    first = dm.open(path)
    first.data[0, 0] = 10  # only data is read; err is still on disk
    first.save(path)  # saving over its own source reads err first
    assert first.err[0, 0] == 2
    second = dm.open(path)
    dm.ImageModel(np.full((4, 4), 7, np.float32)).save(path)  # replaced under `second`
    assert second.data[0, 0] == 10 and second.err[0, 0] == 2  # still the file it opened
    second.close()
    first.close()
    from jwpipe.atomic import umask as _umask

    assert os.stat(path).st_mode & 0o777 == 0o666 & ~_umask()  # not mkstemp's private 0600


def test_closed_model_does_not_fake_data(tmp_path):
    dm.ImageModel(np.ones((4, 4), np.float32)).save(tmp_path / "a.fits")
    model = dm.open(tmp_path / "a.fits")
    model.close()
    with pytest.raises(DataModelError, match="closed"):
        _ = model.data


# --------------------------------------------------------------------------- reference DQ_DEF
def _stdatamodels_style_saturation(path):
    """A SaturationModel laid out as stdatamodels writes it, with a compressed DQ_DEF."""
    primary = fits.Header()
    for key, value in [
        ("DATAMODL", "SaturationModel"),
        ("REFTYPE", "SATURATION"),
        ("TELESCOP", "JWST"),
        ("INSTRUME", "NIRCAM"),
        ("DETECTOR", "NRCA1"),
        ("SUBARRAY", "FULL"),
        ("USEAFTER", "2015-10-01T00:00:00"),
        ("PEDIGREE", "GROUND"),
        ("AUTHOR", "someone"),
        ("DESCRIP", "test saturation"),
    ]:
        primary[key] = value
    primary["HISTORY"] = "made for a test"
    sci = np.full((4, 5), 60000.0, np.float32)
    sci[1, 1] = 12345.5
    dq = np.zeros((4, 5), np.uint32)
    dq[0, 0] = 1  # compressed bit 0 -> DO_NOT_USE
    dq[0, 1] = 2  # compressed bit 1 -> NO_SAT_CHECK
    dq[0, 2] = 4  # compressed bit 2 -> REFERENCE_PIXEL
    dq[0, 3] = 3
    dq_def = np.array(
        [
            (0, 1, "DO_NOT_USE", "Bad pixel"),
            (1, 2, "NO_SAT_CHECK", "no check"),
            (2, 4, "REFERENCE_PIXEL", "ref pixel"),
        ],
        dtype=[("BIT", "i4"), ("VALUE", "u4"), ("NAME", "S40"), ("DESCRIPTION", "S80")],
    )
    tree = (
        b"#ASDF 1.0.0\n#ASDF_STANDARD 1.5.0\n%YAML 1.1\n%TAG ! tag:stsci.edu:asdf/\n"
        b"--- !core/asdf-1.1.0\n_fits_hash: abc\n"
        b"data: !core/ndarray-1.0.0\n  source: fits:SCI,1\n  datatype: float32\n"
        b"  byteorder: big\n  shape: [4, 5]\n"
        b"dq: !core/ndarray-1.0.0\n  source: fits:DQ,1\n  datatype: uint32\n"
        b"  byteorder: big\n  shape: [4, 5]\n"
        b"meta:\n  reftype: SATURATION\n  model_type: SaturationModel\n"
        b"  instrument: {name: NIRCAM, detector: NRCA1}\n...\n"
    )
    raw = np.frombuffer(tree, dtype=np.uint8)
    fits.HDUList(
        [
            fits.PrimaryHDU(header=primary),
            fits.ImageHDU(sci, name="SCI"),
            fits.ImageHDU(dq, name="DQ"),
            fits.BinTableHDU(dq_def, name="DQ_DEF"),
            fits.BinTableHDU.from_columns(
                [fits.Column(name="ASDF_METADATA", format=f"{raw.size}B", array=raw[None, :])],
                name="ASDF",
            ),
        ]
    ).writeto(path)


def test_stdatamodels_reference_file_opens_and_dq_is_remapped(tmp_path):
    path = tmp_path / "jwst_nircam_saturation_0001.fits"
    _stdatamodels_style_saturation(path)
    with dm.open(path) as sat:
        assert type(sat) is dm.SaturationModel
        assert sat.data[1, 1] == np.float32(12345.5)
        flags = dqflags.pixel
        assert sat.dq[0, 0] == flags["DO_NOT_USE"]
        assert sat.dq[0, 1] == flags["NO_SAT_CHECK"]
        assert sat.dq[0, 2] == flags["REFERENCE_PIXEL"]
        assert sat.dq[0, 3] == flags["DO_NOT_USE"] | flags["NO_SAT_CHECK"]
        assert sat.dq[2:].sum() == 0
        assert sat.meta.reftype == "SATURATION"
        assert sat.meta.useafter == "2015-10-01T00:00:00"
        params = sat.get_crds_parameters()
        assert params["REFTYPE"] == "SATURATION" and params["DETECTOR"] == "NRCA1"
        out = sat.save(tmp_path / "resaved.fits")
    # the rewritten file carries a standard DQ_DEF, so re-reading is an identity remap
    with dm.open(out) as again:
        np.testing.assert_array_equal(again.dq, sat.dq)
    with fits.open(out) as hdul:
        names = [h.name for h in hdul]
        assert names == ["PRIMARY", "SCI", "DQ", "DQ_DEF", "ASDF"]
        assert "HISTORY" in hdul[0].header
        assert len(hdul["DQ_DEF"].data) == 32


def test_open_dispatch_by_reftype_and_extensions(tmp_path):
    fits.HDUList(
        [
            fits.PrimaryHDU(header=fits.Header([("REFTYPE", "GAIN")])),
            fits.ImageHDU(np.ones((2, 2), np.float32), name="SCI"),
        ]
    ).writeto(tmp_path / "g.fits")
    assert type(dm.open(tmp_path / "g.fits")) is dm.GainModel
    fits.HDUList(
        [fits.PrimaryHDU(), fits.ImageHDU(np.ones((3, 2, 2), np.float32), name="COEFFS")]
    ).writeto(tmp_path / "lin.fits")
    assert type(dm.open(tmp_path / "lin.fits")) is dm.LinearityModel
    fits.HDUList(
        [fits.PrimaryHDU(), fits.ImageHDU(np.ones((3, 2, 2), np.float32), name="SCI")]
    ).writeto(tmp_path / "cube.fits")
    assert type(dm.open(tmp_path / "cube.fits")) is dm.CubeModel


# --------------------------------------------------------------------------- container
def test_model_container_lazy_and_eager(tmp_path, uncal):
    paths = []
    for i in range(3):
        model = dm.ImageModel(np.full((4, 4), i, np.float32))
        model.meta.instrument.detector = f"NRCA{i + 1}"
        paths.append(model.save(tmp_path / f"m{i}_cal.fits"))
    lazy = dm.ModelContainer(paths)
    assert len(lazy) == 3
    assert lazy.paths == paths
    assert all(isinstance(m, str) for m in lazy._members)  # nothing held open
    assert [m.data[0, 0] for m in lazy] == [0, 1, 2]
    assert lazy[1].meta.instrument.detector == "NRCA2"
    assert lazy.get_crds_parameters()["DETECTOR"] == "NRCA1"
    eager = dm.ModelContainer(paths, lazy=False)
    assert all(isinstance(m, dm.ImageModel) for m in eager._members)
    eager[0].data[0, 0] = 42
    assert eager[0].data[0, 0] == 42
    eager.close()
    mixed = dm.open([paths[0], dm.ImageModel((2, 2))])
    assert isinstance(mixed, dm.ModelContainer) and len(mixed) == 2
    assert len(mixed[0:1]) == 1
    with pytest.raises(DataModelError, match="does not exist"):
        dm.ModelContainer([tmp_path / "missing.fits"])


def test_model_container_from_association(tmp_path):
    import json

    for name in ("a_cal.fits", "b_cal.fits"):
        dm.ImageModel((2, 2)).save(tmp_path / name)
    asn = {
        "asn_id": "o001",
        "products": [
            {
                "name": "prod",
                "members": [
                    {"expname": "a_cal.fits", "exptype": "science"},
                    {"expname": "b_cal.fits", "exptype": "background"},
                ],
            }
        ],
    }
    (tmp_path / "asn.json").write_text(json.dumps(asn))
    container = dm.open(tmp_path / "asn.json")
    assert isinstance(container, dm.ModelContainer)
    assert container.exptypes == ["science", "background"]
    assert container.asn_table["asn_id"] == "o001"
    only_science = dm.ModelContainer(tmp_path / "asn.json", exptypes=["science"])
    assert len(only_science) == 1
    (tmp_path / "out").mkdir()
    saved = container.save(tmp_path / "out")
    assert [os.path.basename(p) for p in saved] == ["a_cal.fits", "b_cal.fits"]


# --------------------------------------------------------------------------- import cost
def test_import_does_not_load_asdf():
    code = "import sys, jwpipe.datamodels; print('asdf' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
