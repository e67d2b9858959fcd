"""The seed's examples with only CRDS_PATH set, and CRDS parameter references written by jwst.

The cache is the simulator's real-format CRDS cache; the server URL points nowhere, so
everything is selected offline through the crds client.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import asdf
import numpy as np
import pytest
from astropy.io import fits

from jwpipe.pipeline import Detector1Pipeline
from jwpipe.references import derive_context, install_reference, rule_from_file
from jwpipe.steps import DarkCurrentStep

ROOT = "jw01234001001_02101_00001_nrca1"


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    from jwpipe.simulate import simulate_field

    return simulate_field(tmp_path_factory.mktemp("crdsuse"), n_exposures=1, size=48,
                          ngroups=6, seed=5, cr_rate=4e-4, frame_time=10.73677)


@pytest.fixture(scope="module")
def jwst_pars(tmp_path_factory):
    """A pars-jumpstep reference written by jwst itself (its class is a jwst class path)."""
    pytest.importorskip("jwst")
    from jwst.jump import JumpStep

    path = tmp_path_factory.mktemp("pars") / "jwst_nircam_pars-jumpstep_0001.asdf"
    step = JumpStep()
    step.rejection_threshold = 2.5
    step.export_config(str(path), include_metadata=True)
    with asdf.open(path, mode="rw") as af:
        af.tree["meta"].update({
            "reftype": "pars-jumpstep", "useafter": "2022-01-01T00:00:00",
            "instrument": {"name": "NIRCAM", "detector": "NRCA1"}, "telescope": "JWST",
            "pedigree": "GROUND", "author": "jwpipe test", "origin": "STSCI"})
        af.update()
    return path


@pytest.fixture
def crds_env(sim, tmp_cwd, monkeypatch):
    """Only CRDS_PATH set (to a private copy of the simulated cache); the server unreachable."""
    cache = tmp_cwd / "crds_cache"
    shutil.copytree(sim.store_dir, cache)
    uncal = tmp_cwd / "in" / sim.uncal_files[0].name
    uncal.parent.mkdir()
    shutil.copy(sim.uncal_files[0], uncal)
    monkeypatch.setenv("CRDS_PATH", str(cache))
    monkeypatch.setenv("CRDS_SERVER_URL", "https://127.0.0.1:9")
    return cache, str(uncal)


def _add_pars(cache: Path, pars: Path) -> str:
    """A new context jwst_0002.pmap with the pars-jumpstep rule; pinned via CRDS_CONTEXT."""
    installed = install_reference(cache, "NIRCAM", pars)
    rule = rule_from_file(installed, ("DETECTOR",))[1]
    return derive_context(cache, "jwst_0001.pmap", {"NIRCAM": {"pars-jumpstep": [rule]}})


def test_seed_examples_with_only_crds_path(crds_env, tmp_cwd):
    _cache, uncal = crds_env
    result = Detector1Pipeline.call(uncal, output_dir="calibrated")
    rate = tmp_cwd / "calibrated" / f"{ROOT}_rate.fits"
    assert rate.is_file() and (tmp_cwd / "calibrated" / f"{ROOT}_rateints.fits").is_file()
    header = fits.getheader(rate)
    assert header["CRDS_CTX"] == "jwst_0001.pmap" and header["CRDS_VER"]
    for key in ("R_MASK", "R_SATURA", "R_SUPERB", "R_LINEAR", "R_DARK", "R_GAIN", "R_READNO"):
        assert header[key].startswith("crds://jwst_nircam_"), key
    np.testing.assert_array_equal(fits.getdata(rate, "SCI"), result.data)
    # output_dir on a step of the pipeline saves that step's result there
    Detector1Pipeline.call(uncal, steps={"dark_current": {"output_dir": "darks"}})
    assert [p.name for p in (tmp_cwd / "darks").iterdir()] == [f"{ROOT}_dark_current.fits"]
    assert not list(tmp_cwd.glob("*.fits"))
    # ... and on a step called alone
    DarkCurrentStep.call(uncal, output_dir="alone")
    assert [p.name for p in (tmp_cwd / "alone").iterdir()] == [f"{ROOT}_dark_current.fits"]
    # the command line, with no --refs
    proc = subprocess.run([sys.executable, "-m", "jwpipe", "strun", "calwebb_detector1", uncal,
                           "--output_dir", "cli"], capture_output=True, text=True,
                          timeout=300, cwd=tmp_cwd)
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(fits.getdata(tmp_cwd / "cli" / f"{ROOT}_rate.fits", "SCI"),
                                  result.data)
    proc = subprocess.run([sys.executable, "-m", "jwpipe", "refs", "show", uncal, "--brief"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "ipc: N/A" in proc.stdout
    # make-workflow with no --refs selects from CRDS_PATH and writes context and files
    from jwpipe.associations import asn_from_list, write_asn

    write_asn(asn_from_list([Path(uncal).name.replace("_uncal", "_rate")], asn_type="image2",
                            product_name=ROOT), Path(uncal).parent / "asn.json")
    proc = subprocess.run([sys.executable, "-m", "jwpipe", "make-workflow",
                           str(Path(uncal).parent / "asn.json"), "-o", "wf"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_cwd)
    assert proc.returncode == 0, proc.stderr
    unit = json.loads((tmp_cwd / "wf" / "units" / "jump" / f"{ROOT}.json").read_text())
    assert unit["references"]["context"] == "jwst_0001.pmap"
    assert Path(unit["references"]["files"]["gain"]).name.startswith("jwst_nircam_gain_")


def test_missing_cached_file_names_it_and_the_sync_command(crds_env):
    cache, uncal = crds_env
    gain = next(cache.rglob("jwst_nircam_gain_*.fits"))
    gain.unlink()
    proc = subprocess.run([sys.executable, "-m", "jwpipe", "strun", "calwebb_detector1", uncal],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert gain.name in proc.stderr and f"crds sync --files {gain.name}" in proc.stderr


def test_crds_pars_jumpstep_from_jwst_sets_the_threshold(crds_env, jwst_pars, tmp_cwd,
                                                         monkeypatch):
    cache, uncal = crds_env
    default = Detector1Pipeline.call(uncal)
    config, _ = Detector1Pipeline.build_config(uncal)
    assert "rejection_threshold" not in config.get("steps", {}).get("jump", {})
    monkeypatch.setenv("CRDS_CONTEXT", _add_pars(cache, jwst_pars))
    config, _ = Detector1Pipeline.build_config(uncal)
    assert config["steps"]["jump"]["rejection_threshold"] == 2.5
    with_pars = Detector1Pipeline.call(uncal)
    explicit = Detector1Pipeline.call(uncal, steps={"jump": {"rejection_threshold": 2.5}})
    np.testing.assert_array_equal(with_pars.dq, explicit.dq)
    np.testing.assert_array_equal(with_pars.data, explicit.data)
    assert not np.array_equal(with_pars.dq, default.dq)  # the threshold made a difference
    # a keyword argument still wins over the CRDS parameter reference
    config, _ = Detector1Pipeline.build_config(uncal, steps={"jump": {"rejection_threshold": 9}})
    assert config["steps"]["jump"]["rejection_threshold"] == 9
    # --disable-crds-steppars and STPIPE_DISABLE_CRDS_STEPPARS turn it off
    proc = subprocess.run([sys.executable, "-m", "jwpipe", "strun", "calwebb_detector1", uncal,
                           "--disable-crds-steppars", "--output_dir", "off"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_cwd)
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(fits.getdata(tmp_cwd / "off" / f"{ROOT}_rate.fits", "DQ"),
                                  default.dq)
    monkeypatch.setenv("STPIPE_DISABLE_CRDS_STEPPARS", "True")
    np.testing.assert_array_equal(Detector1Pipeline.call(uncal).dq, default.dq)
    monkeypatch.delenv("STPIPE_DISABLE_CRDS_STEPPARS")
    # the step alone reads the same reference
    from jwpipe.steps import JumpStep

    config, _ = JumpStep.build_config(uncal)
    assert config["rejection_threshold"] == 2.5
    assert os.environ["CRDS_CONTEXT"] == "jwst_0002.pmap"
