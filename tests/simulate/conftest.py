"""Helpers shared by the simulator tests: read simulated files and linearize ramps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from jwpipe.references import CrdsCache, parameters_from_file
from jwpipe.simulate.detector import DQ, linearity_polynomial


class SimData:
    """Data, references and truth of one simulated exposure, for tests."""

    def __init__(self, uncal: Path, store: Path) -> None:
        self.uncal = uncal
        with fits.open(uncal) as hdul:
            self.raw = hdul["SCI"].data.astype(np.float64)
            self.header = hdul[0].header.copy()
            self.sci_header = hdul["SCI"].header.copy()
        self.params = parameters_from_file(uncal)
        store_obj = CrdsCache(store)

        def ref(reftype: str, ext: str = "SCI") -> np.ndarray:
            return fits.getdata(store_obj.get_reference_file(self.params, reftype), ext)

        self.ref = ref
        self.gain = ref("gain").astype(np.float64)
        self.readnoise = ref("readnoise").astype(np.float64)
        self.superbias = ref("superbias").astype(np.float64)
        self.saturation = ref("saturation").astype(np.float64)
        self.coeffs = ref("linearity", "COEFFS").astype(np.float64)
        self.dark = ref("dark").astype(np.float64)
        self.flat = ref("flat").astype(np.float64)
        self.mask = ref("mask", "DQ").astype(np.uint32)
        root = uncal.name.replace("_uncal.fits", "")
        truth = uncal.parent / "truth" / f"{root}_truth.fits"
        with fits.open(truth) as hdul:
            self.rate = hdul["RATE"].data.astype(np.float64)
            self.rate_header = hdul["RATE"].header.copy()
            self.truth_header = hdul[0].header.copy()
            self.sources = np.array(hdul["SOURCES"].data)
            self.crs = np.array(hdul["CRS"].data)
        self.refpix = (self.mask & DQ["REFERENCE_PIXEL"]) != 0
        bad = (self.mask & DQ["DO_NOT_USE"]) != 0
        self.good = ~self.refpix & ~bad
        self.nframes = int(self.header["NFRAMES"])
        self.tframe = float(self.header["TFRAME"])
        self.tgroup = float(self.header["TGROUP"])
        self.nref_parity = int(self.refpix.sum() // 2)

    def measured(self) -> np.ndarray:
        """Bias-free measured DN: superbias and reference-pixel levels (per column parity).

        Reference pixels carry no signal, no cosmic rays and no hot pixels, so a plain mean
        estimates each group's level (standard error ``rn/sqrt(2*nref)`` per parity).
        """
        m = self.raw - self.superbias
        nx = m.shape[-1]
        for parity in (0, 1):
            cols = np.zeros(nx, dtype=bool)
            cols[parity::2] = True
            sel = self.refpix & cols[None, :]
            level = np.mean(m[..., sel], axis=-1)  # (nints, ngroups)
            m[..., cols] -= level[..., None, None]
        return m

    def linear(self) -> np.ndarray:
        """Linearized, dark-subtracted DN per group."""
        return linearity_polynomial(self.coeffs, self.measured()) - self.dark


@pytest.fixture
def simdata():
    """Factory: ``simdata(result, index=0)`` -> SimData for the index-th uncal file."""

    def load(result, index: int = 0) -> SimData:
        return SimData(result.uncal_files[index], result.store_dir)

    return load
