"""The Detector1 step classes: wiring of models, references and algorithms; input errors."""

from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
from astropy.io import fits

from jwpipe import datamodels
from jwpipe.algorithms.saturation import flag_saturation
from jwpipe.errors import ReferenceFileError, StepInputError, ValidationError
from jwpipe.steps import (
    DarkCurrentStep,
    DQInitStep,
    GainScaleStep,
    GroupScaleStep,
    JumpStep,
    LinearityStep,
    RampFitStep,
    RefPixStep,
    SaturationStep,
    SuperbiasStep,
)
from jwpipe.stpipe.refstore import set_store

SIZE = 32


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    from jwpipe.simulate import simulate_field

    return simulate_field(tmp_path_factory.mktemp("d1steps"), n_exposures=1, size=SIZE,
                          ngroups=5, seed=7, frame_time=10.73677, cr_rate=1e-4)


@pytest.fixture
def store(sim):
    set_store(sim.store_dir)
    yield sim.store_dir
    set_store(None)


def _ref(sim, reftype: str) -> str:
    return str(next(sim.store_dir.rglob(f"jwst_nircam_{reftype}_*.fits")))


RAMP_STEPS = [
    (GroupScaleStep, "group_scale", None),
    (DQInitStep, "dq_init", "mask"),
    (SaturationStep, "saturation", "saturation"),
    (SuperbiasStep, "superbias", "superbias"),
    (RefPixStep, "refpix", None),
    (LinearityStep, "linearity", "linearity"),
    (DarkCurrentStep, "dark_sub", "dark"),
    (JumpStep, "jump", "gain"),
]


@pytest.mark.parametrize("cls,key,reftype", RAMP_STEPS)
def test_standalone_ramp_steps(sim, store, cls, key, reftype):
    model = datamodels.open(str(sim.uncal_files[0]))
    before = model.data.copy()
    out = cls.call(model)
    assert out is not model
    np.testing.assert_array_equal(model.data, before)  # the caller's model is untouched
    # group_scale: NFRAMES == FRMDIVSR; refpix: a subarray's reference pixels are found
    # through the REFERENCE_PIXEL flags dq_init sets, and dq_init has not run
    expected = "SKIPPED" if cls in (GroupScaleStep, RefPixStep) else "COMPLETE"
    assert getattr(out.meta.cal_step, key) == expected
    if reftype:
        assert getattr(out.meta.ref_file, reftype).name.startswith(f"crds://jwst_nircam_{reftype}")


def test_steps_change_the_data_as_their_algorithms_do(sim, store):
    model = datamodels.open(str(sim.uncal_files[0]))
    raw = model.data.copy()
    dq = DQInitStep.call(model)
    mask = fits.getdata(_ref(sim, "mask"), "DQ").astype(np.uint32)
    np.testing.assert_array_equal(dq.pixeldq, mask)
    assert np.all((dq.groupdq[0, 0] & 1) == (mask & 1))
    sat = SaturationStep.call(dq)
    gdq, pdq = dq.groupdq.copy(), dq.pixeldq.copy()
    flag_saturation(raw, gdq, pdq, fits.getdata(_ref(sim, "saturation")).astype(np.float32))
    np.testing.assert_array_equal(sat.groupdq, gdq)
    bias = SuperbiasStep.call(sat)
    np.testing.assert_allclose(bias.data, raw - fits.getdata(_ref(sim, "superbias")), atol=1e-3)


def test_non_ramp_input_is_refused(sim, store, tmp_path):
    image = datamodels.ImageModel(np.zeros((SIZE, SIZE), np.float32))
    overrides = {t: _ref(sim, t) for t in ("mask", "saturation", "gain", "readnoise")}
    for cls in (DQInitStep, SaturationStep, JumpStep, RampFitStep):
        pars = {f"override_{t}": overrides[t] for t in cls.reference_file_types}
        with pytest.raises(StepInputError, match="needs a ramp"):
            cls.call(image, **pars)
    ramp = datamodels.RampModel(np.zeros((1, 3, SIZE, SIZE), np.float32))
    with pytest.raises(StepInputError, match="needs a rate"):
        GainScaleStep.call(ramp, override_gain=overrides["gain"])


