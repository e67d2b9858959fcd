"""Simulator products: layouts, naming, references, truth consistency, determinism, CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from jwpipe.cli.main import main as cli_main
from jwpipe.errors import ValidationError
from jwpipe.references import CrdsCache, check_reference_matches, parameters_from_file
from jwpipe.simulate import simulate_field
from jwpipe.simulate.detector import DQ
from jwpipe.simulate.pointing import tan_wcs

NAME = re.compile(r"^jw\d{5}\d{3}\d{3}_\d{2}\d[0-9a-z]{2}_\d{5}_nrc[ab][1-4]_uncal\.fits$")


@pytest.fixture(scope="module")
def field(tmp_path_factory):
    out = tmp_path_factory.mktemp("field")
    return simulate_field(out, n_exposures=3, detectors=("nrca1", "nrcb2"), size=64, ngroups=4,
                          seed=3, frame_time=2.0, n_stars=15, n_galaxies=5, background=0.0)


def test_layout_and_names(field):
    out = field.outdir
    assert len(field.uncal_files) == 6
    assert all(NAME.match(p.name) for p in field.uncal_files)
    assert {p.name for p in out.glob("*_uncal.fits")} == {p.name for p in field.uncal_files}
    assert (out / "refs" / "mappings" / "jwst" / "jwst_0001.pmap").is_file()
    assert (out / "refs" / "config" / "jwst" / "server_config").is_file()
    assert (out / "simulation.yaml").is_file()
    assert len(field.truth_files) == 6 and all(p.is_file() for p in field.truth_files)
    summary = yaml.safe_load((out / "simulation.yaml").read_text())
    assert summary["reference_store"]["crds_context"] == field.context == "jwst_0001.pmap"
    assert summary["parameters"]["detectors"] == ["NRCA1", "NRCB2"]


def test_uncal_level1b_layout(field):
    path = field.uncal_files[0]
    with fits.open(path, do_not_scale_image_data=True) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "SCI", "GROUP", "INT_TIMES"]
        assert hdul[0].header["NAXIS"] == 0
        sci = hdul["SCI"].header
        assert (sci["BITPIX"], sci["BZERO"], sci["BSCALE"]) == (16, 32768, 1)
        assert (sci["NAXIS1"], sci["NAXIS2"], sci["NAXIS3"], sci["NAXIS4"]) == (64, 64, 4, 1)
        group_cols = hdul["GROUP"].columns.names
        assert group_cols[:3] == ["integration_number", "group_number", "end_day"]
        assert "group_end_time" in group_cols and len(hdul["GROUP"].data) == 4
        assert hdul["INT_TIMES"].columns.names[1] == "int_start_MJD_UTC"
    with fits.open(path) as hdul:
        assert hdul["SCI"].data.dtype == np.uint16
        h = hdul[0].header
        assert (h["INSTRUME"], h["DETECTOR"], h["EXP_TYPE"], h["READPATT"]) == (
            "NIRCAM", "NRCA1", "NRC_IMAGE", "RAPID")
        assert (h["NGROUPS"], h["NFRAMES"], h["NINTS"], h["SUBARRAY"]) == (4, 1, 1, "SUB64")
        assert (h["SUBSTRT1"], h["SUBSIZE1"], h["TFRAME"], h["TGROUP"]) == (1, 64, 2.0, 2.0)
        assert h["FILENAME"] == path.name and h["DATAMODL"] == "Level1bModel"
        assert h["DATE-OBS"] == "2023-06-01" and h["TIME-OBS"].startswith("12:00:00")
        # template keywords carried over (a real NIRCam header)
        assert "NRSTSTRT" in h and "GS_MAG" in h and h["TELESCOP"] == "JWST"
        s = hdul["SCI"].header
        for key in ("RA_REF", "DEC_REF", "ROLL_REF", "V2_REF", "V3_REF", "CRPIX1", "PC1_1",
                    "S_REGION", "VPARITY", "V3I_YANG", "PA_APER"):
            assert key in s, key
        assert s["CTYPE1"] == "RA---TAN" and s["CRVAL1"] == s["RA_REF"]


def test_references_resolve_and_match_data(field):
    store = CrdsCache(field.store_dir)
    assert store.context == field.context
    types = {"mask", "saturation", "superbias", "linearity", "dark", "gain", "readnoise",
             "flat", "photom", "area"}
    for uncal in field.uncal_files:
        params = parameters_from_file(uncal)
        sci_shape = fits.getdata(uncal, "SCI").shape
        for reftype in sorted(types):
            path = store.get_reference_file(params, reftype)
            with fits.open(path) as hdul:
                h = hdul[0].header
                assert h["REFTYPE"] == reftype.upper() and h["PEDIGREE"] == "SIMULATION"
                assert h["DETECTOR"] == params["DETECTOR"] and h["USEAFTER"].count("T") == 1
                ext = hdul[1]
                if reftype != "photom":
                    slices = check_reference_matches(h, params, ext.data.shape, sci_shape,
                                                     name=Path(path).name)
                    assert slices == (slice(0, 64), slice(0, 64))
        assert store.get_reference_file(params, "ipc") == "N/A"
        assert store.get_reference_file(params, "pars-jumpstep") == "N/A"


def test_reference_layouts(field):
    store = CrdsCache(field.store_dir)
    params = parameters_from_file(field.uncal_files[0])

    def hdul(reftype):
        return fits.open(store.get_reference_file(params, reftype))

    with hdul("mask") as h:
        dq = h["DQ"].data
        assert dq.dtype.newbyteorder("=") == np.uint32 and h[0].header["DATAMODL"] == "MaskModel"
        border = np.ones((64, 64), bool)
        border[4:-4, 4:-4] = False
        assert np.array_equal((dq & DQ["REFERENCE_PIXEL"]) != 0, border)
        assert "REFERENCE_PIXEL" in list(h["DQ_DEF"].data["NAME"])
        assert int(h["DQ_DEF"].data["VALUE"][-1]) == 2**31
    with hdul("linearity") as h:
        coeffs = h["COEFFS"].data
        assert coeffs.shape == (4, 64, 64) and coeffs.dtype.newbyteorder("=") == np.float32
    with hdul("dark") as h:
        assert h["SCI"].data.shape == (4, 64, 64)
        assert (h[0].header["NGROUPS"], h[0].header["NFRAMES"], h[0].header["GROUPGAP"]) == (
            4, 1, 0)
        sci = h["SCI"].data
        assert np.all(np.diff(sci, axis=0) >= 0)  # cumulative
    with hdul("saturation") as h:
        assert h[0].header["DATAMODL"] == "SaturationModel"
    with hdul("gain") as h:
        assert h["SCI"].header["BUNIT"] == "ELECTRONS/DN"
    with hdul("photom") as h:
        tab = h["PHOTOM"].data
        assert set(tab.columns.names) == {"filter", "pupil", "photmjsr", "uncertainty"}
        row = tab[(tab["filter"] == "F200W") & (tab["pupil"] == "CLEAR")]
        assert len(row) == 1 and h[0].header["PIXAR_SR"] == pytest.approx(2.2588e-14, rel=1e-3)
    truth = fits.getdata(field.truth_files[0], "AREA")
    with hdul("area") as h:
        # the relative pixel area of the distorted detector (the truth's AREA)
        area = h["SCI"].data
        np.testing.assert_array_equal(area, truth)
        assert "PIXAR_A2" in h[0].header and area.std() > 1e-3
        assert 0.9 < area.min() and area.max() < 1.1
    with hdul("flat") as h:
        # the flat flattens the sky: pixel response times relative area (1 on reference pixels)
        flat = h["SCI"].data
        border = np.zeros(flat.shape, bool)
        border[:4], border[-4:], border[:, :4], border[:, -4:] = True, True, True, True
        assert np.all(flat[border] == 1.0)
        qe = flat[~border] / truth[~border]
        assert abs(np.median(qe) - 1) < 0.02 and np.percentile(np.abs(qe - 1), 99) < 0.1


@pytest.mark.filterwarnings("ignore::astropy.wcs.FITSFixedWarning")
def test_pointing_truth_matches_headers(field):
    pointing = Table.read(field.pointing, format="ascii.ecsv")
    assert len(pointing) == 3
    err = np.hypot(pointing["error_x"], pointing["error_y"])
    assert np.all((err >= 0.1) & (err <= 0.5)) and np.all(np.abs(pointing["roll_error"]) <= 0.01)
    sources = Table.read(field.sources, format="ascii.ecsv")
    store = CrdsCache(field.store_dir)
    positions = {}
    for uncal, truth in zip(field.uncal_files, field.truth_files):
        nominal = WCS(fits.getheader(uncal, "SCI"), naxis=2)
        tp = fits.getheader(truth)
        true = tan_wcs((tp["RA_REF"], tp["DEC_REF"]), nominal.wcs.crpix, tp["ROLL_REF"])
        src = Table.read(truth, hdu="SOURCES")
        # the header TAN WCSs are the distortion-free focal plane: the sources' detector
        # positions, carried through the distortion reference, land where they put them
        ideal = _ideal_pixels(store, uncal)
        xn, yn = nominal.wcs_world2pix(sources["ra"], sources["dec"], 0)
        xt, yt = true.wcs_world2pix(sources["ra"], sources["dec"], 0)
        near = (np.abs(src["x"] - 31.5) < 64) & (np.abs(src["y"] - 31.5) < 64)
        for (x, y), (ex, ey) in (((src["x_nominal"], src["y_nominal"]), (xn, yn)),
                                 ((src["x"], src["y"]), (xt, yt))):
            ix, iy = ideal(x[near], y[near])
            # V2/V3 are spherical angles about V1 (~450" away), TAN a projection about the
            # detector: they differ in second order, by ~(450"/206265)^2 = 5e-6 of the
            # distance from the centre (< 100 px here): < 5e-4 px
            np.testing.assert_allclose(ix, ex[near], atol=1e-3)
            np.testing.assert_allclose(iy, ey[near], atol=1e-3)
        # the true WCS in the truth's RATE header (a TAN-SIP fit to the true gWCS)
        xs, ys = WCS(fits.getheader(truth, "RATE")).all_world2pix(sources["ra"][near],
                                                                   sources["dec"][near], 0)
        np.testing.assert_allclose(xs, src["x"][near], atol=1e-3)
        np.testing.assert_allclose(ys, src["y"][near], atol=1e-3)
        exp = fits.getheader(truth)["EXPOSURE"]
        row = pointing[pointing["exposure"] == exp][0]
        # the rendered scene sits at nominal position + pointing error, plus a rotation by the
        # roll error about the boresight (RA_V1/DEC_V1)
        sci = fits.getheader(uncal, "SCI")
        bx, by = nominal.wcs_world2pix(sci["RA_V1"], sci["DEC_V1"], 0)
        moved = np.hypot(xt - xn - row["error_x"], yt - yn - row["error_y"])
        lever = np.hypot(xn - bx, yn - by) * np.deg2rad(abs(row["roll_error"]))
        assert np.all(moved <= 1.01 * lever + 1e-3)
        assert np.max(moved) > 0.5 * np.max(lever)  # the roll error is really there
        positions[(exp, uncal.name.split("_")[3])] = (xn, yn)
    # nominal dithers: exposure k moves the scene by (dither_k - dither_1) pixels
    for det in ("nrca1", "nrcb2"):
        x1, y1 = positions[(1, det)]
        for exp in (2, 3):
            xk, yk = positions[(exp, det)]
            row = pointing[pointing["exposure"] == exp][0]
            np.testing.assert_allclose(xk - x1, row["dither_x"] - pointing["dither_x"][0],
                                       atol=2e-3)
            np.testing.assert_allclose(yk - y1, row["dither_y"] - pointing["dither_y"][0],
                                       atol=2e-3)


def _ideal_pixels(store, uncal):
    """Detector pixels -> distortion-free (header TAN) pixels, through the CRDS distortion
    and filteroffset references and the SCI header's V2_REF/V3_REF."""
    from jwpipe.algorithms.imaging_wcs import detector_to_v2v3
    from jwpipe.datamodels import DistortionModel, FilteroffsetModel

    params = parameters_from_file(uncal)
    sci = fits.getheader(uncal, "SCI")
    dist = DistortionModel(store.get_reference_file(params, "distortion")).model
    offset = FilteroffsetModel(store.get_reference_file(params, "filteroffset")).find_offset(
        params["FILTER"], params["PUPIL"])
    det2v2v3 = detector_to_v2v3(dist, offset)
    c1, c2, scale = sci["CRPIX1"] - 1, sci["CRPIX2"] - 1, sci["CDELT1"] * 3600

    def ideal(x, y):
        v2, v3 = det2v2v3(np.asarray(x, float), np.asarray(y, float))
        return c1 - (v2 - sci["V2_REF"]) / scale, c2 + (v3 - sci["V3_REF"]) / scale

    return ideal


