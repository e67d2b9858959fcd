"""Detector1 products are bit-identical whatever JWPIPE_THREADS is (real files, whole pipeline)."""

from __future__ import annotations

import pytest
from astropy.io import fits

from jwpipe._threads import THREADS_ENV
from jwpipe.algorithms import _util
from jwpipe.datamodels import _fitsio, _fitswrite
from jwpipe.pipeline import Detector1Pipeline
from jwpipe.stpipe.refstore import set_store


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    from jwpipe.simulate import simulate_field

    return simulate_field(tmp_path_factory.mktemp("d1threads"), n_exposures=1, size=96,
                          ngroups=7, seed=11, cr_rate=5e-3, frame_time=10.73677)


def _arrays(path):
    with fits.open(path) as hdul:
        return {h.name: (h.data.dtype.str, h.data.tobytes()) for h in hdul
                if h.data is not None and h.name != "ASDF"}


def test_products_identical_for_1_and_2_threads(sim, tmp_path, monkeypatch):
    # small chunks so that every algorithm and every FITS read splits into many pieces
    monkeypatch.setattr(_util, "DEFAULT_CHUNK_BYTES", 40_000)
    monkeypatch.setattr(_fitsio, "_CHUNK_BYTES", 50_000)
    monkeypatch.setattr(_fitswrite, "_CHUNK_BYTES", 4_000)  # products written in pieces too
    monkeypatch.setattr(_fitswrite, "_MIN_FAST_BYTES", 1_000)
    set_store(sim.store_dir)
    try:
        products = {}
        for threads in ("1", "2"):
            monkeypatch.setenv(THREADS_ENV, threads)
            out = tmp_path / threads
            Detector1Pipeline.call(str(sim.uncal_files[0]), save_results=True,
                                   output_dir=str(out))
            products[threads] = {p.name: _arrays(p) for p in sorted(out.glob("*.fits"))}
    finally:
        set_store(None)
    assert sorted(products["1"]) == sorted(products["2"])
    assert any(name.endswith("_rate.fits") for name in products["1"])
    assert products["1"] == products["2"]
    rate = next(v for k, v in products["1"].items() if k.endswith("_rate.fits"))
    assert {"SCI", "DQ", "ERR", "VAR_POISSON", "VAR_RNOISE"} <= set(rate)


def test_bad_thread_setting_is_one_clear_error(sim, tmp_path, monkeypatch):
    from jwpipe.errors import ValidationError

    monkeypatch.setenv(THREADS_ENV, "lots")
    set_store(sim.store_dir)
    try:
        with pytest.raises(ValidationError, match="JWPIPE_THREADS='lots' is not an integer"):
            Detector1Pipeline.call(str(sim.uncal_files[0]), output_dir=str(tmp_path))
    finally:
        set_store(None)
