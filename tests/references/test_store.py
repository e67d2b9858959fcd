"""Reference-store selection, index building, subarray cut-outs and mismatch checks."""

from __future__ import annotations

import os
import time
from pathlib import Path

import asdf
import numpy as np
import pytest
import yaml
from astropy.io import fits

from jwpipe.cli.main import main as cli_main
from jwpipe.errors import ReferenceFileError
from jwpipe.references import (
    ReferenceStore,
    build_index,
    check_reference_matches,
    get_store,
    read_index,
    subarray_slices,
)

SCI = {
    "INSTRUME": "NIRCAM",
    "DETECTOR": "NRCA1",
    "READPATT": "RAPID",
    "SUBARRAY": "FULL",
    "FILTER": "F200W",
    "PUPIL": "CLEAR",
    "EXP_TYPE": "NRC_IMAGE",
    "DATE-OBS": "2023-06-01",
    "TIME-OBS": "12:00:00.000",
}


def write_ref(directory: Path, name: str, reftype: str, useafter: str, **keys) -> Path:
    header = fits.Header()
    header["REFTYPE"] = reftype.upper()
    header["USEAFTER"] = useafter
    header["TELESCOP"] = "JWST"
    header["INSTRUME"] = "NIRCAM"
    for key, value in keys.items():
        header[key.replace("__", "-")] = value
    hdul = fits.HDUList([fits.PrimaryHDU(header=header),
                         fits.ImageHDU(np.zeros((4, 4), np.float32), name="SCI")])
    path = directory / name
    hdul.writeto(path)
    return path


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    d = tmp_path / "refs"
    d.mkdir()
    write_ref(d, "dark_old.fits", "dark", "2022-01-01T00:00:00", DETECTOR="NRCA1",
              READPATT="RAPID")
    write_ref(d, "dark_new.fits", "dark", "2023-01-01T00:00:00", DETECTOR="NRCA1",
              READPATT="RAPID")
    write_ref(d, "dark_future.fits", "dark", "2024-01-01T00:00:00", DETECTOR="NRCA1",
              READPATT="RAPID")
    write_ref(d, "dark_a2.fits", "dark", "2023-02-01T00:00:00", DETECTOR="NRCA2",
              READPATT="RAPID")
    write_ref(d, "dark_bright.fits", "dark", "2023-03-01T00:00:00", DETECTOR="NRCA1",
              READPATT="BRIGHT2")
    write_ref(d, "flat_f200w.fits", "flat", "2022-01-01T00:00:00", DETECTOR="NRCA1",
              FILTER="F200W", PUPIL="CLEAR")
    write_ref(d, "flat_f150w.fits", "flat", "2022-06-01T00:00:00", DETECTOR="NRCA1",
              FILTER="F150W", PUPIL="CLEAR")
    write_ref(d, "readnoise_pattern.fits", "readnoise", "2022-01-01T00:00:00",
              DETECTOR="NRCA1", READPATT="ANY", P_READPA="RAPID | BRIGHT1 |")
    write_ref(d, "gain_generic.fits", "gain", "2022-01-01T00:00:00", DETECTOR="N/A")
    write_ref(d, "gain_a1.fits", "gain", "2021-01-01T00:00:00", DETECTOR="NRCA1")
    write_ref(d, "mask_full.fits", "mask", "2022-01-01T00:00:00", DETECTOR="NRCA1",
              SUBARRAY="FULL")
    write_ref(d, "mask_sub.fits", "mask", "2022-01-01T00:00:00", DETECTOR="NRCA1",
              SUBARRAY="SUB64P")
    tree = {
        "meta": {"reftype": "pars-jumpstep", "useafter": "2022-01-01T00:00:00",
                 "instrument": {"name": "NIRCAM", "detector": "NRCA1"}},
        "class": "jwpipe.steps.JumpStep", "name": "jump",
        "parameters": {"rejection_threshold": 5.0},
    }
    asdf.AsdfFile(tree).write_to(d / "pars_jump.asdf")
    build_index(d, name="teststore",
                not_applicable=[{"reftype": "ipc", "selectors": {"INSTRUME": ["NIRCAM"]}}])
    return d