def test_truth_rate_holds_catalogue_fluxes(tmp_path):
    res = simulate_field(tmp_path, n_exposures=1, size=128, ngroups=2, seed=9, n_stars=16,
                         n_galaxies=0, background=0.0)
    sources = Table.read(res.sources, format="ascii.ecsv")
    store = CrdsCache(res.store_dir)
    uncal, truth = res.uncal_files[0], res.truth_files[0]
    rate = fits.getdata(truth, "RATE").astype(np.float64)
    params = parameters_from_file(uncal)
    # the flat reference is the pixel response times the relative pixel area; sources are
    # counted per detector pixel, so the scene is the rate over the response alone
    flat = fits.getdata(store.get_reference_file(params, "flat"))
    flat = flat / fits.getdata(store.get_reference_file(params, "area"))
    src = Table.read(truth, hdu="SOURCES")
    scene = np.divide(rate, flat, out=np.zeros_like(rate), where=flat > 0)
    checked = 0
    for s, pos in zip(sources, src):
        x, y = pos["x"], pos["y"]
        box = np.s_[int(y) - 8 : int(y) + 9, int(x) - 8 : int(x) + 9]
        # fully inside the light-sensitive area, no neighbour within 10 PSF sigma of the box
        if not (12 <= x <= 115 and 12 <= y <= 115) or np.sort(np.hypot(src["x"] - x,
                                                                     src["y"] - y))[1] < 17:
            continue
        if (flat[box] == 0).any():
            continue
        assert scene[box].sum() == pytest.approx(s["rate_dn_s"], rel=1e-4)
        yy, xx = np.mgrid[box]
        assert (scene[box] * xx).sum() / scene[box].sum() == pytest.approx(x, abs=0.01)
        assert (scene[box] * yy).sum() / scene[box].sum() == pytest.approx(y, abs=0.01)
        checked += 1
    assert checked >= 3


