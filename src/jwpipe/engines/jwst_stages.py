"""STScI's jwst pipelines as workflow stages (``make-workflow --engine jwst``).

The planner (:mod:`jwpipe.workflow.plan`) knows steps only through their declarations. Here
those come from jwst itself: each pipeline class is found from its ``class_alias``
(``calwebb_detector1`` ...) through stpipe's registry of the ``stpipe.steps`` entry points; its
steps are its ``step_defs``; each step's reference types are its ``reference_file_types``; its
parameters are its ``spec`` merged with CRDS ``pars-*`` references, the user's parameter file
and ``--steps.<step>.<par>`` by stpipe's own ``build_config`` (jwst's precedence, because it is
jwst's code).

jwst decides the order of its steps in code (``Detector1Pipeline.process`` branches on the
instrument; Image2 and Image3 call some steps only in some cases). That order is stated as data
in :data:`STAGES`, the one place it is written down; ``tests/engines`` checks it against the
steps a full in-process ``Pipeline.call`` runs on the same input, and checks that every name
in it is one of the pipeline's ``step_defs`` and every ``step_defs`` entry is either planned or
listed with the reason it is not.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from jwpipe.errors import WorkflowError
from jwpipe.stpipe.outputs import Output

__all__ = ["CHAINS", "STAGES", "applicable_order", "chain_for", "inserted_step",
           "jwst_stages", "planned_order", "side_order"]

#: Steps every Detector1 branch runs after the instrument-specific part.
_DETECTOR1_TAIL = ("charge_migration", "jump", "picture_frame", "clean_flicker_noise",
                   "persistence", "ramp_fit", "gain_scale")

#: What ``Spec2Pipeline.process_exposure_product`` calls for every exposure type before the
#: branch on EXP_TYPE (``imprint_subtract`` and ``bkg_subtract`` on the science member alone).
_SPEC2_HEAD = ("assign_wcs", "badpix_selfcal", "msa_flagging", "clean_flicker_noise",
               "imprint_subtract", "bkg_subtract")
#: Its branches on EXP_TYPE up to the ``_cal`` product (``_process_grism``,
#: ``_process_nirspec_msa_slits``, ``_process_miri_wfss``, ``_process_nirspec_slits``,
#: ``_process_niriss_soss``, and ``_process_common`` for every other type), as
#: (exposure types, steps). NRS_MSASPEC then repeats wavecorr, flat_field, pathloss and photom
#: on the fixed slits an MSA exposure may hold, inside the same jobs.
_SPEC2_BRANCHES = (
    (("NRC_TSGRISM", "NIS_WFSS", "NRC_GRISM", "NRC_WFSS"),
     ("flat_field", "extract_2d", "srctype", "straylight", "fringe", "pathloss", "barshadow",
      "wfss_contam", "photom")),
    (("NRS_MSASPEC",),
     ("extract_2d", "srctype", "master_background_mos", "wavecorr", "flat_field", "pathloss",
      "barshadow", "photom")),
    (("MIR_WFSS",), ("flat_field", "extract_2d", "srctype", "pathloss", "photom")),
    (("NRS_FIXEDSLIT", "NRS_BRIGHTOBJ", "NRS_LAMP", "NRS_AUTOWAVE", "NRS_AUTOFLAT"),
     ("extract_2d", "srctype", "master_background_mos", "wavecorr", "flat_field", "pathloss",
      "barshadow", "photom")),
    (("NIS_SOSS",), ("srctype", "flat_field", "straylight", "fringe", "pathloss", "barshadow")),
    ((None,), ("srctype", "targ_centroid", "straylight", "flat_field", "fringe", "pathloss",
               "barshadow", "photom", "residual_fringe")),
)
_WFSS = ("NIS_WFSS", "NRC_GRISM", "NRC_WFSS", "MIR_WFSS")
#: The exposure types each Spec2 step applies to (``Spec2Pipeline._step_verification`` sets
#: ``skip`` for every other type, in code); steps not named apply to every type.
#: ``bkg_subtract`` applies to the types jwst subtracts a reference background from
#: (background members, the other case, are refused by workflows); ``imprint_subtract`` needs
#: imprint members, which workflows refuse, so it applies to none.
SPEC2_APPLIES_TO: dict[str, tuple[str, ...]] = {
    "msa_flagging": ("NRS_MSASPEC", "NRS_IFU", "NRS_LAMP", "NRS_AUTOFLAT", "NRS_AUTOWAVE"),
    "clean_flicker_noise": ("NRS_MSASPEC", "NRS_IFU", "NRS_FIXEDSLIT", "NRS_BRIGHTOBJ"),
    "bkg_subtract": ("NIS_WFSS", "NRC_GRISM", "NRC_WFSS", "NIS_SOSS", "MIR_WFSS"),
    "imprint_subtract": (),
    "straylight": ("MIR_MRS",), "residual_fringe": ("MIR_MRS",), "fringe": ("MIR_MRS",),
    "targ_centroid": ("MIR_LRS-FIXEDSLIT", "MIR_LRS-SLITLESS"),
    "pathloss": ("MIR_LRS-FIXEDSLIT", "NRS_FIXEDSLIT", "NRS_MSASPEC", "NRS_IFU", "NIS_SOSS"),
    "barshadow": ("NRS_MSASPEC",), "master_background_mos": ("NRS_MSASPEC",),
    "wfss_contam": _WFSS,
}
#: What ``Spec2Pipeline.process_exposure_product`` runs after ``_cal``, on a copy of it: the
#: side chain, in order, each step taking the previous one's product (``_cal`` for the first);
#: nothing downstream reads it. ``resample_spec`` (``_s2d``) and ``cube_build`` (``_s3d``)
#: apply only to the types ``SPEC2_SIDE_APPLIES_TO`` names (jwst also resamples NIRSpec
#: slit line lamps, a lamp-state decision not planned); ``extract_1d`` (``_x1d``) to every
#: type but NIS_SOSS (jwst runs photom on its _x1d) and NRS_MSASPEC (jwst extracts its fixed
#: slits apart), which are not planned.
_SPEC2_SIDE = ("adaptive_trace_model", "pixel_replace", "resample_spec", "cube_build",
               "extract_1d")
SPEC2_SIDE_APPLIES_TO: dict[str, tuple[str, ...]] = {
    "resample_spec": ("NRS_FIXEDSLIT", "NRS_MSASPEC", "MIR_LRS-FIXEDSLIT"),
    "cube_build": ("MIR_MRS", "NRS_IFU"),
    "extract_1d": (*(t for types, _ in _SPEC2_BRANCHES for t in types
                     if t not in (None, "NIS_SOSS", "NRS_MSASPEC")),
                   "MIR_LRS-FIXEDSLIT", "MIR_LRS-SLITLESS", "MIR_MRS", "NRS_IFU"),
}
#: The product suffix of each side step (jwst's names); the others are suffixed by their name.
SPEC2_SIDE_SUFFIXES = {"resample_spec": "s2d", "cube_build": "s3d", "extract_1d": "x1d"}
#: Parameters ``Spec2Pipeline.process`` sets on its steps in code, outside their spec.
SPEC2_SETS = {"cube_build": {"skip_dqflagging": True}}
#: The datamodel a step's input is opened as, by EXP_TYPE, where jwst converts it in code
#: (``_process_common`` makes the MIRI LRS image a SlitModel, with the subarray's corner and
#: size as the slit's, before srctype).
INPUT_AS = {("srctype", "MIR_LRS-FIXEDSLIT"): "SlitModel",
            ("srctype", "MIR_LRS-SLITLESS"): "SlitModel"}

#: Exposure types whose integrations level-3 stages take (coron3, ami3, imaging tso3): Image2
#: makes their _calints from _rateints.
INTS_IMAGING_TYPES = ("NRC_CORON", "MIR_LYOT", "MIR_4QPM", "NIS_AMI", "NRC_TSIMAGE", "MIR_IMAGE")

#: The time-series exposure types Spec2 plans from ``_rateints``: jwst's tso-spec2 associations
#: (``Asn_Lv2SpecTSO``: NIRCam grism, NIRSpec BOTS, NIRISS SOSS, and MIRI LRS slitless in
#: older pools) and spec2 associations of ``_rateints`` (jwst 3.0's rules put MIRI LRS slitless
#: time series, with their TA image, there). For them Spec2 runs the same head and EXP_TYPE
#: branch as for one integration (a CubeModel throughout), names the product ``_calints`` and
#: the extraction ``_x1dints``, and resamples nothing (``resample_spec`` and ``cube_build`` are
#: not called for a CubeModel). NIS_SOSS extracts and then runs photom on the extraction:
#: planned up to its ``_calints``, not to its ``_x1dints`` (not planned yet).
TSO_SPEC2_TYPES = ("MIR_LRS-SLITLESS", "NRC_TSGRISM", "NRS_BRIGHTOBJ", "NIS_SOSS")
TSO_SPEC2_SIDE_APPLIES_TO: dict[str, tuple[str, ...]] = {
    "resample_spec": (), "cube_build": (),
    "extract_1d": tuple(t for t in TSO_SPEC2_TYPES if t != "NIS_SOSS"),
}

#: The spectroscopic time-series types calwebb_tso3 plans (NIS_SOSS: photom on each of its
#: extractions, not planned yet).
_TSO3_SPECTRA = ("MIR_LRS-SLITLESS", "NRC_TSGRISM", "NRS_BRIGHTOBJ")

#: The level-3 stages of coronagraphy, time series and aperture masking interferometry
#: (calwebb_coron3, calwebb_tso3, calwebb_ami3), whose ``process`` passes models between its
#: steps in code, stated as data. Besides the keys of :data:`STAGES` entries: ``roles``, the
#: association member types the stage uses; ``exp_types``, the only EXP_TYPEs it plans;
#: ``sets``, parameters ``process`` sets in code (over any other value); ``flow``, per step,
#: ``units`` (one unit per member of these roles, or one per ``product``), ``args`` (its
#: positional arguments: ``member``, the member's current file; ``member:<step>``, its output
#: of ``<step>``; ``product:<step>``, the product's output of ``<step>``; ``role:<role>``,
#: the current files of the members of ``<role>`` as one ModelContainer, ``...:integrations``
#: as a ModelLibrary of their integrations, ``...:each`` one call per file with the tables
#: stacked, ``...:spectra`` one call per file with the spectra gathered into one
#: TSOMultiSpecModel with the members' INT_TIMES, their metadata blended;
#: ``pair:<role>:<step>``, the output of ``<step>`` of the ``<role>`` member at this
#: member's position), ``outputs`` ((suffix, kind) as jwst names them), ``advance``
#: (whether the output becomes the member's current file) and ``prepare`` (argument index ->
#: the step whose in-place change to that model, inside the pipeline, the argument gets
#: first, with that step's parameters) and ``blend`` (the role whose members' metadata
#: ``process`` blends into the step's product, as read: jwst's ModelBlender) and
#: ``association`` (the product records the association's pool and file names). Read by
#: :mod:`jwpipe.engines.jwst_level3`.
LEVEL3_FLOW_STAGES: tuple[dict[str, Any], ...] = (
    {
        "alias": "calwebb_coron3",
        "scope": "product",
        "input_suffix": "calints",
        "product_suffixes": (),
        "roles": ("science", "psf"),
        "order": {None: ("outlier_detection", "stack_refs", "align_refs", "klip",
                         "resample")},
        "not_planned": {},
        "outputs": {},
        # Coron3Pipeline.process sets resample.blendheaders = False in code (it blends the
        # science headers itself); outlier_detection infers its "coron" mode from the
        # exposure type, as the pipeline sets it.
        "sets": {"resample": {"blendheaders": False}},
        "flow": {
            "outlier_detection": {"units": ("psf", "science"), "args": ("member",),
                                  "outputs": (("crfints", "file"),), "advance": True},
            "stack_refs": {"units": "product", "args": ("role:psf",),
                           "outputs": (("psfstack", "file"),)},
            "align_refs": {"units": ("science",),
                           "args": ("member", "product:stack_refs"),
                           "outputs": (("psfalign", "file"),)},
            # inside the pipeline align_refs replaces the target's bad pixels in place (a
            # step with a parent works on its input), so klip sees the target as align_refs
            # left it: its first argument gets align_refs' median replacement first
            "klip": {"units": ("science",), "args": ("member", "member:align_refs"),
                     "prepare": {0: "align_refs"},
                     "outputs": (("psfsub", "file"),), "advance": True},
            # the science members' headers (as read) are blended into the _i2d's (HDRTAB)
            "resample": {"units": "product", "args": ("role:science:integrations",),
                         "blend": "science", "outputs": (("i2d", "file"),)},
        },
    },
    {
        "alias": "calwebb_tso3",
        "scope": "product",
        "input_suffix": "calints",
        "product_suffixes": (),
        "roles": ("science",),
        "order_keyword": "EXP_TYPE",
        "exp_types": ("NRC_TSIMAGE", "MIR_IMAGE", *_TSO3_SPECTRA),
        # Tso3Pipeline.process branches on the first member's EXP_TYPE: imaging TSO
        # photometry, else each member's spectra extracted into one _x1dints and its
        # white-light curve
        "order": {"NRC_TSIMAGE": ("outlier_detection", "tso_photometry"),
                  "MIR_IMAGE": ("outlier_detection", "tso_photometry"),
                  None: ("outlier_detection", "adaptive_trace_model", "pixel_replace",
                         "extract_1d", "white_light")},
        "not_planned": {"photom": "NIS_SOSS's photom on each extraction: not planned yet"},
        "outputs": {},
        "sets": {},
        "flow": {
            "outlier_detection": {"units": ("science",), "args": ("member",),
                                  "outputs": (("crfints", "file"),), "advance": True},
            # one table per product: each member's photometry, stacked in member order
            "tso_photometry": {"units": "product", "args": ("role:science:each",),
                               "outputs": (("phot", "table"),)},
            "adaptive_trace_model": {"units": ("science",), "args": ("member",),
                                     "outputs": (("adaptive_trace_model", "file"),),
                                     "advance": True},
            "pixel_replace": {"units": ("science",), "args": ("member",),
                              "outputs": (("pixel_replace", "file"),), "advance": True},
            # each member extracted, the spectra gathered in member order into one
            # TSOMultiSpecModel with the members' INT_TIMES, the extractions' metadata blended
            "extract_1d": {"units": "product", "args": ("role:science:spectra",),
                           "association": True, "outputs": (("x1dints", "file"),)},
            "white_light": {"units": "product", "args": ("product:extract_1d",),
                            "outputs": (("whtlt", "table"),)},
        },
    },
    {
        "alias": "calwebb_ami3",
        "scope": "product",
        "input_suffix": "calints",
        "product_suffixes": (),
        "roles": ("science", "psf"),
        "order": {None: ("ami_analyze", "ami_normalize")},
        "not_planned": {},
        "outputs": {},
        "sets": {},
        "flow": {
            "ami_analyze": {"units": ("science", "psf"), "args": ("member",),
                            "outputs": (("ami-oi", "file"), ("amimulti-oi", "file"),
                                        ("amilg", "file"))},
            # the i-th science member with the i-th psf member (jwst zips the two lists)
            "ami_normalize": {"units": ("science",),
                              "args": ("member:ami_analyze", "pair:psf:ami_analyze"),
                              "outputs": (("aminorm-oi", "file"),)},
        },
    },
)

#: The jwst pipelines a workflow chains, in stage order, with what their ``process`` decides in
#: code. ``order`` maps an instrument (None: every other one) to the steps ``process`` calls, in
#: order (steps whose ``skip`` resolves true are then left out by the planner, as jwst skips
#: them); ``not_planned`` lists the ``step_defs`` entries a workflow leaves out and why;
#: ``outputs`` declares steps whose results are not one file per input. (calwebb_image3 also
#: sets ``outlier_detection.mode = "imaging"``, an attribute outside the step's spec; the step
#: infers the same mode from the imaging exposure types of its input, so no job sets it.)
#: ``memory`` is each step's memory request (MB per MB of the exposure's float32 science array,
#: plus MB), measured with jwst 3.0 (docs/engines.md).
STAGES: tuple[dict[str, Any], ...] = (
    {
        "alias": "calwebb_detector1",
        "scope": "exposure",
        "input_suffix": "uncal",
        "product_suffixes": ("rate", "rateints"),
        "order": {
            "MIRI": ("group_scale", "dq_init", "emicorr", "saturation", "ipc", "firstframe",
                     "lastframe", "reset", "linearity", "rscd", "dark_current", "refpix",
                     *_DETECTOR1_TAIL),
            None: ("group_scale", "dq_init", "saturation", "ipc", "superbias", "refpix",
                   "linearity", "dark_current", *_DETECTOR1_TAIL),
        },
        "not_planned": {},
        "outputs": {"ramp_fit": (Output(), Output("rateints", "CubeModel"))},
    },
    {
        "alias": "calwebb_image2",
        "scope": "exposure",
        "input_suffix": "rate",
        "product_suffixes": ("cal",),
        "order": {None: ("assign_wcs", "flat_field", "photom")},
        "not_planned": {
            "bkg_subtract": "runs only for background members, which workflows refuse",
            "resample": "writes the per-exposure _i2d, a side product off the chain to _cal",
        },
        "outputs": {},
    },
    {
        "alias": "calwebb_image3",
        "scope": "product",
        "input_suffix": "cal",
        "product_suffixes": (),
        "order": {None: ("tweakreg", "skymatch", "outlier_detection", "resample",
                         "source_catalog")},
        "not_planned": {"assign_mtwcs": "moving-target exposures only (not planned yet)"},
        "outputs": {
            "outlier_detection": (Output("crf", stage_product=True),),
            "resample": (Output("i2d", per="product", stage_product=True),),
            "source_catalog": (Output("cat", "Table", per="product", stage_product=True),),
        },
    },
    {
        "alias": "calwebb_spec2",
        "scope": "exposure",
        "input_suffix": "rate",
        "product_suffixes": ("cal",),
        # keyed by EXP_TYPE (Spec2Pipeline branches on it), not INSTRUME
        "order_keyword": "EXP_TYPE",
        "order": {exp_type: (*_SPEC2_HEAD, *steps)
                  for types, steps in _SPEC2_BRANCHES for exp_type in types},
        "applies_to": SPEC2_APPLIES_TO,
        "side": {"order": _SPEC2_SIDE, "applies_to": SPEC2_SIDE_APPLIES_TO,
                 "suffixes": SPEC2_SIDE_SUFFIXES},
        "sets": SPEC2_SETS,
        "not_planned": {},
        "outputs": {},
        "asn_types": ("spec2", "nrslamp-spec2"),
    },
    {
        # calwebb_spec2 on a tso-spec2 association's _rateints: the same steps, other names
        "alias": "calwebb_spec2",
        "variant": "tso-spec2",
        "scope": "exposure",
        "input_suffix": "rateints",
        "product_suffixes": ("calints",),
        "order_keyword": "EXP_TYPE",
        "order": {exp_type: (*_SPEC2_HEAD, *steps) for types, steps in _SPEC2_BRANCHES
                  for exp_type in types if exp_type in TSO_SPEC2_TYPES}
        | {"MIR_LRS-SLITLESS": (*_SPEC2_HEAD, *_SPEC2_BRANCHES[-1][1])},  # _process_common
        "applies_to": SPEC2_APPLIES_TO,
        "side": {"order": _SPEC2_SIDE, "applies_to": TSO_SPEC2_SIDE_APPLIES_TO,
                 "suffixes": {"extract_1d": "x1dints"}},
        "sets": SPEC2_SETS,
        "not_planned": {},
        "outputs": {},
        # jwst 3.0 writes MIRI LRS slitless time series as spec2 associations of _rateints
        "asn_types": ("tso-spec2", "spec2"),
    },
    {
        # calwebb_image2 on the _rateints of the exposures level-3 stages take as _calints
        # (coronagraphy, AMI, imaging time series): no resample (jwst resamples 2-D images only)
        "alias": "calwebb_image2",
        "variant": "image2-ints",
        "scope": "exposure",
        "input_suffix": "rateints",
        "product_suffixes": ("calints",),
        "order_keyword": "EXP_TYPE",
        "order": dict.fromkeys(INTS_IMAGING_TYPES, ("assign_wcs", "flat_field", "photom")),
        "not_planned": {
            "bkg_subtract": "runs only for background members, which workflows refuse",
            "resample": "jwst resamples 2-D images only, not integrations",
        },
        "outputs": {},
        "asn_types": (),  # reached by walking back from coron3, tso3 or ami3 members
        "refusal": ("; a spectroscopic time series' _calints come from its tso-spec2 "
                    "association: plan that first, then tso3 from its _calints"),
    },
    {
        # Spec3Pipeline.process on one source's exposures (the single-source types): spectral
        # outlier detection on the members (their _crf), their resampled 2-D spectrum (_s2d)
        # and its extraction (_x1d); when resample_spec is skipped jwst extracts each member
        # and combines the spectra (_c1d) instead, a branch stated in ``exclusive``
        "alias": "calwebb_spec3",
        "scope": "product",
        "input_suffix": "cal",
        "product_suffixes": (),
        "order_keyword": "EXP_TYPE",
        "order": {"MIR_LRS-FIXEDSLIT": ("outlier_detection", "adaptive_trace_model",
                                        "pixel_replace", "resample_spec", "extract_1d",
                                        "combine_1d")},
        "exclusive": {"combine_1d": "resample_spec"},
        "not_planned": {
            "assign_mtwcs": "moving-target exposures only (not planned yet)",
            "master_background": "runs only with background members, which workflows refuse",
            "cube_build": "IFU types (MIR_MRS, NRS_IFU): not planned yet",
            "photom": "NIS_SOSS's photom on its extraction: not planned yet",
            "spectral_leak": "MIR_MRS only: not planned yet",
        },
        "outputs": {
            "outlier_detection": (Output("crf", stage_product=True),),
            "resample_spec": (Output("s2d", per="product", stage_product=True),),
            "extract_1d": (Output("x1d", stage_product=True),),
            "combine_1d": (Output("c1d", per="product", stage_product=True),),
        },
        "members_as": "container",  # as Spec3 holds them (jwst's spectral steps want one)
        "refused_roles": {"background": "master_background is not planned yet: run jwst's "
                                        "calwebb_spec3 on this association"},
        "refusal": ("; NIRSpec MOS and fixed-slit and WFSS (one product per source), IFU "
                    "cubes (MIR_MRS, NRS_IFU) and NIS_SOSS are not planned yet: run jwst's "
                    "calwebb_spec3 on their _cal files"),
        "asn_types": ("spec3",),
    },
    *LEVEL3_FLOW_STAGES,
)

#: The stage chains a jwst-engine workflow can be: imaging associations (image2, image3) run
#: Detector1, Image2, Image3; spectroscopic ones (spec2, spec3) Detector1, Spec2, Spec3.
CHAINS: dict[str, tuple[str, ...]] = {
    "imaging": ("calwebb_detector1", "calwebb_image2", "calwebb_image3"),
    "spectroscopy": ("calwebb_detector1", "calwebb_spec2", "calwebb_spec3"),
    # time series from the members' _rateints (as the association names them), or from their
    # _uncal through Detector1, whose ramp_fit writes the _rateints
    "tso-spec2": ("calwebb_detector1", "tso-spec2"),
    # level-3 stages of one association type each, from the members' _calints, or walking
    # back through Image2 on their _rateints and Detector1 on their _uncal
    **{info["alias"].removeprefix("calwebb_"): ("calwebb_detector1", "image2-ints",
                                                info["alias"])
       for info in LEVEL3_FLOW_STAGES},
}

#: Peak RSS of each jwst 3.0 step run as a workflow job, as (MB per MB of the exposure's
#: float32 science array as planned, MB): fitted to the job's own peak at 256x256x5
#: (1.25 MB) and 2048x2048x4 (64 MB) NIRCam exposures (``benchmarks/bench_jwst_engine.py``;
#: Image3 steps see two members). The request is this times :data:`HEADROOM`.
MEASURED_MEMORY: dict[str, tuple[float, float]] = {
    "group_scale": (1.5, 142), "dq_init": (2.3, 141), "saturation": (4.1, 144),
    "ipc": (1.8, 141), "superbias": (2.6, 141), "refpix": (3.4, 203), "linearity": (3.6, 142),
    "dark_current": (5.8, 141), "jump": (18.9, 167), "ramp_fit": (5.5, 170),
    "gain_scale": (2.5, 141), "assign_wcs": (1.3, 150), "flat_field": (3.8, 147),
    "photom": (2.1, 144), "tweakreg": (4.1, 225), "skymatch": (2.1, 146),
    "outlier_detection": (6.9, 157), "resample": (8.4, 151), "source_catalog": (5.9, 224),
    # level 3 from _calints, keyed "<pipeline>.<step>" (their outlier_detection runs per
    # member on integrations, Image3's per product): fitted to the job's peak on the tests'
    # members and on 320x320 NIRCam (20 integrations per coron3 member, 300 per tso3
    # segment) and 20-integration NIRISS SUB80 AMI (``benchmarks/bench_jwst_level3.py``)
    "calwebb_coron3.outlier_detection": (15.8, 134), "calwebb_coron3.stack_refs": (8.0, 132),
    "calwebb_coron3.align_refs": (27.9, 132), "calwebb_coron3.klip": (32.1, 133),
    "calwebb_coron3.resample": (9.3, 257), "calwebb_tso3.outlier_detection": (23.6, 153),
    "calwebb_tso3.tso_photometry": (6.3, 164), "calwebb_ami3.ami_analyze": (20.1, 259),
    "calwebb_ami3.ami_normalize": (0.0, 149),
    # MIRI LRS fixed slit, three exposures of 72x64 and of the 1024x1032 full frame, Spec2
    # from their _rate and Spec3 (the same benchmark, the larger fit of two runs); where the
    # imaging fit asks more, or the default does (the other Spec2 and Spec3 steps), that stays
    "calwebb_spec2.pathloss": (14.4, 141), "calwebb_spec2.photom": (13.1, 136),
    "calwebb_spec2.resample_spec": (34.9, 151), "calwebb_spec3.outlier_detection": (24.1, 161),
    "calwebb_spec3.resample_spec": (26.0, 159),
}
#: Steps not measured (MIRI-only, Image2 resample...): the largest non-jump Detector1 slope.
DEFAULT_MEMORY = (6.0, 200.0)
HEADROOM = 1.25


def _key(info: Mapping[str, Any]) -> str:
    """A :data:`STAGES` entry's name: its ``variant`` (``tso-spec2``: a pipeline run on other
    inputs), else its pipeline's alias."""
    return info.get("variant", info["alias"])


