"""Every reference type jwpipe uses for NIRCam, NIRISS and MIRI imaging, written by STScI's
stdatamodels (the format CRDS serves), opens with jwpipe as the right model with its values."""

from __future__ import annotations

import numpy as np
import pytest
from formats_data import nircam_distortion_model, write_distortion, write_filteroffset

from jwpipe import datamodels
from jwpipe.errors import DataModelError

sdm = pytest.importorskip("stdatamodels.jwst.datamodels")

SHAPE = (12, 10)
RNG = np.random.default_rng(7)


def _meta(model, reftype, instrument="NIRCAM", detector="NRCA1"):
    model.meta.reftype = reftype
    model.meta.instrument.name = instrument
    model.meta.instrument.detector = detector
    if instrument == "NIRCAM":
        model.meta.instrument.channel = "SHORT"
        model.meta.instrument.module = "A"
    model.meta.author = "jwpipe tests"
    model.meta.pedigree = "GROUND"
    model.meta.useafter = "2022-01-01T00:00:00"
    model.meta.description = f"test {reftype}"
    model.meta.telescope = "JWST"
    return model


def _f32(shape=SHAPE):
    return RNG.uniform(0.5, 2.0, shape).astype(np.float32)


DQ_DEF = [(0, 1, "DO_NOT_USE", "bad"), (1, 2, "DEAD", "dead"), (2, 4, "HOT", "hot")]


def _dq():
    dq = np.zeros(SHAPE, np.uint32)
    dq[1, 2], dq[3, 4], dq[5, 6] = 1, 2, 4 | 1
    return dq


def _expected_dq():
    from jwpipe.datamodels import dqflags

    p = dqflags.pixel
    dq = np.zeros(SHAPE, np.uint32)
    dq[1, 2], dq[3, 4], dq[5, 6] = p["DO_NOT_USE"], p["DEAD"], p["HOT"] | p["DO_NOT_USE"]
    return dq


def test_detector1_references(tmp_path):
    """mask, saturation, superbias, linearity, dark, gain, readnoise (DQ_DEF remapped)."""
    arrays = {}
    # compressed DQ bits defined by DQ_DEF, as CRDS mask files are
    _meta(sdm.MaskModel(dq=_dq(), dq_def=DQ_DEF), "MASK").save(tmp_path / "mask.fits")
    arrays["sat"] = _f32() * 6e4
    _meta(sdm.SaturationModel(data=arrays["sat"], dq=_dq(), dq_def=DQ_DEF),
          "SATURATION").save(tmp_path / "saturation.fits")
    arrays["bias"] = _f32() * 1e4
    _meta(sdm.SuperBiasModel(data=arrays["bias"], err=_f32(), dq=_dq()), "SUPERBIAS").save(
        tmp_path / "superbias.fits")
    arrays["coeffs"] = _f32((5, *SHAPE))
    _meta(sdm.LinearityModel(coeffs=arrays["coeffs"], dq=np.zeros(SHAPE, np.uint32)),
          "LINEARITY").save(tmp_path / "linearity.fits")
    arrays["dark"] = _f32((4, *SHAPE))
    m = _meta(sdm.DarkModel(data=arrays["dark"], dq=np.zeros(SHAPE, np.uint32)), "DARK")
    m.meta.exposure.nframes, m.meta.exposure.groupgap = 4, 1
    m.save(tmp_path / "dark.fits")
    arrays["gain"] = _f32()
    _meta(sdm.GainModel(data=arrays["gain"]), "GAIN").save(tmp_path / "gain.fits")
    arrays["rn"] = _f32()
    _meta(sdm.ReadnoiseModel(data=arrays["rn"]), "READNOISE").save(tmp_path / "readnoise.fits")

    mask = datamodels.open(tmp_path / "mask.fits")
    assert type(mask) is datamodels.MaskModel
    np.testing.assert_array_equal(mask.dq, _expected_dq())
    np.testing.assert_array_equal(mask.dq, sdm.MaskModel(tmp_path / "mask.fits").dq)
    sat = datamodels.open(tmp_path / "saturation.fits")
    assert type(sat) is datamodels.SaturationModel
    np.testing.assert_array_equal(sat.data, arrays["sat"])
    np.testing.assert_array_equal(sat.dq, _expected_dq())
    bias = datamodels.open(tmp_path / "superbias.fits")
    assert type(bias) is datamodels.SuperBiasModel
    np.testing.assert_array_equal(bias.data, arrays["bias"])
    lin = datamodels.open(tmp_path / "linearity.fits")
    assert type(lin) is datamodels.LinearityModel
    np.testing.assert_array_equal(lin.coeffs, arrays["coeffs"])
    dark = datamodels.open(tmp_path / "dark.fits")
    assert type(dark) is datamodels.DarkModel
    np.testing.assert_array_equal(dark.data, arrays["dark"])
    assert (dark.meta.exposure.nframes, dark.meta.exposure.groupgap) == (4, 1)
    for name, cls, key in (("gain", datamodels.GainModel, "gain"),
                           ("readnoise", datamodels.ReadnoiseModel, "rn")):
        model = datamodels.open(tmp_path / f"{name}.fits")
        assert type(model) is cls
        np.testing.assert_array_equal(model.data, arrays[key])
        assert model.get_crds_parameters()["DETECTOR"] == "NRCA1"


