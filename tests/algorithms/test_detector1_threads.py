"""Detector1 algorithms give bit-identical results for any number of worker threads."""

from __future__ import annotations

import numpy as np
import pytest
from synth import TGROUP, make_ramps

from jwpipe._threads import THREADS_ENV, map_chunks, thread_count
from jwpipe.algorithms.dark_current import subtract_dark
from jwpipe.algorithms.jump import detect_jumps
from jwpipe.algorithms.linearity import correct_linearity
from jwpipe.algorithms.ramp_fit import fit_ramps
from jwpipe.algorithms.refpix import correct_refpix
from jwpipe.algorithms.saturation import flag_saturation
from jwpipe.algorithms.superbias import subtract_superbias
from jwpipe.errors import ValidationError

# chunks of 3 rows (2 integrations x 9 differences x 64 float32 per row): many jumps have a
# flagged neighbour in the next or previous chunk
SMALL_CHUNKS = 3 * 18 * 64 * 4


@pytest.fixture(scope="module")
def synth():
    return make_ramps(7, nints=2, ngroups=10, shape=(64, 64), cr_fraction=0.05,
                      sat_fraction=0.02, sat0_fraction=0.005)


def _jump(synth, threads):
    gdq, pdq = synth.groupdq.copy(), synth.pixeldq.copy()
    gain = synth.gain.copy()
    gain[5, 5] = 0.0  # a bad-gain pixel
    res = detect_jumps(synth.data, gdq, pdq, gain, synth.readnoise,
                       chunk_bytes=SMALL_CHUNKS, threads=threads)
    return res, gdq, pdq


def test_jump_identical_for_any_thread_count(synth):
    res1, gdq1, pdq1 = _jump(synth, 1)
    assert res1.n_primary > 100 and res1.n_neighbors > 100
    for threads in (2, 3, 8):
        res, gdq, pdq = _jump(synth, threads)
        assert res == res1
        np.testing.assert_array_equal(gdq, gdq1)
        np.testing.assert_array_equal(pdq, pdq1)


def test_ramp_fit_identical_for_any_thread_count(synth):
    _, gdq, pdq = _jump(synth, 1)

    def fit(threads):
        g = gdq.copy()
        rate, ints = fit_ramps(synth.data, g, pdq.copy(), synth.readnoise, synth.gain,
                               group_time=TGROUP, frame_time=TGROUP, chunk_bytes=2 * 64 * 80,
                               threads=threads)
        return g, rate, ints

    g1, rate1, ints1 = fit(1)
    for threads in (2, 5):
        g, rate, ints = fit(threads)
        np.testing.assert_array_equal(g, g1)
        for name in ("data", "dq", "var_poisson", "var_rnoise", "err"):
            for a, b in ((rate, rate1), (ints, ints1)):
                assert getattr(a, name).tobytes() == getattr(b, name).tobytes(), name


def test_linearity_and_dark_identical_for_any_thread_count(synth):
    rng = np.random.default_rng(3)
    coeffs = np.stack([rng.normal(0, 1, (64, 64)), 1 + rng.normal(0, 1e-3, (64, 64)),
                       rng.normal(0, 1e-7, (64, 64))]).astype(np.float32)
    dark = rng.normal(5, 1, (12, 64, 64)).astype(np.float32)
    outs = []
    for threads in (1, 2, 4):
        data = synth.data.copy()
        pdq = np.zeros((64, 64), np.uint32)
        correct_linearity(data, synth.groupdq, pdq, coeffs, chunk_bytes=64 * 4 * 8 * 5,
                          threads=threads)
        subtract_dark(data, pdq, dark, threads=threads)
        outs.append((data.tobytes(), pdq.tobytes()))
    assert outs[1] == outs[0] and outs[2] == outs[0]


def test_saturation_identical_for_any_thread_count(synth):
    rng = np.random.default_rng(4)
    thresh = np.full((64, 64), 50000.0, np.float32)
    thresh[rng.random((64, 64)) < 0.05] = 3000.0  # many saturating pixels, at block edges too
    thresh[7, 9] = np.nan
    data = synth.data.copy()
    data[:, 4, 20:30, 5] = -1.0  # A/D floor
    gdq0 = synth.groupdq.copy()
    gdq0[1, 6, 33, 40] |= 2  # already SATURATED on input (grown like a measured one)
    outs = []
    # one block of the whole frame, then 5-row and 1-row blocks (growths cross block edges)
    for chunk, threads in ((None, 1), (64 * 4 * 5, 1), (64 * 4 * 5, 3), (64 * 4, 2)):
        gdq, pdq = gdq0.copy(), synth.pixeldq.copy()
        n = flag_saturation(data, gdq, pdq, thresh, n_pix_grow_sat=2, chunk_bytes=chunk,
                            threads=threads)
        outs.append((n, gdq.tobytes(), pdq.tobytes()))
    assert outs[0][0] > 100
    assert all(out == outs[0] for out in outs[1:])


def test_refpix_and_superbias_identical_for_any_thread_count():
    rng = np.random.default_rng(5)
    data0 = rng.normal(1000, 30, (2, 4, 2048, 16)).astype(np.float32).transpose(0, 1, 3, 2)
    data0 = np.ascontiguousarray(np.repeat(data0, 128, axis=3)[:, :, :, :2048])
    pdq = np.zeros((16, 2048), np.uint32)
    pdq[:4] = pdq[-4:] = 2147483648  # reference rows
    pdq[:, :4] = pdq[:, -4:] = 2147483648  # reference columns
    bias = rng.normal(0, 5, (16, 2048)).astype(np.float32)
    bias[3, 3] = np.nan
    outs = []
    for chunk, threads in ((None, 1), (2 * 4 * 2048 * 4 * 3, 1), (2 * 4 * 2048 * 4 * 3, 3)):
        data, dq = data0.copy(), pdq.copy()
        subtract_superbias(data, dq, bias, chunk_bytes=chunk, threads=threads)
        correct_refpix(data, dq, noutputs=4, chunk_bytes=chunk, threads=threads)
        outs.append(data.tobytes())
    assert outs[0] != data0.tobytes()
    assert outs[1] == outs[0] and outs[2] == outs[0]


def test_thread_count_sources(monkeypatch):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    import os

    assert thread_count() == len(os.sched_getaffinity(0))
    monkeypatch.setenv(THREADS_ENV, "3")
    assert thread_count() == 3
    assert thread_count(1) == 1
    for bad in ("0", "-2", "two"):
        monkeypatch.setenv(THREADS_ENV, bad)
        with pytest.raises(ValidationError, match=THREADS_ENV):
            thread_count()
    with pytest.raises(ValidationError, match="threads must be >= 1"):
        thread_count(0)


def test_map_chunks_keeps_order_and_propagates_errors():
    assert map_chunks(lambda i: i * i, range(20), threads=4) == [i * i for i in range(20)]

    def boom(i):
        if i == 7:
            raise RuntimeError("chunk 7")
        return i

    with pytest.raises(RuntimeError, match="chunk 7"):
        map_chunks(boom, range(10), threads=3)
