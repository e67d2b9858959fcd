"""The photutils catalogue against jwpipe's former hand-written detector, on the same mosaics.

Uses ``benchmarks/bench_catalog_completeness.py`` (the fields, the truth S/N, the former
detector as the anchor at the same real threshold, one-to-one matching); the full run and its
numbers are in docs/image.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import bench_catalog_completeness as bench


def _allowance(k: int, n: int) -> float:
    """Two binomial standard deviations of a count k of n (at least 2 sources)."""
    return 2.0 * bench.binomial(k, n)


@pytest.fixture(scope="module")
def scores(tmp_path_factory):
    root = tmp_path_factory.mktemp("completeness")
    return [bench.field_scores(*bench.prepare(root, seed), {}) for seed in (2026, 2027)]


@pytest.mark.slow
def test_completeness_per_snr_bin_at_least_the_former_detectors(scores):
    """Per truth-S/N bin the catalogue finds at least what the former detector finds at the
    same real threshold, less two binomial standard deviations of the former's count, and it
    makes no more false detections. (Measured on seeds 2026-2031 before the threshold fix:
    the catalogue's Background2D RMS of the convolved image was 1.7-2.3x the blank-sky RMS,
    so its S/N-3 threshold was a real 5-7 sigma and it found 5/25 at S/N 20-50 on these two
    fields where the former detector found 16/25.)"""
    snr = np.concatenate([s["snr"] for s in scores])
    new = np.concatenate([s["new"] for s in scores])
    old = np.concatenate([s["old"] for s in scores])
    for lo, hi in bench.SNR_BINS:
        sel = (snr >= lo) & (snr < hi)
        n, k_old, k_new = int(sel.sum()), int(old[sel].sum()), int(new[sel].sum())
        print(f"S/N {lo}-{hi}: {n} sources, former {k_old}, jwpipe {k_new}")
        if n:
            assert k_new >= k_old - _allowance(k_old, n), (lo, hi, k_new, k_old, n)
    assert (snr >= 50).sum() >= 80
    # bright sources: all but blends and compact galaxies below npixels
    bright = snr >= 50
    assert new[bright].mean() > 0.9
    false_new = sum(s["new_false"] for s in scores)
    false_old = sum(s["old_false"] for s in scores)
    print(f"false detections: former {false_old}, jwpipe {false_new}")
    assert false_new <= false_old


@pytest.mark.slow
def test_close_pairs_on_drizzled_mosaics_against_the_former_detector():
    """Pairs 2-6 px apart on drizzled mosaics (PSF FWHM ~3 px after drizzling): at the
    defaults no bin worse than the former detector (two binomial sigma); with
    ``deblend_npixels=3`` 4-5 px pairs are split far more often (measured 30/38 vs 14/38 on
    the benchmark's 8 mosaics; here 4)."""
    tallies = {}
    for params in ({}, {"deblend_npixels": 3}):
        tally = {"new": {b: [0, 0] for b in bench.SEP_BINS},
                 "old": {b: [0, 0] for b in bench.SEP_BINS}}
        false = {"new": 0, "old": 0}
        for seed in range(4):
            res = bench.pairs_scores(seed, params)
            for name in ("new", "old"):
                for b in bench.SEP_BINS:
                    tally[name][b][0] += res[name][b][0]
                    tally[name][b][1] += res[name][b][1]
                false[name] += res[name + "_false"]
        print(params, tally, false)
        tallies[params.get("deblend_npixels", 5)] = tally
        assert false["new"] <= false["old"]
    default, three = tallies[5], tallies[3]
    for b in bench.SEP_BINS:
        (k_old, n), (k_new, _) = default["old"][b], default["new"][b]
        assert k_new >= k_old - _allowance(k_old, n), (b, k_new, k_old, n)
    # 4-5 px with 3-pixel components: better than before by more than the counts' errors
    (k_old, n), (k_new, _) = three["old"][(4, 5)], three["new"][(4, 5)]
    assert k_new - k_old > 2.0 * np.hypot(bench.binomial(k_old, n), bench.binomial(k_new, n))
    # beyond 5 px every pair is split (a 2.5-sigma-deep saddle at 5 px and above)
    (k5, n5) = default["new"][(5, 6)]
    assert k5 == n5