def _phot_table(instrument):
    if instrument == "MIRI":
        return np.array([("F770W", "FULL", 0.25, 0.01), ("F770W", "SUB256", 0.26, 0.01)],
                        dtype=[("filter", "S12"), ("subarray", "S15"), ("photmjsr", "f4"),
                               ("uncertainty", "f4")])
    return np.array([("F200W", "CLEAR", 0.22, 0.004), ("F150W", "CLEAR", 0.24, 0.005)],
                    dtype=[("filter", "S12"), ("pupil", "S12"), ("photmjsr", "f4"),
                           ("uncertainty", "f4")])


def _apcorr_table(instrument):
    rows = [(0.1, 1.2, 9.1), (0.7, 3.4, 1.6), (0.5, 2.1, 2.3)]
    if instrument == "MIRI":
        return np.array([("F770W", "FULL", ee, r, a, 5.0, 8.0) for ee, r, a in rows],
                        dtype=[("filter", "S12"), ("subarray", "S15"), ("eefraction", "f4"),
                               ("radius", "f4"), ("apcorr", "f4"), ("skyin", "f4"),
                               ("skyout", "f4")])
    return np.array([("F200W", "CLEAR", ee, r, a, 5.0, 8.0) for ee, r, a in rows]
                    + [("F150W", "CLEAR", 0.5, 2.0, 2.2, 5.0, 8.0)],
                    dtype=[("filter", "S12"), ("pupil", "S15"), ("eefraction", "f4"),
                           ("radius", "f4"), ("apcorr", "f4"), ("skyin", "f4"),
                           ("skyout", "f4")])


@pytest.mark.parametrize(("instrument", "detector", "prefix"), [
    ("NIRCAM", "NRCA1", "Nrc"), ("NIRISS", "NIS", "Nis"), ("MIRI", "MIRIMAGE", "Mir")])
def test_image2_and_image3_references(tmp_path, instrument, detector, prefix):
    """flat, area, photom and apcorr of each imager."""
    flat_data = _f32()
    m = _meta(sdm.FlatModel(data=flat_data, dq=_dq(), err=_f32(), dq_def=DQ_DEF), "FLAT",
              instrument, detector)
    m.meta.instrument.filter = "F770W" if instrument == "MIRI" else "F200W"
    m.save(tmp_path / "flat.fits")
    area_data = _f32()
    m = _meta(sdm.PixelAreaModel(data=area_data), "AREA", instrument, detector)
    m.meta.photometry.pixelarea_steradians = 2.3e-14
    m.meta.photometry.pixelarea_arcsecsq = 9.6e-4
    m.save(tmp_path / "area.fits")
    photom_cls = getattr(sdm, f"{prefix}ImgPhotomModel")
    m = _meta(photom_cls(phot_table=_phot_table(instrument)), "PHOTOM", instrument, detector)
    m.meta.photometry.pixelarea_steradians = 2.3e-14
    m.meta.photometry.pixelarea_arcsecsq = 9.6e-4
    m.save(tmp_path / "photom.fits")
    apcorr_cls = getattr(sdm, f"{prefix}ImgApcorrModel")
    _meta(apcorr_cls(apcorr_table=_apcorr_table(instrument)), "APCORR", instrument,
          detector).save(tmp_path / "apcorr.fits")

    flat = datamodels.open(tmp_path / "flat.fits")
    assert type(flat) is datamodels.FlatModel
    np.testing.assert_array_equal(flat.data, flat_data)
    np.testing.assert_array_equal(flat.dq, _expected_dq())
    area = datamodels.open(tmp_path / "area.fits")
    assert type(area) is datamodels.PixelAreaModel
    np.testing.assert_array_equal(area.data, area_data)
    assert area.meta.photometry.pixelarea_steradians == pytest.approx(2.3e-14)
    photom = datamodels.open(tmp_path / "photom.fits")
    assert type(photom) is datamodels.PhotomModel
    assert photom.meta.photometry.pixelarea_arcsecsq == pytest.approx(9.6e-4)
    apcorr = datamodels.open(tmp_path / "apcorr.fits")
    assert type(apcorr) is datamodels.ApcorrModel
    if instrument == "MIRI":
        row = photom.find_row("F770W")
        assert float(row["photmjsr"]) == pytest.approx(0.25)
        rows = apcorr.find_rows("F770W", subarray="FULL")
    else:
        row = photom.find_row("F150W", "CLEAR")
        assert float(row["photmjsr"]) == pytest.approx(0.24)
        rows = apcorr.find_rows("F200W", "CLEAR")
    # the three encircled-energy rows of the filter, sorted by eefraction
    np.testing.assert_allclose(rows["eefraction"], [0.1, 0.5, 0.7], rtol=1e-6)
    np.testing.assert_allclose(rows["apcorr"], [9.1, 2.3, 1.6], rtol=1e-6)
    assert apcorr.find_rows("F999W", "CLEAR").size == 0


