"""Subarray cut-outs and the reference/data mismatch checks."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from jwpipe.errors import ReferenceFileError
from jwpipe.references import check_reference_matches, subarray_slices

SCI = {"INSTRUME": "NIRCAM", "DETECTOR": "NRCA1", "SUBARRAY": "FULL"}


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