def _stage_info(key: str) -> Mapping[str, Any]:
    for stage in STAGES:
        if _key(stage) == key:
            return stage
    raise KeyError(key)


def planned_order(alias: str, instrument: str | None) -> list[str]:
    """The steps jwst's pipeline ``alias`` (or the :data:`STAGES` variant of that name) calls,
    in order, for data of ``instrument`` (or the stage's ``order_keyword``)."""
    info = _stage_info(alias)
    order = info["order"]
    mode = (instrument or "").upper()
    if mode not in order and None not in order:
        raise WorkflowError(f"{alias}: {mode or 'no EXP_TYPE'} is not one of the exposure "
                            f"types it plans ({', '.join(order)})" + info.get("refusal", ""))
    return list(order.get(mode, order.get(None, ())))


def applicable_order(alias: str, mode: str | None) -> list[str]:
    """:func:`planned_order` without the steps the pipeline skips in code for ``mode`` (Spec2:
    the steps :data:`SPEC2_APPLIES_TO` does not apply to this EXP_TYPE)."""
    info = _stage_info(alias)
    applies = info.get("applies_to", {})
    mode = (mode or "").upper()
    return [n for n in planned_order(alias, mode) if n not in applies or mode in applies[n]]


def side_order(alias: str, mode: str | None) -> list[tuple[str, str]]:
    """The side chain a stage runs after its product for ``mode`` (Spec2's EXP_TYPE), as
    (step, output suffix) in order: the steps of its ``side`` entry that apply to the mode."""
    side = _stage_info(alias).get("side")
    if not side:
        return []
    mode = (mode or "").upper()
    return [(n, side["suffixes"].get(n, n)) for n in side["order"]
            if n not in side["applies_to"] or mode in side["applies_to"][n]]


