"""Image3 on multi-detector NIRCam pointings (issue 17, point 2).

The simulator's multi-detector mode (``detectors="sw"``: the 8 short-wave detectors of one
pointing) with 2 and 4 dithers, small detectors for speed: the whole Image3 pipeline makes a
mosaic, sky matching works per exposure group (the 8 detectors of one exposure share one
level), and a pointing whose detectors overlap no other exposure is warned about, falls back
and records it instead of stopping.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
from test_image_simdata import move_north, simulate_rates

from jwpipe import datamodels
from jwpipe.associations import asn_from_list, write_asn
from jwpipe.steps import OutlierDetectionStep, SkyMatchStep, TweakRegStep

SIZE = 48


def _calibrate(root: Path, n_exposures: int, seed: int) -> tuple[list[Path], Path]:
    """Simulate ``n_exposures`` 8-detector pointings and run Image2 on every rate file."""
    from jwpipe.pipeline import Image2Pipeline

    sim = simulate_rates(root / "sim", n_exposures=n_exposures, size=SIZE, seed=seed,
                         detectors="sw", n_stars=40, n_galaxies=4)
    cal_dir = root / "cal"
    old = os.environ.get("JWPIPE_REFS")
    os.environ["JWPIPE_REFS"] = str(sim.sim.store_dir)
    try:
        cals = []
        for rate in sim.rates:
            Image2Pipeline.call(str(rate), save_results=True, output_dir=str(cal_dir))
            cals.append(cal_dir / rate.name.replace("_rate", "_cal"))
    finally:
        if old is None:
            os.environ.pop("JWPIPE_REFS", None)
        else:
            os.environ["JWPIPE_REFS"] = old
    return cals, Path(sim.sim.store_dir)


@pytest.fixture(scope="module", params=[2, 4], ids=["2dithers", "4dithers"])
def pointings(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"multidet{request.param}")
    cals, store = _calibrate(root, request.param, seed=20 + request.param)
    return {"cals": cals, "store": store, "root": root, "n": request.param}


def _groups(cals: list[Path]) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for c in cals:
        out.setdefault(c.name.rsplit("_", 2)[0], []).append(c)
    return out


def test_simulator_makes_eight_detector_pointings(pointings):
    groups = _groups(pointings["cals"])
    assert len(groups) == pointings["n"]
    assert all(len(v) == 8 for v in groups.values())
    dets = {c.name.rsplit("_", 2)[1] for c in pointings["cals"]}
    assert dets == {f"nrc{m}{k}" for m in "ab" for k in range(1, 5)}


def test_image3_mosaic_from_multidetector_pointings(pointings, tmp_path):
    from jwpipe.pipeline import Image3Pipeline

    asn = asn_from_list([str(c.relative_to(c.parent)) for c in pointings["cals"]],
                        product_name="jw01234-o001_t001_nircam_clear-f200w")
    path = pointings["cals"][0].parent / f"image3_{pointings['n']}_asn.json"
    write_asn(asn, path)
    os.environ["JWPIPE_REFS"] = str(pointings["store"])
    try:
        Image3Pipeline.call(str(path), output_dir=str(tmp_path), save_results=True,
                            steps={"skymatch": {"subtract": True}})
    finally:
        os.environ.pop("JWPIPE_REFS", None)
    mosaic = tmp_path / "jw01234-o001_t001_nircam_clear-f200w_i2d.fits"
    assert mosaic.is_file()
    with datamodels.open(str(mosaic)) as m:
        covered = np.isfinite(m.data) & (m.wht > 0)
        # 8 detectors of SIZE^2 pixels, less the reference border, cover at least 8 such areas
        assert covered.sum() > 8 * (SIZE - 8) ** 2 * 0.9
    crfs = sorted(tmp_path.glob("*_crf.fits"))
    assert len(crfs) == len(pointings["cals"])
    levels: dict[str, set[float]] = {}
    for crf in crfs:
        with datamodels.open(str(crf)) as m:
            info = m.extra["skymatch"]
            assert info["overlaps_other_groups"] is True
            levels.setdefault(info["group"], set()).add(m.meta.background.level)
    # one level per exposure: the 8 detectors of an exposure share it
    assert len(levels) == pointings["n"]
    assert all(len(v) == 1 for v in levels.values())


def test_skymatch_groups_share_one_level(pointings):
    out = SkyMatchStep.call([str(c) for c in pointings["cals"]], skymethod="match")
    by_group: dict[str, set[float]] = {}
    for model in out:
        by_group.setdefault(model.extra["skymatch"]["group"], set()).add(
            model.meta.background.level)
    assert len(by_group) == pointings["n"]
    assert all(len(v) == 1 for v in by_group.values())
    assert min(min(v) for v in by_group.values()) == 0.0  # match_down


def test_lone_pointing_warns_falls_back_and_records(pointings, tmp_path, caplog):
    """One exposure's detectors moved 36 arcsec away overlap nothing: skymatch, tweakreg and
    outlier_detection warn, keep going and record it."""
    groups = _groups(pointings["cals"])
    moved = []
    lone = sorted(groups)[-1]
    for cal in groups[lone]:
        with datamodels.open(str(cal)) as m:
            move_north(m, 0.01)
            moved.append(Path(m.save(tmp_path / cal.name)))
    others = [str(c) for g, cs in groups.items() if g != lone for c in cs]
    inputs = others + [str(p) for p in moved]
    with caplog.at_level(logging.WARNING, logger="jwpipe"):
        out = SkyMatchStep.call(inputs, skymethod="match")
    isolated = [m for m in out if not m.extra["skymatch"]["overlaps_other_groups"]]
    if pointings["n"] == 2:  # then the remaining exposure is alone too
        assert len(isolated) == 16
    else:
        assert len(isolated) == 8
        assert {m.meta.filename for m in isolated} == {p.name for p in moved}
    assert all(m.meta.background.level == 0.0 for m in isolated)
    assert "overlap no other group" in caplog.text

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="jwpipe"):
        aligned = TweakRegStep.call(inputs, minobj=3)
    skipped = [m for m in aligned if "skipped" in m.extra["tweakreg"]]
    if pointings["n"] == 2:  # no two groups overlap: nothing aligned
        assert len(skipped) == 16 and "no two exposure groups overlap" in caplog.text
    else:  # the 3 overlapping pointings are aligned, the moved one is left as it was
        assert {m.meta.filename for m in skipped} == {p.name for p in moved}
        assert all(m.extra["tweakreg"]["skipped"] == "overlaps no aligned exposure group"
                   for m in skipped)
        assert "left unaligned" in caplog.text
        done = [m for m in aligned if "shift_arcsec" in m.extra["tweakreg"]]
        assert len(done) == 24

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="jwpipe"):
        flagged = OutlierDetectionStep.call(inputs)
    lonely = [m for m in flagged
              if m.extra["outlier_detection"].get("overlaps_other_exposures") is False]
    assert len(lonely) == (16 if pointings["n"] == 2 else 8)
    assert all(m.extra["outlier_detection"]["n_outliers"] == 0 for m in lonely)
    assert "overlap no other exposure" in caplog.text


def test_single_pointing_of_several_detectors_makes_a_mosaic(pointings, tmp_path, caplog):
    """The case of most real multi-detector image3 associations: the detectors of one
    pointing, no dither. Nothing to match or align between exposures: the mosaic is made."""
    from jwpipe.pipeline import Image3Pipeline

    if pointings["n"] != 2:
        pytest.skip("one pointing is enough")
    one = _groups(pointings["cals"])[sorted(_groups(pointings["cals"]))[0]][:4]
    asn = asn_from_list([c.name for c in one], product_name="jw01234-o001_t001_nircam_one")
    path = one[0].parent / "one_pointing_asn.json"
    write_asn(asn, path)
    os.environ["JWPIPE_REFS"] = str(pointings["store"])
    try:
        with caplog.at_level(logging.WARNING, logger="jwpipe"):
            Image3Pipeline.call(str(path), output_dir=str(tmp_path), save_results=True)
    finally:
        os.environ.pop("JWPIPE_REFS", None)
    assert (tmp_path / "jw01234-o001_t001_nircam_one_i2d.fits").is_file()
    assert "tweakreg skipped: only one exposure (group)" in caplog.text
    for crf in tmp_path.glob("*_crf.fits"):
        with datamodels.open(str(crf)) as m:
            assert m.meta.background.level == 0.0
            assert m.extra["outlier_detection"]["overlaps_other_exposures"] is False