def test_associations(field):
    asn3 = json.loads(field.asn_image3.read_text())
    for key in ("asn_type", "asn_rule", "asn_id", "program", "target", "asn_pool",
                "version_id", "code_version", "degraded_status", "constraints", "products"):
        assert key in asn3
    assert asn3["asn_type"] == "image3" and asn3["program"] == "01234"
    product = asn3["products"][0]
    assert product["name"] == "jw01234-o001_t001_nircam_clear-f200w"
    assert [m["expname"] for m in product["members"]] == [
        p.name.replace("_uncal", "_cal") for p in field.uncal_files]
    assert {m["exptype"] for m in product["members"]} == {"science"}
    assert len(field.asn_image2) == 6
    asn2 = json.loads(field.asn_image2[0].read_text())
    assert asn2["asn_type"] == "image2"
    assert asn2["products"][0]["name"] == field.uncal_files[0].name.replace("_uncal.fits", "")
    assert asn2["products"][0]["members"][0]["expname"].endswith("_rate.fits")


def _tree(path: Path) -> dict[str, bytes]:
    """Every file's bytes; the CRDS cache's ``last_synced`` time (a wall-clock stamp, as crds
    writes it) is blanked."""
    out = {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
           if p.is_file()}
    for key in [k for k in out if k.endswith("server_config")]:
        out[key] = re.sub(rb"'last_synced': '[^']*'", b"", out[key])
    return out


