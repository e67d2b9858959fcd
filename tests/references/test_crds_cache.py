"""Selection from a real-format CRDS cache through the crds client, offline and read-only."""

from __future__ import annotations

import ast
import os
import time
from pathlib import Path

import asdf
import numpy as np
import pytest
from astropy.io import fits

from jwpipe.cli.main import main as cli_main
from jwpipe.errors import ReferenceFileError
from jwpipe.references import (
    CrdsCache,
    derive_context,
    install_reference,
    mapping_checksum,
    open_cache,
    rule_from_file,
    write_context,
)
from jwpipe.stpipe import refstore

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
        header[key] = value
    path = directory / name
    fits.HDUList([fits.PrimaryHDU(header=header),
                  fits.ImageHDU(np.zeros((4, 4), np.float32), name="SCI")]).writeto(path)
    return path


def build_cache(root: Path) -> Path:
    """A small cache: darks by date/detector/pattern, a pattern readnoise, N/A ipc, pars."""
    cache = root / "cache"
    src = root / "src"
    src.mkdir(parents=True)
    files = [
        (write_ref(src, "jwst_nircam_dark_0001.fits", "dark", "2022-01-01T00:00:00",
                   DETECTOR="NRCA1", READPATT="RAPID"), ("DETECTOR", "READPATT")),
        (write_ref(src, "jwst_nircam_dark_0002.fits", "dark", "2023-01-01T00:00:00",
                   DETECTOR="NRCA1", READPATT="RAPID"), ("DETECTOR", "READPATT")),
        (write_ref(src, "jwst_nircam_dark_0003.fits", "dark", "2024-01-01T00:00:00",
                   DETECTOR="NRCA1", READPATT="RAPID"), ("DETECTOR", "READPATT")),
        (write_ref(src, "jwst_nircam_dark_0004.fits", "dark", "2023-02-01T00:00:00",
                   DETECTOR="NRCA2", READPATT="RAPID"), ("DETECTOR", "READPATT")),
        (write_ref(src, "jwst_nircam_dark_0005.fits", "dark", "2023-03-01T00:00:00",
                   DETECTOR="NRCA1", READPATT="BRIGHT2"), ("DETECTOR", "READPATT")),
        (write_ref(src, "jwst_nircam_readnoise_0001.fits", "readnoise", "2022-01-01",
                   DETECTOR="NRCA1", READPATT="ANY", P_READPA="RAPID | BRIGHT1 |"),
         ("DETECTOR", "READPATT")),
        (write_ref(src, "jwst_nircam_flat_0001.fits", "flat", "2022-01-01T00:00:00",
                   DETECTOR="NRCA1", FILTER="F200W", PUPIL="CLEAR"),
         ("DETECTOR", "FILTER", "PUPIL")),
    ]
    tree = {
        "meta": {"reftype": "pars-jumpstep", "useafter": "2022-01-01T00:00:00",
                 "instrument": {"name": "NIRCAM", "detector": "NRCA1"}},
        "class": "jwst.jump.jump_step.JumpStep", "name": "jump",
        "parameters": {"rejection_threshold": 5.0},
    }
    pars = src / "jwst_nircam_pars-jumpstep_0001.asdf"
    asdf.AsdfFile(tree).write_to(pars)
    files.append((pars, ("DETECTOR",)))
    rules: dict = {"ipc": "N/A"}
    for path, keys in files:
        install_reference(cache, "NIRCAM", path)
        rule = rule_from_file(path, keys)[1]
        rules.setdefault(rule.reftype, []).append(rule)
    assert write_context(cache, {"NIRCAM": rules}) == "jwst_0001.pmap"
    return cache


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return build_cache(tmp_path)


def _name(path: str) -> str:
    return os.path.basename(path)