def _import(path: str) -> type:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def pipeline_class(alias: str) -> type:
    """jwst's pipeline class for ``alias``, found through stpipe's entry-point registry."""
    from stpipe.utilities import resolve_step_class_alias

    path = resolve_step_class_alias(alias)
    if path == alias:
        raise WorkflowError(f"jwst registers no step or pipeline called {alias!r}")
    return _import(path)


def _class_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__name__}"


def _reference_types(cls: type) -> tuple[str, ...]:
    """A step's ``reference_file_types``; for a step that is itself a pipeline (Spec2's
    ``master_background_mos``, where it is a property of the instance), its steps' types."""
    declared = cls.reference_file_types
    if isinstance(declared, (list, tuple)):
        return tuple(declared)
    return tuple(dict.fromkeys(t for sub in getattr(cls, "step_defs", {}).values()
                               for t in _reference_types(sub)))


def _step_adapter(name: str, cls: type, outputs: tuple[Output, ...],
                  stage: str | None = None) -> type:
    """What the planner reads about one jwst step: its jwst declarations plus the workflow's
    (its memory measured in the pipeline ``stage``, else as a step, else the default)."""
    memory = MEASURED_MEMORY.get(f"{stage}.{name}", MEASURED_MEMORY.get(name, DEFAULT_MEMORY))
    return type(cls.__name__, (), {
        "__module__": cls.__module__,
        "__doc__": f"Workflow declarations of jwst's {_class_path(cls)}.",
        "class_alias": cls.class_alias or name,
        "reference_file_types": _reference_types(cls),
        "prefetch_references": True,
        "outputs": outputs,
        "workflow_member_role": None,
        "workflow_memory": tuple(HEADROOM * v for v in memory),
        "jwst_class": cls,
    })


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name.removesuffix("Step")).lower()