def test_deterministic_for_a_seed(tmp_path):
    kwargs = {"n_exposures": 2, "size": 32, "ngroups": 3, "cr_rate": 1e-3}
    simulate_field(tmp_path / "a", seed=7, **kwargs)
    simulate_field(tmp_path / "b", seed=7, **kwargs)
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    assert a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == []
    c = simulate_field(tmp_path / "c", seed=8, **kwargs)
    data_a = fits.getdata(tmp_path / "a" / c.uncal_files[0].name, "SCI")
    assert not np.array_equal(data_a, fits.getdata(c.uncal_files[0], "SCI"))


def test_existing_store_needs_overwrite_and_bad_options(tmp_path):
    simulate_field(tmp_path, n_exposures=1, size=32, ngroups=2)
    with pytest.raises(ValidationError, match="overwrite"):
        simulate_field(tmp_path, n_exposures=1, size=32, ngroups=2)
    res = simulate_field(tmp_path, n_exposures=1, size=32, ngroups=2, seed=2, overwrite=True)
    nircam = tmp_path / "refs" / "references" / "jwst" / "nircam"
    # ten per detector plus APCORR; ASDF: DISTORTION and FILTEROFFSET per detector, and
    # ABVEGAOFFSET
    assert len(list(nircam.glob("*.fits"))) == 11
    assert len(list(nircam.glob("*.asdf"))) == 3
    assert CrdsCache(res.store_dir).context == res.context
    with pytest.raises(ValidationError, match="readout pattern 'FAST'"):
        simulate_field(tmp_path / "x", readpatt="fast")
    with pytest.raises(ValidationError, match="unknown option"):
        simulate_field(tmp_path / "x", colour="red")
    with pytest.raises(ValidationError, match="size must be"):
        simulate_field(tmp_path / "x", size=4096)


