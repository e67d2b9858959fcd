"""JWST data-quality bit values used by the Detector1 algorithms.

The values are the standard JWST DQ bits (pixel DQ is uint32; group DQ is uint8 and only uses bits
0-7). ``jwpipe.datamodels.dqflags`` carries the same numbers.
"""

from __future__ import annotations

import numpy as np

GOOD = 0
DO_NOT_USE = 1
SATURATED = 2
JUMP_DET = 4
DROPOUT = 8
OUTLIER = 16
PERSISTENCE = 32
AD_FLOOR = 64
CHARGELOSS = 128
RESERVED = 256
NON_SCIENCE = 512
DEAD = 1024
HOT = 2048
WARM = 4096
LOW_QE = 8192
RC = 16384
TELEGRAPH = 32768
NONLINEAR = 65536
BAD_REF_PIXEL = 131072
NO_FLAT_FIELD = 262144
NO_GAIN_VALUE = 524288
NO_LIN_CORR = 1048576
NO_SAT_CHECK = 2097152
UNRELIABLE_BIAS = 4194304
UNRELIABLE_DARK = 8388608
UNRELIABLE_SLOPE = 16777216
UNRELIABLE_FLAT = 33554432
OPEN = 67108864
ADJ_OPEN = 134217728
FLUX_ESTIMATED = 268435456
MSA_FAILED_OPEN = 536870912
OTHER_BAD_PIXEL = 1073741824
REFERENCE_PIXEL = 2147483648

#: dtype of pixel-level DQ arrays (PIXELDQ, DQ)
PIXEL_DTYPE = np.uint32
#: dtype of group-level DQ arrays (GROUPDQ)
GROUP_DTYPE = np.uint8

#: Group flags that make a group unusable for fitting and jump detection.
INVALID_GROUP = DO_NOT_USE | SATURATED
