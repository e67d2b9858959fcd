"""Rate files made straight from the simulator's truth, for the Image2/Image3 tests.

Detector1 is not run here: each ``_rate.fits`` is the simulator's true count rate plus
Gaussian noise drawn from exactly the variances written to VAR_POISSON and VAR_RNOISE (a
uniformly weighted slope over NGROUPS groups of TGROUP seconds, gain 2.05 e-/DN, CDS read
noise 10 DN), with the DQ of the simulated mask reference. Cosmic rays can be planted in
chosen exposures. The tests in this module check that the noise really matches ERR.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

from jwpipe import datamodels
from jwpipe.simulate import simulate_field

GAIN = 2.05
CDS_RN = 10.0


@dataclass
class SimRates:
    """A simulated field turned into rate files."""

    sim: object
    rates: list[Path]
    truths: list[Path]
    sources: Table
    pointing: Table
    crs: dict[int, list[tuple[int, int, float]]] = field(default_factory=dict)


def noise_variances(rate: np.ndarray, ngroups: int, tgroup: float
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(VAR_POISSON, VAR_RNOISE) in (DN/s)^2 of a uniformly weighted ramp slope."""
    texp = (ngroups - 1) * tgroup
    var_p = np.clip(rate, 0, None) / (GAIN * texp)
    var_r = 12.0 * (CDS_RN**2 / 2.0) / (ngroups * (ngroups**2 - 1) * tgroup**2)
    return var_p.astype(np.float32), np.full(rate.shape, var_r, np.float32)


def make_rate(uncal: Path, truth: Path, out: Path, mask_dq: np.ndarray,
              rng: np.random.Generator, crs: list[tuple[int, int, float]] = ()) -> Path:
    """Write ``out`` (a rate file) for one simulated exposure."""
    with fits.open(truth) as hdul:
        rate = hdul["RATE"].data.astype(np.float64)
    ramp = datamodels.open(uncal)
    model = datamodels.ImageModel(ramp)
    ramp.close()
    exp = model.meta.exposure
    var_p, var_r = noise_variances(rate, int(exp.ngroups), float(exp.group_time))
    data = rate + rng.normal(size=rate.shape) * np.sqrt(var_p + var_r)
    for y, x, amp in crs:
        data[y, x] += amp
    model.data = data.astype(np.float32)
    model.var_poisson = var_p
    model.var_rnoise = var_r
    model.err = np.sqrt(var_p + var_r).astype(np.float32)
    model.dq = mask_dq.astype(np.uint32)
    model.meta.bunit_data = model.meta.bunit_err = "DN/s"
    model.save(out)
    return out


def simulate_rates(outdir: Path, n_exposures: int = 4, size: int = 256, seed: int = 7,
                   crs: dict[int, list[tuple[int, int, float]]] | None = None,
                   **options: object) -> SimRates:
    """Simulate a field and write one ``_rate.fits`` per exposure next to the uncal files."""
    opts = {"n_stars": 70, "n_galaxies": 15, "frame_time": 10.73677, **options}
    sim = simulate_field(outdir, n_exposures=n_exposures, size=size, ngroups=5, seed=seed,
                         **opts)
    from jwpipe.references import open_cache

    store = open_cache(sim.store_dir)
    rng = np.random.default_rng(seed)
    rates = []
    crs = crs or {}
    for k, (uncal, truth) in enumerate(zip(sim.uncal_files, sim.truth_files, strict=True)):
        params = datamodels.read_crds_parameters(uncal)
        with datamodels.MaskModel(store.get_reference_file(params, "mask")) as mask:
            dq = np.array(mask.dq)
        out = Path(str(uncal).replace("_uncal.fits", "_rate.fits"))
        rates.append(make_rate(uncal, truth, out, dq, rng, crs.get(k, [])))
    return SimRates(sim, rates, list(sim.truth_files), Table.read(sim.sources),
                    Table.read(sim.pointing), crs)


def move_north(model, degrees: float) -> None:
    """Move an exposure's WCS (the gWCS from the distortion reference, and its header
    approximation) north on the sky."""
    from jwpipe.steps._image_common import model_wcs, rotate_shift_wcs, set_model_wcs

    wcs = model_wcs(model)
    set_model_wcs(model, rotate_shift_wcs(wcs, np.array([0.0, degrees * 3600.0]), 0.0,
                                          tuple(wcs.wcs.crval)))


def test_rate_noise_matches_err(tmp_path):
    sim = simulate_rates(tmp_path / "sim", n_exposures=1, size=64, seed=3)
    with fits.open(sim.truths[0]) as hdul:
        truth = hdul["RATE"].data
    with datamodels.open(sim.rates[0]) as m:
        good = (m.dq & 1) == 0
        pull = ((m.data - truth) / m.err)[good]
        assert m.meta.bunit_data == "DN/s"
    # 3500 pixels: the std of a unit normal is known to ~1.2 %
    assert abs(pull.mean()) < 5 / np.sqrt(pull.size)
    assert abs(pull.std() - 1) < 0.05