def test_useafter_picks_latest_not_after_observation(store_dir):
    store = ReferenceStore(store_dir)
    assert store.get_reference_file(SCI, "dark") == str(store_dir / "dark_new.fits")
    early = SCI | {"DATE-OBS": "2022-07-01"}
    assert store.get_reference_file(early, "dark").endswith("dark_old.fits")
    late = SCI | {"DATE-OBS": "2025-01-01"}
    assert store.get_reference_file(late, "dark").endswith("dark_future.fits")
    # the TIME-OBS matters on the USEAFTER day itself
    same_day = SCI | {"DATE-OBS": "2024-01-01", "TIME-OBS": "00:00:00"}
    assert store.get_reference_file(same_day, "dark").endswith("dark_future.fits")


def test_selectors_detector_readpatt_filter(store_dir):
    store = ReferenceStore(store_dir)
    assert store.get_reference_file(SCI | {"DETECTOR": "nrca2"}, "dark").endswith("dark_a2.fits")
    assert store.get_reference_file(SCI | {"READPATT": "BRIGHT2"}, "dark").endswith(
        "dark_bright.fits")
    assert store.get_reference_file(SCI, "flat").endswith("flat_f200w.fits")
    assert store.get_reference_file(SCI | {"FILTER": "F150W"}, "flat").endswith("flat_f150w.fits")
    with pytest.raises(ReferenceFileError, match=r"'flat'.*FILTER=F444W"):
        store.get_reference_file(SCI | {"FILTER": "F444W"}, "flat")


def test_pattern_keyword_means_any_of(store_dir):
    store = ReferenceStore(store_dir)
    entry = next(e for e in store.entries("readnoise"))
    assert entry.selectors["READPATT"] == ("RAPID", "BRIGHT1")
    assert store.get_reference_file(SCI, "readnoise").endswith("readnoise_pattern.fits")
    assert store.get_reference_file(SCI | {"READPATT": "BRIGHT1"}, "readnoise")
    with pytest.raises(ReferenceFileError, match="READPATT=DEEP8"):
        store.get_reference_file(SCI | {"READPATT": "DEEP8"}, "readnoise")


def test_exact_match_beats_wildcard_and_full_covers_subarray(store_dir):
    store = ReferenceStore(store_dir)
    # gain_a1 is older but names the detector; the N/A-detector file is only a wildcard
    assert store.get_reference_file(SCI, "gain").endswith("gain_a1.fits")
    assert store.get_reference_file(SCI | {"DETECTOR": "NRCB4"}, "gain").endswith(
        "gain_generic.fits")
    assert store.get_reference_file(SCI | {"SUBARRAY": "SUB64P"}, "mask").endswith(
        "mask_sub.fits")
    assert store.get_reference_file(SCI | {"SUBARRAY": "SUB160"}, "mask").endswith(
        "mask_full.fits")
    assert store.get_reference_file(SCI, "mask").endswith("mask_full.fits")


def test_not_applicable_rule_and_optional_pars(store_dir):
    store = ReferenceStore(store_dir)
    assert store.get_reference_file(SCI, "ipc") == "N/A"
    assert store.get_reference_file(SCI, "pars-jumpstep").endswith("pars_jump.asdf")
    assert store.get_reference_file(SCI | {"DETECTOR": "NRCB1"}, "pars-jumpstep") == "N/A"
    assert store.get_reference_file(SCI, "pars-rampfitstep") == "N/A"
    # N/A rules survive an index rebuild
    build_index(store_dir)
    assert ReferenceStore(store_dir).get_reference_file(SCI, "ipc") == "N/A"


def test_missing_reference_is_an_error(store_dir):
    store = ReferenceStore(store_dir)
    with pytest.raises(ReferenceFileError, match="no reference file of type 'linearity'"):
        store.get_reference_file(SCI, "linearity")
    with pytest.raises(ReferenceFileError, match=r"USEAFTER 2022-01-01"):
        store.get_reference_file(SCI | {"DATE-OBS": "2021-06-01"}, "dark")
    with pytest.raises(ReferenceFileError, match="DETECTOR=NRCB3"):
        store.get_reference_file(SCI | {"DETECTOR": "NRCB3"}, "dark")