def inserted_step(identifier: str, where: str) -> type:
    """A user's stpipe step inserted into a jwst-engine workflow, as the planner reads it.

    The class is an alias registered through the ``stpipe.steps`` entry points, or a dotted
    path under the same import allow-list as parameter-file classes (``JWPIPE_ALLOW_IMPORT``,
    ``--allow-import``). It writes one file per exposure, suffixed by its step name (the
    parameter-file entry's ``name``, else its ``class_alias`` or snake-case class name), with
    the model its step returns; its memory request is the engine's
    default; its parameters are resolved by stpipe (spec defaults, its CRDS ``pars-*``
    reference for the exposure, a parameter file, ``--steps.<name>.<par>``). Its scope is its
    place: each exposure in Detector1, Image2 or between them; inside Image3, the
    association's members as one ``ModelLibrary``, as jwst's Image3 steps get them.
    """
    from stpipe.utilities import resolve_step_class_alias

    from jwpipe.stpipe import registry
    from stpipe import Pipeline as StPipeline
    from stpipe import Step as StStep

    ident = identifier.strip()
    jwpipe_step = (f"{where} '{identifier}' is a jwpipe Step: a --engine jwst workflow runs "
                   "stpipe steps only (a jwst.stpipe.Step subclass); jwpipe steps run with "
                   "the jwpipe engine")
    try:
        path = resolve_step_class_alias(ident)
    except ValueError as exc:
        raise WorkflowError(f"{where}: {exc}") from None
    if path == ident:  # not a registered alias: a dotted path under the allow-list
        if ident.startswith("jwpipe.") or registry._builtin_by(ident) is not None:
            raise WorkflowError(jwpipe_step)
        allowed = registry._allowed_prefixes()
        if "." not in ident or not any(ident.startswith(p + ".") for p in allowed):
            raise WorkflowError(
                f"{where} '{identifier}' is not an stpipe step alias (stpipe.steps entry "
                "points) nor under an allowed module; allow its module with --allow-import "
                "yourpackage (environment: JWPIPE_ALLOW_IMPORT=yourpackage)")
    try:
        cls = _import(path)
    except (ImportError, AttributeError, ValueError) as exc:
        raise WorkflowError(f"{where} '{identifier}' cannot be imported: {exc}") from None
    from jwpipe.stpipe.step import Step as JwpipeStep

    if isinstance(cls, type) and issubclass(cls, JwpipeStep):
        raise WorkflowError(jwpipe_step)
    if not (isinstance(cls, type) and issubclass(cls, StStep)) or issubclass(cls, StPipeline):
        raise WorkflowError(f"{where} '{identifier}' is not an stpipe step (only a step, not a "
                            "pipeline, can be inserted)")
    alias = cls.class_alias or _snake(cls.__name__)
    # no declared suffix: its files are named by its step name (two insertions of one
    # class under two names write two files)
    adapter = _step_adapter(alias, cls, (Output(),))

    def workflow_parameters(_cls: type, config_file: str | None, overrides: Mapping[str, Any],
                            store: Any, dataset: Mapping[str, Any] | None = None
                            ) -> dict[str, Any]:
        from stpipe.exceptions import ValidationError

        from jwpipe.stpipe.config_file import load_parameter_file
        from stpipe import config_parser

        # The step's own parameter file is read by jwpipe's bounded loader (YAML, ASDF or
        # cfg, as for every -p file), not handed to stpipe, which reads ASDF and cfg only.
        kwargs = dict(load_parameter_file(config_file).parameters) if config_file else {}
        kwargs.update(overrides)
        try:
            with crds_environment(store), _quiet():
                config = _crds_pars(cls, dataset, store)
                given, _ = cls.build_config(None, **kwargs)
                config_parser.merge_config(config, given)
                config.pop("class", None)
                config.pop("name", None)
                pars = _plain(cls.from_config_section(config).get_pars())
        except (ValidationError, ValueError, OSError) as exc:
            raise WorkflowError(f"{where} {cls.__name__} parameters: {exc}") from None
        except Exception as exc:  # a user's step: whatever its own code raises, one line
            raise WorkflowError(f"{where} {cls.__name__} parameters: "
                                f"{type(exc).__name__}: {exc}") from None
        return pars

    adapter.workflow_scope = None  # each exposure, or in Image3 the members (ModelLibrary)
    adapter.workflow_parameters = classmethod(workflow_parameters)
    return adapter