def test_selection_follows_crds_rules(cache):
    c = CrdsCache(cache)
    assert c.context == "jwst_0001.pmap"
    # latest USEAFTER not after the observation, for the right detector and pattern
    assert _name(c.get_reference_file(SCI, "dark")) == "jwst_nircam_dark_0002.fits"
    assert _name(c.get_reference_file(SCI | {"DATE-OBS": "2022-06-01"}, "dark")) == \
        "jwst_nircam_dark_0001.fits"
    assert _name(c.get_reference_file(SCI | {"DETECTOR": "NRCA2"}, "dark")) == \
        "jwst_nircam_dark_0004.fits"
    assert _name(c.get_reference_file(SCI | {"READPATT": "BRIGHT2"}, "dark")) == \
        "jwst_nircam_dark_0005.fits"
    # a CRDS pattern value: any of the alternatives
    for patt in ("RAPID", "BRIGHT1"):
        assert _name(c.get_reference_file(SCI | {"READPATT": patt}, "readnoise")) == \
            "jwst_nircam_readnoise_0001.fits"
    with pytest.raises(ReferenceFileError, match="no 'readnoise' reference"):
        c.get_reference_file(SCI | {"READPATT": "DEEP8"}, "readnoise")
    # N/A in the instrument mapping; pars-* optional; datamodel-style META keys accepted
    assert c.get_reference_file(SCI, "ipc") == "N/A"
    assert _name(c.get_reference_file(SCI, "pars-jumpstep")) == \
        "jwst_nircam_pars-jumpstep_0001.asdf"
    assert c.get_reference_file(SCI | {"DETECTOR": "NRCB1"}, "pars-jumpstep") == "N/A"
    assert c.get_reference_file(SCI, "pars-rampfitstep") == "N/A"
    meta = {"meta.instrument.name": "NIRCAM", "meta.instrument.detector": "NRCA1",
            "meta.exposure.readpatt": "RAPID", "meta.observation.date": "2023-06-01",
            "meta.observation.time": "12:00:00"}
    assert _name(c.get_reference_file(meta, "dark")) == "jwst_nircam_dark_0002.fits"
    # a type the context has no rules for is an error naming it
    with pytest.raises(ReferenceFileError, match="no 'gain' reference"):
        c.get_reference_file(SCI, "gain")
    assert c.best_references(SCI, ["dark", "ipc"]) == {
        "dark": str(cache / "references/jwst/nircam/jwst_nircam_dark_0002.fits"), "ipc": "N/A"}
    assert c.reftypes(SCI) == ["dark", "flat", "ipc", "pars-jumpstep", "readnoise"]


def test_mapping_checksums_are_crds_own(cache):
    from crds.core import utils

    for path in (cache / "mappings" / "jwst").iterdir():
        text = path.read_text()
        body = "".join(line for line in text.splitlines(True) if "sha1sum" not in line)
        assert mapping_checksum(text) == utils.str_checksum(body)
        assert f"'sha1sum' : '{mapping_checksum(text)}'" in text
    # a mapping edited without a new checksum is refused by crds
    rmap = cache / "mappings" / "jwst" / "jwst_nircam_dark_0001.rmap"
    rmap.write_text(rmap.read_text().replace("dark_0001.fits", "dark_0003.fits"))
    with pytest.raises(ReferenceFileError, match="sha1sum mismatch"):
        CrdsCache(cache).get_reference_file(SCI, "dark")


def test_missing_file_and_missing_context_say_how_to_sync(cache):
    (cache / "references/jwst/nircam/jwst_nircam_dark_0002.fits").unlink()
    with pytest.raises(ReferenceFileError) as err:
        CrdsCache(cache).get_reference_file(SCI, "dark")
    assert "jwst_nircam_dark_0002.fits" in str(err.value)
    assert "crds sync --files jwst_nircam_dark_0002.fits" in str(err.value)
    with pytest.raises(ReferenceFileError, match=r"crds sync --contexts jwst_0042\.pmap"):
        CrdsCache(cache, "jwst_0042.pmap")
    with pytest.raises(ReferenceFileError, match="not a CRDS cache"):
        CrdsCache(cache / "references")


