"""Small real-format exposures and a CRDS cache jwst can run on (helpers for tests/engines).

The exposures are the simulator's NIRCam ramps (256x256 subarray, 5 groups) re-written by
STScI's stdatamodels (jwst reads the ASDF extension that stdatamodels writes and the simulator
does not). The cache is the simulator's, plus what jwst needs and it lacks, each in a derived
context (the cache's operational one):

* a DISTORTION and a FILTEROFFSET reference written by stdatamodels, in place of the
  simulator's own (with ``simulator_wcs`` the simulator's are kept: they are the WCS its scene
  was drawn through, and only with them do ``V2_REF``/``V3_REF`` and ``RA_REF``/``DEC_REF``
  fall on the detector, where jwst's resample measures its output pixel scale);
* ``N/A`` rules for the reference types jwst's steps declare and the simulator's context does
  not name at all (``reset``, ``rscd``, the NIRSpec/NIRISS optics types, ...): CRDS answers
  "unknown reference type" for those, and jwst's pipelines prefetch every declared type.
"""

from __future__ import annotations

import shutil
import sys
import warnings
from pathlib import Path

FORMATS = Path(__file__).parent.parent / "formats"
ROOTS = ("jw01234001001_02101_00001_nrca1", "jw01234001001_02101_00002_nrca1")
PRODUCT = "jw01234-o001_t001_nircam_clear-f200w"


def missing_reftypes(cache: Path, context: str, instrument: str = "NIRCAM") -> list[str]:
    """Reference types jwst's Detector1, Image2 and Image3 steps declare (their
    ``reference_file_types``) that ``context`` names no rule or N/A for."""
    from jwst.pipeline import Detector1Pipeline, Image2Pipeline, Image3Pipeline

    from jwpipe.references.cache_writer import read_selector

    imap = read_selector(cache, read_selector(cache, context)[instrument])
    declared = {t for p in (Detector1Pipeline, Image2Pipeline, Image3Pipeline)
                for c in p.step_defs.values() for t in c.reference_file_types}
    return sorted(declared - set(imap))


def make_field(root: Path, size: int = 256, ngroups: int = 5,
               simulator_wcs: bool = False) -> dict:
    """Simulate two dithered exposures, re-write them with stdatamodels, complete the cache;
    return the paths.

    With ``simulator_wcs`` the cache keeps the simulator's own DISTORTION and FILTEROFFSET
    (the ones its scene was drawn through, so the WCS is the data's true one and ``RA_REF``,
    ``DEC_REF`` fall on the detector) instead of the stdatamodels-written test references.
    """
    sys.path.insert(0, str(FORMATS))
    from formats_data import write_distortion, write_filteroffset
    from stdatamodels.jwst import datamodels as sdm

    from jwpipe.references.cache_writer import derive_context, install_reference, rule_from_file
    from jwpipe.simulate import simulate_field

    sim = simulate_field(root / "sim", n_exposures=2, size=size, ngroups=ngroups, seed=3,
                         overwrite=True)
    cache = sim.store_dir
    made = root / "made"
    made.mkdir()
    rules = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # schema warnings about simulated keyword values
        written = [write_distortion(made / "jwst_nircam_distortion_0101.asdf"),
                   write_filteroffset(made / "jwst_nircam_filteroffset_0102.asdf",
                                      [{"filter": "F200W", "pupil": "CLEAR",
                                        "column_offset": 0.0, "row_offset": 0.0}])]
        for path in written:
            rule = rule_from_file(install_reference(cache, "NIRCAM", path), ("DETECTOR",))[1]
            rules[rule.reftype] = [rule]
        with_wcs = sim.context if simulator_wcs else derive_context(cache, sim.context,
                                                                    {"NIRCAM": rules})
        lacking = missing_reftypes(cache, with_wcs)
        context = derive_context(cache, with_wcs, {"NIRCAM": {t: "N/A" for t in lacking}},
                                 operational=True)
        inputs = root / "inputs"
        inputs.mkdir()
        for uncal in sim.uncal_files:
            with sdm.Level1bModel(str(uncal)) as model:
                model.save(str(inputs / uncal.name))
    asn = inputs / sim.asn_image3.name
    shutil.copy(sim.asn_image3, asn)
    return {"inputs": inputs, "asn": asn, "cache": cache, "context": context,
            "lacking": lacking, "sim_context": sim.context}