def _crds_pars(cls: type, dataset: Mapping[str, Any] | None, store: Any) -> Any:
    """The step's CRDS ``pars-<class name, lower case>`` parameters for a dataset, looked up
    by stpipe's own ``get_config_from_reference`` (as a jwst pipeline does for its steps, from
    the input's CRDS parameters), in the planner's cache and context (inside
    :func:`crds_environment`); empty without a cache, without a rule, or with
    ``STPIPE_DISABLE_CRDS_STEPPARS``."""
    from stpipe import config_parser

    inner = getattr(store, "store", store)
    if not dataset or inner is None or not getattr(inner, "path", None):
        return config_parser.ConfigObj()
    from jwpipe.references.crds_cache import crds_parameters

    config = cls.get_config_from_reference(crds_parameters(dataset), crds_observatory="jwst")
    config.pop("class", None)
    config.pop("name", None)
    return config


def _stage_adapter(info: Mapping[str, Any]) -> type:
    jwst_cls = pipeline_class(info["alias"])
    declared = dict(jwst_cls.step_defs)
    for names in info["order"].values():
        unknown = [n for n in names if n not in declared]
        if unknown:
            raise WorkflowError(f"jwst's {jwst_cls.__name__} has no step {unknown[0]!r} "
                                f"(its step_defs: {', '.join(declared)}); this jwst is not "
                                "the one jwpipe's stage order was written for")
    step_defs = {name: _step_adapter(name, cls, info["outputs"].get(name, (Output(),)),
                                     info["alias"])
                 for name, cls in declared.items()}

    def step_names(cls: type, instrument: str | None = None) -> list[str]:
        return applicable_order(_key(info), instrument)

    def side_steps(cls: type, mode: str | None = None) -> list[tuple[str, str]]:
        return side_order(_key(info), mode)

    return type(jwst_cls.__name__, (), {
        "__module__": jwst_cls.__module__,
        "__doc__": f"Workflow stage running jwst's {_class_path(jwst_cls)} step by step.",
        "class_alias": info["alias"],
        "step_defs": step_defs,
        "step_names": classmethod(step_names),
        "workflow_group_name": classmethod(
            lambda cls: info["alias"].removeprefix("calwebb_")),
        "workflow_stage_scope": info["scope"],
        "workflow_input_suffix": info["input_suffix"],
        "workflow_product_suffixes": tuple(info["product_suffixes"]),
        "workflow_order_keyword": info.get("order_keyword", "INSTRUME"),
        "workflow_resolver": JwstResolver,
        "workflow_route_parameter_files": staticmethod(route_parameter_files),
        "workflow_finish_units": staticmethod(finish_units),
        "workflow_side_steps": classmethod(side_steps),
        "workflow_sets": info.get("sets", {}),
        "workflow_asn_types": info.get("asn_types"),
        "workflow_exclusive": info.get("exclusive", {}),
        "workflow_not_planned": info.get("not_planned", {}),
        "workflow_refused_roles": info.get("refused_roles", {}),
        "workflow_product_extra": staticmethod(_product_extra(info)),
        "jwst_class": jwst_cls,
        **(_flow_attributes(info) if "flow" in info else {}),
    })