def test_context_operational_pinned_and_derived(cache, tmp_path, monkeypatch):
    new = write_ref(tmp_path, "jwst_nircam_dark_0006.fits", "dark", "2023-01-01T00:00:00",
                    DETECTOR="NRCA1", READPATT="RAPID")
    install_reference(cache, "NIRCAM", new)
    old_rules = [rule_from_file(cache / "references/jwst/nircam" / n, ("DETECTOR", "READPATT"))[1]
                 for n in ("jwst_nircam_dark_0001.fits", "jwst_nircam_dark_0004.fits")]
    ctx2 = derive_context(cache, "jwst_0001.pmap", {"NIRCAM": {
        "dark": [*old_rules, rule_from_file(new, ("DETECTOR", "READPATT"))[1]]}})
    assert ctx2 == "jwst_0002.pmap"
    names = sorted(p.name for p in (cache / "mappings" / "jwst").iterdir())
    assert "jwst_nircam_dark_0002.rmap" in names and "jwst_nircam_0002.imap" in names
    assert "jwst_nircam_readnoise_0002.rmap" not in names  # unchanged rmaps are re-used
    # the operational context stays jwst_0001 until pinned
    assert CrdsCache(cache).context == "jwst_0001.pmap"
    assert _name(CrdsCache(cache).get_reference_file(SCI, "dark")) == \
        "jwst_nircam_dark_0002.fits"
    monkeypatch.setenv("CRDS_CONTEXT", ctx2)
    pinned = CrdsCache(cache)
    assert pinned.context == ctx2
    assert _name(pinned.get_reference_file(SCI, "dark")) == "jwst_nircam_dark_0006.fits"
    assert _name(pinned.get_reference_file(SCI, "readnoise")) == \
        "jwst_nircam_readnoise_0001.fits"
    assert _name(CrdsCache(cache, "jwst_0001.pmap").get_reference_file(SCI, "dark")) == \
        "jwst_nircam_dark_0002.fits"
    monkeypatch.setenv("CRDS_CONTEXT", "jwst-operational")
    assert CrdsCache(cache).context == "jwst_0001.pmap"


def test_offline_read_only_and_unreachable_server(cache, monkeypatch):
    monkeypatch.setenv("CRDS_SERVER_URL", "https://127.0.0.1:9")  # nothing listens there
    before = {p: p.stat().st_mtime_ns for p in cache.rglob("*")}
    t0 = time.perf_counter()
    c = CrdsCache(cache)
    assert _name(c.get_reference_file(SCI, "dark")) == "jwst_nircam_dark_0002.fits"
    assert time.perf_counter() - t0 < 30
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*")} == before  # nothing written


def test_bad_files_are_refused(cache, monkeypatch):
    config = cache / "config" / "jwst" / "server_config"
    info = ast.literal_eval(config.read_text())
    info["bad_files_list"] = ["jwst_nircam_dark_0002.fits"]
    config.write_text(repr(info))
    with pytest.raises(ReferenceFileError, match="scientifically invalid"):
        CrdsCache(cache).get_reference_file(SCI, "dark")
    monkeypatch.setenv("CRDS_ALLOW_BAD_REFERENCES", "1")
    assert _name(CrdsCache(cache).get_reference_file(SCI, "dark")) == \
        "jwst_nircam_dark_0002.fits"


def test_active_cache_from_refs_jwpipe_refs_or_crds_path(cache, tmp_path, monkeypatch):
    assert refstore.get_store() is None
    monkeypatch.setenv("CRDS_PATH", str(cache))
    store = refstore.get_store()
    assert store.path == str(cache) and store is refstore.get_store()
    other = build_cache(tmp_path / "other")
    monkeypatch.setenv("JWPIPE_REFS", str(other))
    assert refstore.get_store().path == str(other)
    refstore.set_store(str(cache))
    try:
        assert refstore.get_store().path == str(cache)
    finally:
        refstore.set_store(None)
    assert open_cache(other) is open_cache(other)


