"""Associations built from exposure files, grouped as JWST's imaging rules group them."""

from __future__ import annotations

import pytest
from astropy.io import fits

from jwpipe.associations.from_exposures import associations_from_exposures
from jwpipe.associations.validate import parse_asn
from jwpipe.errors import AssociationError


def _exposure(tmp_path, name, **keys):
    header = fits.Header({"PROGRAM": "02738", "OBSERVTN": "002", "TARGPROP": "NGC-1",
                          "INSTRUME": "NIRCAM", "FILTER": "F090W", "PUPIL": "CLEAR",
                          "EXP_TYPE": "NRC_IMAGE", "DETECTOR": "NRCB1"} | keys)
    path = tmp_path / name
    fits.PrimaryHDU(header=header).writeto(path)
    return str(path)


def test_groups_by_observation_target_instrument_and_optical_elements(tmp_path):
    files = [
        _exposure(tmp_path, "jw02738002001_02201_00001_nrcb1_uncal.fits"),
        _exposure(tmp_path, "jw02738002001_02201_00002_nrcb1_uncal.fits"),
        _exposure(tmp_path, "jw02738002001_02201_00001_nrcb2_rate.fits", DETECTOR="NRCB2"),
        _exposure(tmp_path, "jw02738002001_04201_00001_nrcb1_uncal.fits", FILTER="F150W2",
                  PUPIL="F162M"),
        _exposure(tmp_path, "jw02738003001_02201_00001_nrcb1_uncal.fits", OBSERVTN="003",
                  TARGPROP="NGC-2"),
        _exposure(tmp_path, "jw02738002001_03101_00001_nrcb1_uncal.fits", EXP_TYPE="NRC_TACQ"),
    ]
    asns, skipped = associations_from_exposures(files)
    names = {a["products"][0]["name"]: a for a in asns}
    assert set(names) == {"jw02738-o002_t001_nircam_clear-f090w",
                          "jw02738-o002_t001_nircam_f150w2-f162m",
                          "jw02738-o003_t002_nircam_clear-f090w"}
    members = [m["expname"] for m in names["jw02738-o002_t001_nircam_clear-f090w"]
               ["products"][0]["members"]]
    assert members == ["jw02738002001_02201_00001_nrcb1_cal.fits",
                       "jw02738002001_02201_00001_nrcb2_cal.fits",
                       "jw02738002001_02201_00002_nrcb1_cal.fits"]
    assert names["jw02738-o003_t002_nircam_clear-f090w"]["asn_id"] == "o003"
    for asn in asns:
        parse_asn(asn, tmp_path)
    assert skipped == ["jw02738002001_03101_00001_nrcb1_uncal.fits: EXP_TYPE NRC_TACQ is not "
                       "imaging science; not associated"]


def test_image2_only(tmp_path):
    files = [_exposure(tmp_path, f"jw02738002001_02201_0000{i}_nrcb1_uncal.fits")
             for i in (1, 2)]
    asns, _ = associations_from_exposures(files, level3=False)
    assert [a["asn_type"] for a in asns] == ["image2", "image2"]
    assert asns[0]["products"][0]["members"][0]["expname"] == \
        "jw02738002001_02201_00001_nrcb1_rate.fits"


def test_refusals_name_the_file(tmp_path):
    bad = tmp_path / "x_uncal.fits"
    bad.write_text("not fits")
    with pytest.raises(AssociationError, match=r"x_uncal\.fits: cannot read its FITS header"):
        associations_from_exposures([str(bad)])
    nokeys = tmp_path / "y_uncal.fits"
    fits.PrimaryHDU().writeto(nokeys)
    with pytest.raises(AssociationError, match="lacks PROGRAM, OBSERVTN, INSTRUME, EXP_TYPE"):
        associations_from_exposures([str(nokeys)])
    same = [_exposure(tmp_path, "jw02738002001_02201_00001_nrcb1_uncal.fits"),
            _exposure(tmp_path, "jw02738002001_02201_00001_nrcb1_rate.fits")]
    with pytest.raises(AssociationError, match="same exposure"):
        associations_from_exposures(same)