def _product_extra(info: Mapping[str, Any]) -> Any:
    """What a product-scope stage adds to each unit file: how the job holds the members
    (``members_as``: Spec3's ModelContainer, else Image3's ModelLibrary), the association's
    pool and file names, which jwst's Spec3 records in every product, and the members' names
    as the association gives them (Spec3 keeps them on its models: the ``_cal`` names)."""
    members_as = info.get("members_as")

    def extra(roots: Any) -> dict[str, Any]:
        if members_as is None:
            return {}
        return {"jwst": {"members_as": members_as,
                         "association": dict(getattr(roots, "association", {})),
                         "names": [f"{root}_{info['input_suffix']}.fits" for root in roots]}}

    return extra


def _flow_attributes(info: Mapping[str, Any]) -> dict[str, Any]:
    """A level-3 stage of :data:`LEVEL3_FLOW_STAGES`: its member roles and its planner."""
    from jwpipe.engines.jwst_level3 import plan_flow_stage

    return {"workflow_member_roles": tuple(info["roles"]), "workflow_flow": info,
            "workflow_plan_product": staticmethod(plan_flow_stage)}


def jwst_stages(chain: str = "imaging") -> list[type]:
    """The stages of a jwst-engine workflow as jwst declares them: the :data:`CHAINS` entry
    ``chain`` (Detector1, Image2, Image3 by default)."""
    return [_stage_adapter(_stage_info(key)) for key in CHAINS[chain]]