def test_ngroups_inconsistent_with_data(sim, store):
    model = datamodels.open(str(sim.uncal_files[0])).copy()
    model.meta.exposure.ngroups = 7
    with pytest.raises(StepInputError, match="NGROUPS=7 but SCI holds 5 groups"):
        SaturationStep.call(model)
    model.meta.exposure.ngroups = 5
    model.meta.exposure.nints = 3
    with pytest.raises(StepInputError, match="NINTS=3"):
        DQInitStep.call(model)


def test_reference_of_another_detector_is_an_error(sim, store, tmp_path):
    ref = datamodels.open(_ref(sim, "saturation")).copy()
    ref.meta.instrument.detector = "NRCB4"
    path = tmp_path / "other_saturation.fits"
    ref.save(str(path))
    with pytest.raises(ReferenceFileError, match="DETECTOR NRCB4 does not match"):
        SaturationStep.call(str(sim.uncal_files[0]), override_saturation=str(path))


def test_wrong_reference_kind_is_an_error(sim, store):
    with pytest.raises(ReferenceFileError, match="is a GainModel, expected a SaturationModel"):
        SaturationStep.call(str(sim.uncal_files[0]), override_saturation=_ref(sim, "gain"))


def test_no_store_and_no_override_is_an_error(sim):
    set_store(None)
    with pytest.raises(ReferenceFileError, match="no CRDS cache"):
        SaturationStep.call(str(sim.uncal_files[0]))


def test_subarray_data_use_the_matching_part_of_a_larger_reference(sim, store, tmp_path):
    """A 16x16 subarray at SUBSTRT (9, 5) uses ref[4:20, 8:24] of the 32x32 reference."""
    full = datamodels.open(str(sim.uncal_files[0]))
    sub = full.copy()
    sub.data = full.data[..., 4:20, 8:24].copy()
    sub.meta.subarray.xstart, sub.meta.subarray.ystart = 9, 5
    sub.meta.subarray.xsize = sub.meta.subarray.ysize = 16
    sub.meta.subarray.name = "SUB16"
    out = SaturationStep.call(sub, override_saturation=_ref(sim, "saturation"))
    thresh = fits.getdata(_ref(sim, "saturation"))[4:20, 8:24].astype(np.float32)
    gdq = np.zeros(sub.data.shape, np.uint8)
    pdq = np.zeros((16, 16), np.uint32)
    flag_saturation(sub.data, gdq, pdq, thresh)
    np.testing.assert_array_equal(out.groupdq, gdq)
    # a subarray the reference does not cover
    sub.meta.subarray.xstart = 20
    with pytest.raises(ReferenceFileError, match="does not cover"):
        SaturationStep.call(sub, override_saturation=_ref(sim, "saturation"))


def _asdf_hdu() -> fits.BinTableHDU:
    import asdf

    buf = io.BytesIO()
    asdf.AsdfFile({"meta": {"model_type": "x"}}).write_to(buf)
    raw = np.frombuffer(buf.getvalue(), np.uint8)
    col = fits.Column("ASDF_METADATA", f"{raw.size}B", array=raw[None, :])
    return fits.BinTableHDU.from_columns([col], name="ASDF")