def test_cli_refs_show(cache, tmp_path, capsys, monkeypatch):
    sci = tmp_path / "sci.fits"
    fits.PrimaryHDU(header=fits.Header(list(SCI.items()))).writeto(sci)
    monkeypatch.setenv("CRDS_PATH", str(cache))
    assert cli_main(["refs", "show", str(sci), "--brief"]) == 0
    out = capsys.readouterr().out
    assert "dark: " + str(cache / "references/jwst/nircam/jwst_nircam_dark_0002.fits") in out
    assert "ipc: N/A" in out
    assert cli_main(["refs", "show", str(sci), "--reftype", "dark"]) == 0
    out = capsys.readouterr().out
    assert "jwst_nircam_dark_0001.rmap" in out and "META.EXPOSURE.READPATT = RAPID" in out
    monkeypatch.delenv("CRDS_PATH")
    assert cli_main(["refs", "show", str(sci)]) == 1
    assert "set CRDS_PATH" in capsys.readouterr().err
    sci_b = tmp_path / "sci_b.fits"
    fits.PrimaryHDU(header=fits.Header(list((SCI | {"READPATT": "DEEP8"}).items()))).writeto(
        sci_b)
    assert cli_main(["refs", "show", str(sci_b), "--brief", "--refs", str(cache)]) == 1
    assert "readnoise: ERROR" in capsys.readouterr().out


def test_one_selection_per_class_gives_crds_own_answers(cache):
    """Datasets sharing detector/pattern/filter and lying between the same USEAFTER dates
    are selected once; every answer equals crds's own selection for that dataset alone."""
    from crds.core import heavy_client

    types = ["dark", "readnoise", "flat", "ipc", "pars-jumpstep"]
    headers = []
    for det in ("NRCA1", "NRCA2", "NRCB1"):
        for patt in ("RAPID", "BRIGHT2", "DEEP8"):
            for date, time_ in [("2021-12-31", "23:59:59.900"), ("2022-01-01", "00:00:00"),
                                ("2022-01-01", "00:00:00.500"), ("2022-06-01", "12:00:00"),
                                ("2022-12-31", "23:59:59.999"), ("2023-01-01", "00:00:01.5"),
                                ("2023-02-15", "08:00:00"), ("2023-06-01", "12:00:00.000"),
                                ("2023-06-02", "13:00:00"), ("2025-01-01", "00:00:00"),
                                ("2023-6-1", "12:00:00"), ("2023-06-01", "bad"),
                                ("2021-06-01", "01:00:00"), ("2022-03-01", "00:00:00"),
                                ("2022-09-01", "00:00:00"), ("2023-01-20", "00:00:00"),
                                ("2023-02-20", "00:00:00"), ("2023-09-01", "00:00:00"),
                                ("2024-03-01", "00:00:00"), ("2026-01-01", "00:00:00")]:
                headers.append(SCI | {"DETECTOR": det, "READPATT": patt, "DATE-OBS": date,
                                      "TIME-OBS": time_})
    c = CrdsCache(cache)
    calls = []
    own = c._recommend
    c._recommend = lambda header, reftypes: (calls.append(1), own(header, reftypes))[1]
    env = {k: os.environ.get(k) for k in c._env}
    for h in headers:
        try:
            ours = {t: v if v == "N/A" else _name(v)
                    for t, v in c.best_references(h, types).items()}
        except ReferenceFileError as exc:
            ours = str(exc)
        with c._crds():
            from jwpipe.references.crds_cache import crds_parameters

            answer = heavy_client.hv_best_references(c.context, crds_parameters(h),
                                                     include=types)
        if isinstance(ours, str):  # our error names a type crds finds nothing for
            assert any(str(v).startswith("NOT FOUND") and not t.startswith("pars-")
                       and "n/a" not in str(v).lower() for t, v in answer.items()), ours
            continue
        for t in types:
            theirs = str(answer.get(t, "NOT FOUND"))
            want = "N/A" if theirs.startswith("NOT FOUND") else theirs
            assert ours[t] == want, (h, t, ours[t], theirs)
    assert {k: os.environ.get(k) for k in c._env} == env
    # per detector and pattern: one call per USEAFTER interval (an error is not kept, so
    # datasets before the first date call each time), one per date near a USEAFTER date or
    # not in CRDS's date form
    assert len(calls) <= len(headers) * 0.6
