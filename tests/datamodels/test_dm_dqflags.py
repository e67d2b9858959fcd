"""Tests of jwpipe.datamodels.dqflags."""

import numpy as np
import pytest

from jwpipe.datamodels import dqflags
from jwpipe.datamodels.dqflags import BitFlagError


def test_pixel_table_is_the_jwst_table():
    values = {k: v for k, v in dqflags.pixel.items() if k != "GOOD"}
    assert len(values) == 32
    assert sorted(values.values()) == [1 << b for b in range(32)]
    assert dqflags.pixel["DO_NOT_USE"] == 1
    assert dqflags.pixel["NON_SCIENCE"] == 512
    assert dqflags.pixel["NO_GAIN_VALUE"] == 524288
    assert dqflags.pixel["UNRELIABLE_SLOPE"] == 16777216
    assert dqflags.pixel["REFERENCE_PIXEL"] == 2147483648
    assert dqflags.group == {
        "GOOD": 0,
        "DO_NOT_USE": 1,
        "SATURATED": 2,
        "JUMP_DET": 4,
        "DROPOUT": 8,
        "PERSISTENCE": 32,
        "AD_FLOOR": 64,
        "CHARGELOSS": 128,
    }


def test_interpret_bit_flags():
    f = dqflags.interpret_bit_flags
    assert f(None) is None
    assert f("") is None
    assert f(6) == 6
    assert f("DO_NOT_USE+NON_SCIENCE") == 513
    assert f("do_not_use, saturated") == 3
    assert f("1|4") == 5
    assert f("~DO_NOT_USE+NON_SCIENCE") == 0xFFFFFFFF & ~513
    assert f("~(DO_NOT_USE+NON_SCIENCE)") == 0xFFFFFFFF & ~513
    assert f(["JUMP_DET", 2]) == 6
    for bad in ("NOT_A_FLAG", "3", "DO_NOT_USE+", "1 2"):
        with pytest.raises(BitFlagError):
            f(bad)


def test_dq_to_boolean_mask_good_bits_semantics():
    dq = np.array([0, 1, 2, 512, 1024, 513], dtype=np.uint32)
    # astropy-style "good bits": only DO_NOT_USE and NON_SCIENCE make a pixel bad
    mask = dqflags.dq_to_boolean_mask(dq, good_bits="~DO_NOT_USE+NON_SCIENCE")
    assert mask.tolist() == [False, True, False, True, False, True]
    mask = dqflags.dq_to_boolean_mask(dq, "DO_NOT_USE+DEAD")
    assert mask.tolist() == [False, True, False, False, True, True]
    assert not dqflags.dq_to_boolean_mask(dq, None).any()
    gdq = np.array([0, 2, 4, 6], dtype=np.uint8)
    assert dqflags.dq_to_boolean_mask(gdq, "SATURATED").tolist() == [False, True, False, True]
    assert dqflags.dq_to_boolean_mask(gdq, good_bits="JUMP_DET").tolist() == [
        False,
        True,
        False,
        True,
    ]
    with pytest.raises(BitFlagError):
        dqflags.dq_to_boolean_mask(dq.astype(float), "DO_NOT_USE")


def test_flag_names():
    assert dqflags.flag_names(0) == []
    assert dqflags.flag_names(513) == ["DO_NOT_USE", "NON_SCIENCE"]
    assert dqflags.flag_names(2**31 + 4) == ["JUMP_DET", "REFERENCE_PIXEL"]
    assert dqflags.flag_names(2**33, dqflags.group) == ["BIT33"]