def test_explain_lists_candidates(store_dir):
    text = ReferenceStore(store_dir).explain(SCI, "dark")
    assert "* dark_new.fits" in text
    assert "USEAFTER after the observation" in text  # dark_future
    assert "DETECTOR=NRCA2 vs NRCA1: MISMATCH" in text
    assert text.rstrip().endswith(str(store_dir / "dark_new.fits"))


def test_context_changes_when_a_file_changes(store_dir):
    before = ReferenceStore(store_dir).context
    assert before.startswith("teststore_")
    build_index(store_dir)
    assert ReferenceStore(store_dir).context == before  # rebuild without change: same context
    path = store_dir / "dark_new.fits"
    with fits.open(path, mode="update") as hdul:
        hdul["SCI"].data[0, 0] = 1.0
    # stale index: the changed file is refused rather than silently used
    with pytest.raises(ReferenceFileError, match="rebuild the index"):
        ReferenceStore(store_dir).get_reference_file(SCI, "dark")
    build_index(store_dir)
    after = ReferenceStore(store_dir)
    assert after.context != before
    assert after.get_reference_file(SCI, "dark") == str(path)


def test_get_store_env_and_cache(store_dir, monkeypatch):
    assert get_store() is None
    monkeypatch.setenv("JWPIPE_REFS", str(store_dir))
    first = get_store()
    assert isinstance(first, ReferenceStore)
    assert get_store(str(store_dir)) is first
    time.sleep(0.01)
    build_index(store_dir, name="renamed")
    os.utime(store_dir / "index.yaml", ns=(time.time_ns(), time.time_ns()))
    second = get_store()
    assert second is not first and second.context.startswith("renamed_")


def test_index_is_readable_yaml(store_dir):
    data = yaml.safe_load((store_dir / "index.yaml").read_text())
    assert data["format"] == "jwpipe-refs-index-1"
    assert data["name"] == "teststore"
    files = {e["file"] for e in data["references"]}
    assert {"dark_new.fits", "pars_jump.asdf", "N/A"} <= files
    assert len(read_index(store_dir / "index.yaml").entries) == len(data["references"])


def test_bad_index_and_bad_reference(tmp_path):
    with pytest.raises(ReferenceFileError, match="index not found"):
        ReferenceStore(tmp_path)
    (tmp_path / "index.yaml").write_text("references: [ {file: a.fits} ]\n")
    with pytest.raises(ReferenceFileError, match=r"references\[0\].*reftype"):
        ReferenceStore(tmp_path)
    with pytest.raises(ReferenceFileError, match="references"):
        build_index(tmp_path)  # a broken index is reported, not overwritten
    (tmp_path / "index.yaml").unlink()
    write_ref(tmp_path, "bad.fits", "dark", "sometime")
    with pytest.raises(ReferenceFileError, match=r"bad\.fits.*USEAFTER 'sometime'"):
        build_index(tmp_path)


def test_subarray_slices_one_based():
    ref = {"SUBSTRT1": 1, "SUBSTRT2": 1, "SUBSIZE1": 2048, "SUBSIZE2": 2048}
    sci = {"SUBSTRT1": 1025, "SUBSTRT2": 17, "SUBSIZE1": 64, "SUBSIZE2": 32}
    ys, xs = subarray_slices(ref, sci, (2048, 2048), (3, 32, 64))
    assert (ys, xs) == (slice(16, 48), slice(1024, 1088))
    full = np.arange(2048 * 2048).reshape(2048, 2048)
    assert full[ys, xs].shape == (32, 64)
    assert full[ys, xs][0, 0] == 16 * 2048 + 1024
    # no keywords on a full-frame reference: full frame is assumed
    assert subarray_slices({}, sci, (2048, 2048), None) == (ys, xs)
    # a subarray reference cut for a smaller science region inside it
    sub_ref = {"SUBSTRT1": 1001, "SUBSTRT2": 1, "SUBSIZE1": 200, "SUBSIZE2": 100}
    assert subarray_slices(sub_ref, sci, (100, 200)) == (slice(16, 48), slice(24, 88))