def test_stdatamodels_layout_files(sim, store, tmp_path):
    """An uncal and a reference in the layouts STScI's stdatamodels writes."""
    # uncal: Level1bModel, uint16 SCI with BZERO, GROUP/INT_TIMES tables, ASDF extension
    with fits.open(sim.uncal_files[0]) as hdul:
        hdul[0].header["DATAMODL"] = "Level1bModel"
        hdul.append(_asdf_hdu())
        uncal = tmp_path / "jw01234001001_02101_00001_nrca1_uncal.fits"
        hdul.writeto(uncal)
    # saturation reference: DQ stored with its own bit numbering described by DQ_DEF
    thresh = fits.getdata(_ref(sim, "saturation")).astype(np.float32)
    dq = np.zeros((SIZE, SIZE), np.uint32)
    dq[3, 7] = 1  # bit 0 is NO_SAT_CHECK in this file's DQ_DEF
    primary = fits.PrimaryHDU()
    for key, value in fits.getheader(_ref(sim, "saturation")).items():
        if key not in ("SIMPLE", "BITPIX", "NAXIS", "EXTEND", "HISTORY", "COMMENT"):
            primary.header[key] = value
    dq_def = fits.BinTableHDU.from_columns([
        fits.Column("BIT", "J", array=np.array([0])),
        fits.Column("VALUE", "J", array=np.array([1])),
        fits.Column("NAME", "40A", array=np.array(["NO_SAT_CHECK"])),
        fits.Column("DESCRIPTION", "80A", array=np.array(["no saturation check"]))],
        name="DQ_DEF")
    ref = tmp_path / "jwst_nircam_saturation_9999.fits"
    fits.HDUList([primary, fits.ImageHDU(thresh, name="SCI"),
                  fits.ImageHDU(dq.astype(np.int32), name="DQ"), dq_def,
                  _asdf_hdu()]).writeto(ref)
    out = SaturationStep.call(str(uncal), override_saturation=str(ref))
    assert out.pixeldq[3, 7] & np.uint32(2097152)  # NO_SAT_CHECK, remapped from bit 0
    assert out.meta.ref_file.saturation.name.endswith("jwst_nircam_saturation_9999.fits")


def test_group_scale_rescales_when_divisor_differs(sim, store):
    model = datamodels.open(str(sim.uncal_files[0])).copy()
    model.meta.exposure.nframes = 3
    model.meta.exposure.frame_divisor = 4
    out = GroupScaleStep.call(model)
    assert out.meta.cal_step.group_scale == "COMPLETE"
    np.testing.assert_allclose(out.data, model.data * 4 / 3, rtol=1e-6)


def test_jump_skipped_with_two_groups(sim, store):
    model = datamodels.open(str(sim.uncal_files[0])).copy()
    model.data = model.data[:, :2].copy()
    model.meta.exposure.ngroups = 2
    out = JumpStep.call(model)
    assert out.meta.cal_step.jump == "SKIPPED"
    assert not np.any(out.groupdq & 4)


def test_jump_records_primecrs(sim, store):
    out = JumpStep.call(str(sim.uncal_files[0]))
    n = np.count_nonzero(out.groupdq & 4)
    assert n > 0
    assert out.meta.exposure.primary_cosmic_rays > 0


def _calibrated(sim):
    model = datamodels.open(str(sim.uncal_files[0]))
    for cls in (DQInitStep, SaturationStep, SuperbiasStep, RefPixStep, LinearityStep,
                DarkCurrentStep, JumpStep):
        model = cls.call(model)
    return model


def test_ramp_fit_products_and_group_range(sim, store):
    ramp = _calibrated(sim)
    rate, ints = RampFitStep.call(ramp)
    assert isinstance(rate, datamodels.ImageModel) and isinstance(ints, datamodels.CubeModel)
    assert rate.meta.bunit_data == "DN/s" and ints.data.shape == (1, SIZE, SIZE)
    assert rate.meta.exposure.gain_factor == 1.0  # GAINFACT copied from the gain reference
    good = np.isfinite(rate.data)
    np.testing.assert_allclose(rate.err[good] ** 2,
                               rate.var_poisson[good] + rate.var_rnoise[good], rtol=1e-5)
    # fitting groups 1..3 only gives a larger read-noise variance
    short, _ = RampFitStep.call(ramp, firstgroup=1, lastgroup=3)
    both = good & np.isfinite(short.data) & (rate.var_rnoise > 0)
    assert np.all(short.var_rnoise[both] > rate.var_rnoise[both])
    with pytest.raises(ValidationError, match="firstgroup=3 is after lastgroup=1"):
        RampFitStep.call(ramp, firstgroup=3, lastgroup=1)
    with pytest.raises(ValidationError, match="LIKELY"):
        RampFitStep.call(ramp, algorithm="LIKELY")


