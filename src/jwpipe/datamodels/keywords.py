"""Where each known ``model.meta`` attribute lives in a JWST FITS file.

Every entry maps a dotted metadata path (``"exposure.ngroups"``) to the header it lives in
(``PRIMARY``, ``SCI`` or ``ERR``), the FITS keyword and the Python type of its value. The table
follows the JWST core/wcsinfo/photometry schemas; paths not listed here are kept in the ASDF
metadata tree instead of the FITS headers.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CAL_STEP_KEYWORDS", "KEYWORDS", "REF_FILE_KEYWORDS", "Keyword", "keyword_for"]


@dataclass(frozen=True)
class Keyword:
    """One FITS keyword a metadata path maps to."""

    path: str
    hdu: str
    name: str
    type: type


# path  KEYWORD  type  [hdu]
_TABLE = """
model_type DATAMODL s
date DATE s
origin ORIGIN s
filename FILENAME s
filetype FILETYPE s
telescope TELESCOP s
time_sys TIMESYS s
time_unit TIMEUNIT s
calibration_software_name CAL_SWNM s
calibration_software_version CAL_VER s
calibration_software_revision CAL_VCS s
jwpipe_version JWPIPEV s
data_processing_software_version SDP_VER s
prd_software_version PRD_VER s
oss_software_version OSS_VER s
hga_move HGA_MOVE b
pwfseet PWFSEET f
nwfsest NWFSEST f
compress COMPRESS b
reftype REFTYPE s
description DESCRIP s
author AUTHOR s
useafter USEAFTER s
pedigree PEDIGREE s
bunit_data BUNIT s SCI
bunit_err BUNIT s ERR
program.title TITLE s
program.pi_name PI_NAME s
program.category CATEGORY s
program.sub_category SUBCAT s
observation.date DATE-OBS s
observation.time TIME-OBS s
observation.date_beg DATE-BEG s
observation.date_end DATE-END s
observation.obs_id OBS_ID s
observation.visit_id VISIT_ID s
observation.program_number PROGRAM s
observation.observation_number OBSERVTN s
observation.visit_number VISIT s
observation.visit_group VISITGRP s
observation.sequence_id SEQ_ID s
observation.activity_id ACT_ID s
observation.exposure_number EXPOSURE s
observation.bkgdtarg BKGDTARG b
observation.template TEMPLATE s
observation.observation_label OBSLABEL s
observation.observation_folder OBSFOLDR s
visit.engineering_quality ENG_QUAL s
visit.engdb_pointing_quality ENGQLPTG s
visit.type VISITYPE s
visit.start_time VSTSTART s
visit.status VISITSTA s
visit.total_exposures NEXPOSUR i
visit.internal_target INTARGET b
visit.too_visit TARGOOPP b
visit.tsovisit TSOVISIT b
visit.exp_only EXP_ONLY b
visit.crowded_field CROWDFLD b
target.proposer_name TARGPROP s
target.catalog_name TARGNAME s
target.type TARGTYPE s
target.ra TARG_RA f
target.dec TARG_DEC f
target.ra_uncertainty TARGURA f
target.dec_uncertainty TARGUDEC f
target.proper_motion_ra MU_RA f
target.proper_motion_dec MU_DEC f
target.proper_motion_epoch MU_EPOCH s
target.proposer_ra PROP_RA f
target.proposer_dec PROP_DEC f
instrument.name INSTRUME s
instrument.detector DETECTOR s
instrument.module MODULE s
instrument.channel CHANNEL s
instrument.filter FILTER s
instrument.pupil PUPIL s
instrument.band BAND s
instrument.pupil_imaging_lens PILIN b
instrument.coronagraph CORONMSK s
exposure.count EXPCOUNT i
exposure.prime_parallel EXPRIPAR s
exposure.type EXP_TYPE s
exposure.start_time EXPSTART f
exposure.mid_time EXPMID f
exposure.end_time EXPEND f
exposure.osf_file OSF_FILE s
exposure.readpatt READPATT s
exposure.noutputs NOUTPUTS i
exposure.nints NINTS i
exposure.ngroups NGROUPS i
exposure.nframes NFRAMES i
exposure.frame_divisor FRMDIVSR i
exposure.groupgap GROUPGAP i
exposure.drop_frames1 DRPFRMS1 i
exposure.drop_frames3 DRPFRMS3 i
exposure.nsamples NSAMPLES i
exposure.sample_time TSAMPLE f
exposure.frame_time TFRAME f
exposure.group_time TGROUP f
exposure.integration_time EFFINTTM f
exposure.effective_exposure_time EFFEXPTM f
exposure.measurement_time TMEASURE f
exposure.duration DURATION f
exposure.nresets_at_start NRSTSTRT i
exposure.nresets_between_ints NRESETS i
exposure.zero_frame ZEROFRAM b
exposure.data_problem DATAPROB b
exposure.sca_num SCA_NUM i
exposure.datamode DATAMODE i
exposure.clock_adjust_rate SCTARATE f
exposure.psf_reference IS_PSF b
exposure.self_reference_survey SELFREF b
exposure.integration_start INTSTART i
exposure.integration_end INTEND i
exposure.segment_number EXSEGNUM i
exposure.segment_total EXSEGTOT i
exposure.gain_factor GAINFACT f
exposure.primary_cosmic_rays PRIMECRS f
exposure.start_time_mjd MJD-BEG f SCI
exposure.mid_time_mjd MJD-AVG f SCI
exposure.end_time_mjd MJD-END f SCI
exposure.start_time_tdb TDB-BEG f SCI
exposure.mid_time_tdb TDB-MID f SCI
exposure.end_time_tdb TDB-END f SCI
exposure.exposure_time XPOSURE f SCI
exposure.elapsed_exposure_time TELAPSE f SCI
subarray.name SUBARRAY s
subarray.xstart SUBSTRT1 i
subarray.ystart SUBSTRT2 i
subarray.xsize SUBSIZE1 i
subarray.ysize SUBSIZE2 i
subarray.fastaxis FASTAXIS i
subarray.slowaxis SLOWAXIS i
dither.primary_type PATTTYPE s
dither.primary_dither_type PRIDTYPE s
dither.primary_points PRIDTPTS i
dither.position_number PATT_NUM i
dither.total_points NUMDTHPT i
dither.small_grid_pattern SMGRDPAT s
dither.subpixel_total_points SUBPXPTS i
dither.subpixel_pattern SUBPXPAT s
dither.x_offset XOFFSET f
dither.y_offset YOFFSET f
aperture.name APERNAME s
aperture.pps_name PPS_APER s
aperture.position_angle PA_APER f SCI
velocity_aberration.va_ra_ref VA_RA f
velocity_aberration.va_dec_ref VA_DEC f
velocity_aberration.scale_factor VA_SCALE f SCI
time.barycentric_correction BARTDELT f
time.barycentric_expstart BSTRTIME f
time.barycentric_expend BENDTIME f
time.barycentric_expmid BMIDTIME f
time.heliocentric_correction HELIDELT f
time.heliocentric_expstart HSTRTIME f
time.heliocentric_expend HENDTIME f
time.heliocentric_expmid HMIDTIME f
guidestar.gs_order GS_ORDER i
guidestar.gs_start_time GSSTRTTM s
guidestar.gs_stop_time GSENDTIM s
guidestar.gs_id GDSTARID s
guidestar.gs_ra GS_RA f
guidestar.gs_dec GS_DEC f
guidestar.gs_ura GS_URA f
guidestar.gs_udec GS_UDEC f
guidestar.gs_mag GS_MAG f
guidestar.gs_umag GS_UMAG f
guidestar.gs_v3_pa_science GS_V3_PA f
guidestar.gs_pcs_mode PCS_MODE s
guidestar.visit_end_time VISITEND s
ephemeris.reference_frame REFFRAME s SCI
ephemeris.type EPH_TYPE s SCI
ephemeris.time EPH_TIME f SCI
ephemeris.spatial_x_bary JWST_X f SCI
ephemeris.spatial_y_bary JWST_Y f SCI
ephemeris.spatial_z_bary JWST_Z f SCI
ephemeris.spatial_x_geo OBSGEO-X f SCI
ephemeris.spatial_y_geo OBSGEO-Y f SCI
ephemeris.spatial_z_geo OBSGEO-Z f SCI
ephemeris.velocity_x_bary JWST_DX f SCI
ephemeris.velocity_y_bary JWST_DY f SCI
ephemeris.velocity_z_bary JWST_DZ f SCI
ephemeris.velocity_x_geo OBSGEODX f SCI
ephemeris.velocity_y_geo OBSGEODY f SCI
ephemeris.velocity_z_geo OBSGEODZ f SCI
coordinates.reference_frame RADESYS s SCI
pointing.ra_v1 RA_V1 f SCI
pointing.dec_v1 DEC_V1 f SCI
pointing.pa_v3 PA_V3 f SCI
wcsinfo.wcsaxes WCSAXES i SCI
wcsinfo.crpix1 CRPIX1 f SCI
wcsinfo.crpix2 CRPIX2 f SCI
wcsinfo.crval1 CRVAL1 f SCI
wcsinfo.crval2 CRVAL2 f SCI
wcsinfo.ctype1 CTYPE1 s SCI
wcsinfo.ctype2 CTYPE2 s SCI
wcsinfo.cunit1 CUNIT1 s SCI
wcsinfo.cunit2 CUNIT2 s SCI
wcsinfo.cdelt1 CDELT1 f SCI
wcsinfo.cdelt2 CDELT2 f SCI
wcsinfo.pc1_1 PC1_1 f SCI
wcsinfo.pc1_2 PC1_2 f SCI
wcsinfo.pc2_1 PC2_1 f SCI
wcsinfo.pc2_2 PC2_2 f SCI
wcsinfo.s_region S_REGION s SCI
wcsinfo.v2_ref V2_REF f SCI
wcsinfo.v3_ref V3_REF f SCI
wcsinfo.vparity VPARITY i SCI
wcsinfo.v3yangle V3I_YANG f SCI
wcsinfo.ra_ref RA_REF f SCI
wcsinfo.dec_ref DEC_REF f SCI
wcsinfo.roll_ref ROLL_REF f SCI
wcsinfo.velosys VELOSYS f SCI
photometry.conversion_megajanskys PHOTMJSR f SCI
photometry.conversion_microjanskys PHOTUJA2 f SCI
photometry.pixelarea_steradians PIXAR_SR f SCI
photometry.pixelarea_arcsecsq PIXAR_A2 f SCI
background.level BKGLEVEL f
background.subtracted BKGSUB b
background.method BKGMETH s
asn.pool_name ASNPOOL s
asn.table_name ASNTABLE s
ref_file.crds.sw_version CRDS_VER s
ref_file.crds.context_used CRDS_CTX s
resample.pixfrac PIXFRAC f
resample.pixel_scale_ratio PXSCLRT f
resample.weight_type RESWHT s
"""

#: ``meta.cal_step.<alias>`` -> status keyword (values COMPLETE / SKIPPED / FAILED).
CAL_STEP_KEYWORDS: dict[str, str] = {
    "group_scale": "S_GRPSCL",
    "dq_init": "S_DQINIT",
    "emicorr": "S_MIREMI",
    "saturation": "S_SATURA",
    "ipc": "S_IPC",
    "superbias": "S_SUPERB",
    "refpix": "S_REFPIX",
    "firstframe": "S_FRSTFR",
    "lastframe": "S_LASTFR",
    "reset": "S_RESET",
    "linearity": "S_LINEAR",
    "rscd": "S_RSCD",
    "dark_sub": "S_DARK",
    "persistence": "S_PERSIS",
    "charge_migration": "S_CHGMIG",
    "jump": "S_JUMP",
    "picture_frame": "S_PCTFRM",
    "clean_flicker_noise": "S_CLNFNS",
    "ramp_fit": "S_RAMP",
    "gain_scale": "S_GANSCL",
    "bkg_subtract": "S_BKDSUB",
    "assign_wcs": "S_WCS",
    "flat_field": "S_FLAT",
    "photom": "S_PHOTOM",
    "resample": "S_RESAMP",
    "assign_mtwcs": "S_MTWCS",
    "tweakreg": "S_TWKREG",
    "skymatch": "S_SKYMAT",
    "outlier_detection": "S_OUTLIR",
    "source_catalog": "S_SRCCAT",
}

#: ``meta.ref_file.<type>.name`` -> reference-file keyword.
REF_FILE_KEYWORDS: dict[str, str] = {
    "mask": "R_MASK",
    "saturation": "R_SATURA",
    "superbias": "R_SUPERB",
    "linearity": "R_LINEAR",
    "dark": "R_DARK",
    "gain": "R_GAIN",
    "readnoise": "R_READNO",
    "ipc": "R_IPC",
    "refpix": "R_REFPIX",
    "sirskernel": "R_SIRSKL",
    "reset": "R_RESET",
    "rscd": "R_RSCD",
    "emicorr": "R_MIREMI",
    "persat": "R_PERSAT",
    "trapdensity": "R_TRPDEN",
    "trappars": "R_TRPPAR",
    "flat": "R_FLAT",
    "dflat": "R_DFLAT",
    "fflat": "R_FFLAT",
    "sflat": "R_SFLAT",
    "photom": "R_PHOTOM",
    "area": "R_AREA",
    "distortion": "R_DISTOR",
    "filteroffset": "R_FILOFF",
    "bkg": "R_BKG",
    "wavelengthrange": "R_WAVRAN",
    "pastasoss": "R_PSTSOS",
    "specwcs": "R_SPCWCS",
    "regions": "R_REGION",
    "camera": "R_CAMERA",
    "collimator": "R_COLLIM",
    "disperser": "R_DISPER",
    "fpa": "R_FPA",
    "msa": "R_MSA",
    "ote": "R_OTE",
    "ifufore": "R_IFUFOR",
    "ifupost": "R_IFUPOS",
    "ifuslicer": "R_IFUSLI",
    "fore": "R_FORE",
}

_TYPES = {"s": str, "i": int, "f": float, "b": bool}


def _build() -> dict[str, Keyword]:
    table: dict[str, Keyword] = {}
    for line in _TABLE.strip().splitlines():
        fields = line.split()
        path, name, code = fields[:3]
        hdu = fields[3] if len(fields) > 3 else "PRIMARY"
        table[path] = Keyword(path, hdu, name, _TYPES[code])
    for alias, name in CAL_STEP_KEYWORDS.items():
        table[f"cal_step.{alias}"] = Keyword(f"cal_step.{alias}", "PRIMARY", name, str)
    for reftype, name in REF_FILE_KEYWORDS.items():
        path = f"ref_file.{reftype}.name"
        table[path] = Keyword(path, "PRIMARY", name, str)
    return table


#: Every known metadata path -> its keyword.
KEYWORDS: dict[str, Keyword] = _build()

#: Every dotted prefix of a known path ("exposure", "ref_file.dark", ...): these are groups.
GROUPS: frozenset[str] = frozenset(
    ".".join(path.split(".")[:i]) for path in KEYWORDS for i in range(1, path.count(".") + 1)
)

#: The FITS keywords used for reference-file selection, in the order they are reported.
CRDS_KEYWORDS: tuple[str, ...] = (
    "TELESCOP",
    "INSTRUME",
    "DETECTOR",
    "EXP_TYPE",
    "READPATT",
    "SUBARRAY",
    "FILTER",
    "PUPIL",
    "DATE-OBS",
    "TIME-OBS",
    "NGROUPS",
    "NFRAMES",
    "GROUPGAP",
    "NINTS",
    "SUBSTRT1",
    "SUBSTRT2",
    "SUBSIZE1",
    "SUBSIZE2",
    "NOUTPUTS",
    "CHANNEL",
    "MODULE",
    "BAND",
    "TSOVISIT",
)


def keyword_for(path: str) -> Keyword | None:
    """Return the keyword a dotted metadata path maps to, or None if it has no FITS keyword."""
    return KEYWORDS.get(path)