#: MIRI and NIRISS imaging exposures written by stdatamodels: (root, instrument, detector,
#: EXP_TYPE, READPATT, filter, pupil, frame time in s, full-frame shape of the references).
OTHER_IMAGERS = {
    "MIRI": ("jw01234002001_02101_00001_mirimage", "MIRIMAGE", "MIR_IMAGE", "FASTR1", "F770W",
             None, 2.775, (1024, 1032)),
    "NIRISS": ("jw01234003001_02101_00001_nis", "NIS", "NIS_IMAGE", "NISRAPID", "CLEAR",
               "F150W", 10.737, (2048, 2048)),
}


def _reference_meta(model, reftype: str, instrument: str, detector: str):
    m = model.meta
    m.reftype, m.author, m.pedigree, m.telescope = reftype, "jwpipe tests", "GROUND", "JWST"
    m.instrument.name, m.instrument.detector = instrument, detector
    m.useafter, m.description = "2022-01-01T00:00:00", f"test {reftype}"
    m.subarray.name, m.subarray.xstart, m.subarray.ystart = "FULL", 1, 1
    return model


def write_other_imager(folder: Path, instrument: str, shape=(64, 64), ngroups: int = 6,
                       seed: int = 0) -> tuple[Path, list[Path]]:
    """A MIRI or NIRISS imaging ``_uncal`` (a 64x64 subarray with a Poisson ramp) and its GAIN
    and READNOISE references, all written by stdatamodels."""
    import numpy as np
    from stdatamodels.jwst import datamodels as sdm

    root, detector, exp_type, readpatt, filt, pupil, tframe, full = OTHER_IMAGERS[instrument]
    rng = np.random.default_rng(seed)
    ramp = 1000 + np.cumsum(rng.poisson(50.0, (1, ngroups, *shape)), axis=1)
    model = sdm.Level1bModel(data=ramp.astype(np.uint16))
    m = model.meta
    m.telescope, m.instrument.name, m.instrument.detector = "JWST", instrument, detector
    m.instrument.filter = filt
    if pupil:
        m.instrument.pupil = pupil
    m.exposure.type, m.exposure.readpatt = exp_type, readpatt
    m.exposure.nints, m.exposure.ngroups, m.exposure.nframes, m.exposure.groupgap = \
        1, ngroups, 1, 0
    m.exposure.frame_time = m.exposure.group_time = tframe
    m.exposure.integration_time = tframe * ngroups
    m.exposure.start_time, m.exposure.mid_time, m.exposure.end_time = \
        59800.0, 59800.001, 59800.002
    m.observation.date, m.observation.time = "2023-06-01", "12:00:00"
    m.observation.program_number, m.observation.observation_number = "01234", "002"
    m.observation.visit_number = "001"
    m.subarray.name, m.subarray.xstart, m.subarray.ystart = "SUB64", 1, 1
    m.subarray.xsize, m.subarray.ysize = shape[1], shape[0]
    m.subarray.fastaxis, m.subarray.slowaxis = 1, 2
    folder.mkdir(parents=True, exist_ok=True)
    uncal = folder / f"{root}_uncal.fits"
    refs = [folder / f"jwst_{instrument.lower()}_{t}_0001.fits" for t in ("gain", "readnoise")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save(str(uncal))
        _reference_meta(sdm.GainModel(data=np.full(full, 5.0, np.float32)), "GAIN",
                        instrument, detector).save(str(refs[0]))
        _reference_meta(sdm.ReadnoiseModel(data=np.full(full, 10.0, np.float32)), "READNOISE",
                        instrument, detector).save(str(refs[1]))
    return uncal, refs


def other_imager_cache(cache: Path, refs: dict[str, list[Path]]) -> str:
    """A CRDS cache for MIRI and NIRISS: their GAIN and READNOISE, every other type jwst's
    imaging steps declare N/A (so those steps skip themselves, in a workflow as in process)."""
    from jwst.pipeline import Detector1Pipeline, Image2Pipeline, Image3Pipeline

    from jwpipe.references.cache_writer import install_reference, rule_from_file, write_context

    declared = {t for p in (Detector1Pipeline, Image2Pipeline, Image3Pipeline)
                for c in p.step_defs.values() for t in c.reference_file_types}
    rules: dict[str, dict] = {}
    for instrument, files in refs.items():
        types: dict = {t: "N/A" for t in sorted(declared)}
        for path in files:
            rule = rule_from_file(install_reference(cache, instrument, path), ("DETECTOR",))[1]
            types[rule.reftype] = [rule]
        rules[instrument] = types
    return write_context(cache, rules)