def test_ramp_fit_all_saturated_and_all_nan(sim, store):
    ramp = _calibrated(sim).copy()
    ramp.groupdq[:] |= np.uint8(2)
    rate, ints = RampFitStep.call(ramp)
    assert np.isnan(rate.data).all() and np.all((rate.dq & 3) == 3)
    assert np.isnan(ints.data).all()
    ramp.data[:] = np.nan
    ramp.groupdq[:] = 0
    with pytest.raises(StepInputError, match="every value of the ramp is NaN"):
        RampFitStep.call(ramp)


def test_gain_scale_factor_and_skip(sim, store, tmp_path):
    ramp = _calibrated(sim)
    rate, _ = RampFitStep.call(ramp)
    rate.meta.exposure.gain_factor = 2.0
    scaled = GainScaleStep.call(rate)
    np.testing.assert_allclose(scaled.data, rate.data * 2, rtol=1e-6)
    np.testing.assert_allclose(scaled.var_rnoise, rate.var_rnoise * 4, rtol=1e-6)
    # no GAINFACT in the data nor in the gain reference
    gain = datamodels.open(_ref(sim, "gain")).copy()
    gain.meta.exposure.gain_factor = None
    gain.save(str(tmp_path / "gain_nofact.fits"))
    rate.meta.exposure.gain_factor = None
    out = GainScaleStep.call(rate, override_gain=str(tmp_path / "gain_nofact.fits"))
    assert out.meta.cal_step.gain_scale == "SKIPPED"
    np.testing.assert_array_equal(out.data, rate.data)


def test_dark_output_and_average_dark_current(sim, store, tmp_path):
    model = datamodels.open(str(sim.uncal_files[0]))
    out = DarkCurrentStep.call(model, dark_output=str(tmp_path / "dark_used.fits"),
                               average_dark_current=0.5)
    np.testing.assert_array_equal(out.average_dark_current, 0.5)
    with datamodels.open(tmp_path / "dark_used.fits") as dark:
        ref = fits.getdata(_ref(sim, "dark"))
        np.testing.assert_allclose(dark.data, ref[:5], rtol=1e-6)
    np.testing.assert_allclose(out.data, model.data - ref[:5], atol=1e-3)


def test_user_supplied_dq(sim, store, tmp_path):
    extra = np.zeros((SIZE, SIZE), np.int32)
    extra[5, 6] = 1024  # DEAD
    fits.PrimaryHDU(extra).writeto(tmp_path / "user_dq.fits")
    out = DQInitStep.call(str(sim.uncal_files[0]), user_supplied_dq=str(tmp_path / "user_dq.fits"))
    assert out.pixeldq[5, 6] & 1024
    with pytest.raises(StepInputError, match="does not exist"):
        DQInitStep.call(str(sim.uncal_files[0]), user_supplied_dq=str(tmp_path / "nope.fits"))


def test_refpix_sirs_is_refused(sim, store):
    with pytest.raises(ValidationError, match="sirs"):
        RefPixStep.call(str(sim.uncal_files[0]), refpix_algorithm="sirs")


def test_input_file_is_never_modified(sim, store, tmp_path):
    path = tmp_path / sim.uncal_files[0].name
    shutil.copy(sim.uncal_files[0], path)
    before = path.read_bytes()
    for cls, _, _ in RAMP_STEPS:
        cls.call(str(path))
    assert path.read_bytes() == before


def test_refpix_removes_bias_drifts(sim, store):
    model = SuperbiasStep.call(DQInitStep.call(str(sim.uncal_files[0])))
    refrows = np.zeros((SIZE, SIZE), bool)
    refrows[:4] = refrows[-4:] = True
    refrows[:, :4] = refrows[:, -4:] = False
    before = model.data[0][:, refrows].mean(axis=1)
    out = RefPixStep.call(model)
    assert out.meta.cal_step.refpix == "COMPLETE"
    after = out.data[0][:, refrows].mean(axis=1)
    rn = 10.0 / np.sqrt(2) / np.sqrt(refrows.sum())  # noise of a mean of reference pixels
    assert np.all(np.abs(before) > 20 * rn)  # the simulator's offsets are tens of DN
    assert np.all(np.abs(after) < 5 * rn)