def _chain_key(kind: Any, asn: Any) -> str:
    """An association's :data:`CHAINS` key, or its pipeline's alias: a time series is a
    ``tso-spec2`` association, or a ``spec2`` one whose science members are ``_rateints``
    (jwst 3.0's rules put MIRI LRS slitless time series, with their TA image, in ``spec2``
    associations); Spec2 takes the TSO branch for the integrations' CubeModel."""
    if kind.asn_type == "spec2":
        names = [m.expname for p in asn.products for m in p.members if m.exptype == "science"]
        if names and all(n.lower().endswith("_rateints.fits") for n in names):
            return "tso-spec2"
    return kind.asn_type if kind.asn_type in CHAINS else kind.jwst_pipeline


def chain_for(asn_paths: Sequence[str | os.PathLike[str]]) -> str:
    """The chain a jwst-engine workflow of these associations needs: ``tso-spec2``,
    ``coron3``, ``tso3``, ``ami3`` when every readable one is of that type (``tso-spec2`` also
    for spec2 associations of ``_rateints``); else the first chain holding every one's
    pipeline (``spectroscopy`` for spec2 and spec3 ones); else ``imaging`` (the planner then
    refuses the others, naming them: one workflow holds one kind)."""
    from jwpipe.associations import load_asn
    from jwpipe.associations.types import association_kind
    from jwpipe.errors import JwpipeError

    pipelines = set()
    for path in asn_paths:
        with contextlib.suppress(JwpipeError, OSError, ValueError):
            kind = association_kind(load_asn(path).asn_type)
            if kind is not None:
                pipelines.add(_chain_key(kind, load_asn(path)))
    if len(pipelines) == 1 and next(iter(pipelines)) in CHAINS:
        return next(iter(pipelines))
    holding = [name for name, chain in CHAINS.items() if pipelines <= set(chain)]
    return holding[0] if pipelines and holding else "imaging"