def test_cli_simulate(tmp_path, capsys):
    rc = cli_main(["simulate", str(tmp_path / "sim"), "--exposures", "2", "--size", "32",
                   "--ngroups", "3", "--detectors", "nrca3", "--seed", "4"])
    out = capsys.readouterr().out
    assert rc == 0 and "wrote 2 exposures" in out and "context jwst_0001.pmap" in out
    assert len(list((tmp_path / "sim").glob("*nrca3_uncal.fits"))) == 2
    rc = cli_main(["simulate", str(tmp_path / "sim2"), "--detectors", "mirimage"])
    assert rc == 1 and "not supported" in capsys.readouterr().err


def test_simulated_cache_is_read_by_crds_itself(field):
    """The crds client's own API (not jwpipe's wrapper) selects the simulated files."""
    import os

    from jwpipe.references import crds_parameters

    env = {"CRDS_PATH": str(field.store_dir), "CRDS_MODE": "local",
           "CRDS_READONLY_CACHE": "1"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        from crds.core import heavy_client, utils

        utils.clear_function_caches()
        params = crds_parameters(parameters_from_file(field.uncal_files[0]))
        best = heavy_client.hv_best_references("jwst_0001.pmap", params,
                                               include=["dark", "gain", "ipc"])
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
        utils.clear_function_caches()
    assert best["dark"].startswith("jwst_nircam_dark_") and best["ipc"] == "NOT FOUND n/a"
    assert (field.store_dir / "references" / "jwst" / "nircam" / best["gain"]).is_file()