def test_check_reference_matches_detects_mismatch():
    sci = SCI | {"SUBSTRT1": 1, "SUBSTRT2": 1, "SUBSIZE1": 64, "SUBSIZE2": 64}
    ref = fits.Header({"INSTRUME": "NIRCAM", "DETECTOR": "NRCA1", "SUBSTRT1": 1,
                       "SUBSTRT2": 1, "SUBSIZE1": 128, "SUBSIZE2": 128})
    assert check_reference_matches(ref, sci, (128, 128), (64, 64)) == (slice(0, 64),
                                                                        slice(0, 64))
    with pytest.raises(ReferenceFileError, match=r"mask\.fits: DETECTOR NRCA2 .*NRCA1"):
        check_reference_matches(dict(ref) | {"DETECTOR": "NRCA2"}, sci, (128, 128), (64, 64),
                                name="mask.fits")
    with pytest.raises(ReferenceFileError, match="INSTRUME NIRISS"):
        check_reference_matches(dict(ref) | {"INSTRUME": "NIRISS"}, sci, (128, 128), (64, 64))
    small = dict(ref) | {"SUBSIZE1": 32, "SUBSIZE2": 32}
    with pytest.raises(ReferenceFileError, match="does not cover"):
        check_reference_matches(small, sci, (32, 32), (64, 64))
    with pytest.raises(ReferenceFileError, match="disagree with the array shape"):
        check_reference_matches(ref, sci, (100, 128), (64, 64))
    # pattern detector lists are honoured
    multi = dict(ref) | {"DETECTOR": "MULTIPLE", "P_DETECT": "NRCA1|NRCA2|"}
    check_reference_matches(multi, sci, (128, 128), (64, 64))
    with pytest.raises(ReferenceFileError, match=r"NRCA1\|NRCA2 does not .* NRCB1"):
        check_reference_matches(multi, sci | {"DETECTOR": "NRCB1"}, (128, 128), (64, 64))


def test_cli_show_and_index(store_dir, tmp_path, capsys):
    dataset = tmp_path / "data.fits"
    fits.PrimaryHDU(header=fits.Header(SCI)).writeto(dataset)
    assert cli_main(["refs", "index", str(store_dir)]) == 0
    assert "context teststore_" in capsys.readouterr().out
    rc = cli_main(["refs", "show", str(dataset), "--refs", str(store_dir), "--reftype", "dark",
                   "--reftype", "ipc"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "* dark_new.fits" in out and "result: N/A" in out
    rc = cli_main(["refs", "show", str(dataset), "--refs", str(store_dir), "--brief"])
    out = capsys.readouterr().out
    assert rc == 0
    assert f"dark: {store_dir / 'dark_new.fits'}" in out and "pars-jumpstep: " in out
    other = tmp_path / "f444w.fits"
    fits.PrimaryHDU(header=fits.Header(SCI | {"FILTER": "F444W"})).writeto(other)
    rc = cli_main(["refs", "show", str(other), "--refs", str(store_dir), "--brief"])
    assert rc == 1
    assert "flat: ERROR: no 'flat' reference" in capsys.readouterr().out
    assert cli_main(["refs", "show", str(dataset)]) == 1
    assert "no reference store" in capsys.readouterr().err


def test_readers_never_see_a_partial_index_during_rebuilds(store_dir):
    import threading

    errors: list[Exception] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                ReferenceStore(store_dir, verify=False).get_reference_file(SCI, "dark")
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for t in readers:
        t.start()
    try:
        for i in range(15):
            build_index(store_dir, name=f"rebuild{i % 2}")
    finally:
        stop.set()
        for t in readers:
            t.join()
    assert errors == []
    assert not [p for p in store_dir.iterdir() if p.name.startswith(".index.yaml")]


def test_dataset_without_date_accepts_every_useafter(store_dir):
    store = ReferenceStore(store_dir)
    undated = {k: v for k, v in SCI.items() if k not in ("DATE-OBS", "TIME-OBS")}
    assert store.get_reference_file(undated, "dark").endswith("dark_future.fits")
    assert "no DATE-OBS" in store.explain(undated, "dark")
    with pytest.raises(ReferenceFileError, match="DATE-OBS"):
        store.get_reference_file(SCI | {"DATE-OBS": "yesterday"}, "dark")