# ---------------------------------------------------------------------------- parameters
@contextlib.contextmanager
def crds_environment(store: Any) -> Iterator[None]:
    """CRDS environment of the planner's cache and context, for stpipe's own lookups."""
    inner = getattr(store, "store", store)
    env: dict[str, str] = {}
    if inner is not None and getattr(inner, "path", None):
        env = {"CRDS_PATH": inner.path, "CRDS_READONLY_CACHE": "1"}
        if getattr(inner, "context", None):
            env["CRDS_CONTEXT"] = inner.context
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    crds_log = logging.getLogger("CRDS")
    level = crds_log.level
    crds_log.setLevel(logging.CRITICAL)  # "Unknown reference type 'pars-...'": optional types
    try:
        yield
    finally:
        crds_log.setLevel(level)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _plain(value: Any) -> Any:
    """ConfigObj sections and tuples as plain dicts and lists (JSON-ready)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class JwstResolver:
    """A stage's parameters per exposure, resolved by stpipe as ``Pipeline.call`` resolves them.

    CRDS ``pars-*`` references (selected for the exposure in the planner's cache and context),
    then the user's parameter file, then ``--steps.<step>.<par>``; validated against the
    pipeline's and steps' specs. Cached by the exposure's selection keywords.
    """

    def __init__(self, stage: type, param_files: list[str], overrides: dict[str, Any],
                 store: Any) -> None:
        if len(param_files) > 1:
            raise WorkflowError(f"more than one parameter file for {stage.__name__}: "
                                f"{', '.join(param_files)}")
        self.stage = stage
        self.file = param_files[0] if param_files else None
        self.overrides = overrides
        self.store = store
        self._cache: dict[tuple, dict[str, Any]] = {}

    def resolve(self, dataset_params: dict[str, Any], path: str | None = None
                ) -> dict[str, Any]:
        key = tuple(sorted((k, str(v)) for k, v in dataset_params.items()))
        if key not in self._cache:
            self._cache[key] = self._resolve(path)
        return self._cache[key]

    def _resolve(self, path: str | None) -> dict[str, Any]:
        from stpipe.exceptions import ValidationError

        pipe_cls = self.stage.jwst_class
        kwargs: dict[str, Any] = {}
        if self.file:
            kwargs["config_file"] = self.file
        if self.overrides:
            kwargs["steps"] = {k: dict(v) for k, v in self.overrides.items()}
        try:
            with crds_environment(self.store), _quiet():
                config, _ = pipe_cls.build_config(path, **kwargs)
                config.pop("class", None)
                config.pop("name", None)
                pipe = pipe_cls.from_config_section(config)
                pars = _plain(pipe.get_pars())
        except (ValidationError, ValueError, OSError) as exc:
            raise WorkflowError(f"{pipe_cls.__name__} parameters for {path}: {exc}") from None
        for name, values in getattr(self.stage, "workflow_sets", {}).items():
            pars.get("steps", {}).get(name, {}).update(values)  # set by the pipeline in code
        steps_config = config.get("steps", {})
        for name, step_pars in pars.get("steps", {}).items():
            # override_<reftype> is a parameter stpipe does not export; keep the user's
            step_pars.update({k: str(v) for k, v in steps_config.get(name, {}).items()
                              if k.startswith("override_") and v is not None})
        return pars


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """stpipe logs every instance it makes at INFO; planning thousands of units need not."""
    loggers = [logging.getLogger(n) for n in ("stpipe", "jwst")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _names(path: str, cls: type) -> bool:
    """Whether a dotted path names ``cls``, by its module or a package above it, as jwst's
    own parameter files do (``jwst.jump.JumpStep`` for ``jwst.jump.jump_step.JumpStep``)."""
    module, _, name = path.rpartition(".")
    return name == cls.__name__ and bool(module) and (
        cls.__module__ == module or cls.__module__.startswith(module + "."))


def route_parameter_files(param_files: Sequence[str], stages: Sequence[type]
                          ) -> tuple[list[list[str]], list[dict[str, str]]]:
    """Which stage each jwst parameter file configures (its ``class``: a jwst pipeline, by
    dotted path or alias, or one of their steps); anything else is refused before import."""
    from stpipe.utilities import resolve_step_class_alias

    from stpipe import config_parser

    stage_files: list[list[str]] = [[] for _ in stages]
    step_files: list[dict[str, str]] = [{} for _ in stages]
    for path in param_files:
        try:
            cfg = config_parser.load_config_file(str(path))
        except Exception as exc:  # configobj/asdf raise many kinds
            raise WorkflowError(f"parameter file {path}: {exc}") from None
        name = str(cfg.get("class") or "")
        if not name:
            raise WorkflowError(f"parameter file {path} has no 'class': cannot tell which "
                                "jwst pipeline or step it configures")
        target = resolve_step_class_alias(name)
        full = os.path.abspath(path)
        hits = [i for i, st in enumerate(stages) if _names(target, st.jwst_class)]
        for i in hits:
            stage_files[i].append(full)
        owners = [(i, step) for i, st in enumerate(stages)
                  for step, c in st.step_defs.items() if _names(target, c.jwst_class)]
        for i, step in owners:
            if step in step_files[i]:
                raise WorkflowError(f"more than one parameter file for step {step!r}: "
                                    f"{step_files[i][step]}, {full}")
            step_files[i][step] = full
        if not hits and not owners:
            known = ", ".join(_class_path(st.jwst_class) for st in stages)
            raise WorkflowError(f"parameter file {path} is for {name}, which is neither one "
                                f"of this workflow's jwst stages ({known}) nor one of their "
                                "steps")
    return stage_files, step_files


def finish_units(units: list[Any], store: Any) -> None:
    """Mark planned units as jwst jobs: the jwst class they run and the CRDS cache they name."""
    inner = getattr(store, "store", store)
    crds_path = getattr(inner, "path", None)
    from jwst import __version__ as jwst_version

    for unit in units:
        info: dict[str, Any] = {"version": jwst_version, "crds_path": crds_path}
        if not unit.step_class.startswith("jwst."):  # a user's step, checked when planned
            info["inserted_class"] = unit.step_class
        unit.extra = {"engine": "jwst", "jwst": {**info, **unit.extra.get("jwst", {})}}