def test_distortion_reference(tmp_path):
    path = write_distortion(tmp_path / "jwst_nircam_distortion_0001.asdf")
    dist = datamodels.open(path)
    assert type(dist) is datamodels.DistortionModel
    assert dist.meta.instrument.name == "NIRCAM"
    assert dist.get_crds_parameters()["REFTYPE"] == "DISTORTION"
    x, y = np.array([0.0, 1023.5, 2047.0]), np.array([5.0, 1023.5, 2000.0])
    np.testing.assert_array_equal(dist.model(x, y), nircam_distortion_model()(x, y))
    v2, v3 = dist.model(x, y)
    xb, yb = dist.model.inverse(v2, v3)
    assert np.hypot(xb - x, yb - y).max() < 1e-3


@pytest.mark.parametrize("instrument", ["NIRCAM", "MIRI"])
def test_filteroffset_reference(tmp_path, instrument):
    if instrument == "MIRI":
        entries = [{"filter": "F770W", "column_offset": 0.3, "row_offset": -1.2},
                   {"filter": "F1000W", "column_offset": 0.1, "row_offset": 0.2}]
        detector = "MIRIMAGE"
    else:
        entries = [{"filter": "F200W", "pupil": "CLEAR", "column_offset": 0.71,
                    "row_offset": -0.43},
                   {"filter": "F200W", "pupil": "MASKRND", "column_offset": 9.0,
                    "row_offset": 9.0}]
        detector = "NRCA1"
    path = write_filteroffset(tmp_path / "fo.asdf", entries, instrument, detector)
    fo = datamodels.open(path)
    assert type(fo) is datamodels.FilteroffsetModel
    if instrument == "MIRI":
        assert fo.find_offset("F770W") == (0.3, -1.2)
        assert fo.find_offset("F770W", "N/A") == (0.3, -1.2)  # MIRI entries have no pupil
    else:
        assert fo.find_offset("F200W", "CLEAR") == (0.71, -0.43)
        assert fo.find_offset("F200W", "F162M") is None
    assert fo.find_offset("F444W", "CLEAR") is None


@pytest.mark.parametrize(("instrument", "columns"), [
    ("NIRCAM", {"filter": ["F200W", "F150W"], "pupil": ["CLEAR", "CLEAR"]}),
    ("NIRISS", {"filter": ["F200W", "F150W"], "pupil": ["CLEARP", "CLEARP"]}),
    ("MIRI", {"filter": ["F770W", "F1000W"]})])
def test_abvegaoffset_reference(tmp_path, instrument, columns):
    from astropy.table import Table

    table = Table(dict(columns, abvega_offset=np.array([1.7, 1.2], np.float32)))
    m = _meta(sdm.ABVegaOffsetModel(), "ABVEGAOFFSET", instrument,
              {"NIRCAM": "NRCA1", "NIRISS": "NIS", "MIRI": "MIRIMAGE"}[instrument])
    m.abvega_offset = table
    m.save(tmp_path / "abv.asdf")
    abv = datamodels.open(tmp_path / "abv.asdf")
    assert type(abv) is datamodels.ABVegaOffsetModel
    second = columns["filter"][1]
    pupil = columns.get("pupil", [None, None])[1]
    assert abv.find_offset(filter=second, pupil=pupil) == pytest.approx(1.2)
    assert abv.find_offset(filter="F999W", pupil=pupil) is None


def test_bad_asdf_references_are_refused(tmp_path):
    import asdf
    from astropy.modeling import models

    asdf.AsdfFile({"meta": {"reftype": "specwcs"}, "model": models.Shift(1)}).write_to(
        tmp_path / "other.asdf")
    with pytest.raises(DataModelError, match="SPECWCS"):
        datamodels.open(tmp_path / "other.asdf")
    asdf.AsdfFile({"meta": {"reftype": "distortion", "output_units": "arcsec"},
                   "model": models.Shift(1)}).write_to(tmp_path / "bad.asdf")
    with pytest.raises(DataModelError, match="two inputs and two outputs"):
        datamodels.open(tmp_path / "bad.asdf")
    (tmp_path / "junk.asdf").write_bytes(b"not asdf at all")
    with pytest.raises(DataModelError, match="not a readable ASDF"):
        datamodels.open(tmp_path / "junk.asdf")
