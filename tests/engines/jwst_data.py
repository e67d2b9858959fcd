"""Small real-format exposures and a CRDS cache jwst can run on (helpers for tests/engines).

The exposures are the simulator's NIRCam ramps (256x256 subarray, 5 groups) re-written by
STScI's stdatamodels (jwst reads the ASDF extension that stdatamodels writes and the simulator
does not). The cache is the simulator's, plus what jwst needs and it lacks, each in a derived
context (the cache's operational one):

* a DISTORTION and a FILTEROFFSET reference written by stdatamodels (the simulator marks both
  N/A: jwpipe's assign_wcs falls back on a gnomonic WCS, jwst's cannot);
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


def make_field(root: Path, size: int = 256, ngroups: int = 5) -> dict:
    """Simulate two dithered exposures, re-write them with stdatamodels, complete the cache;
    return the paths."""
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
        with_wcs = derive_context(cache, sim.context, {"NIRCAM": rules})
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
