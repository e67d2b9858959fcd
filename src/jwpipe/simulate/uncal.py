"""Write ``_uncal.fits`` files in the JWST Level-1b layout (jwst.md section 3.1).

Primary: no data, the keywords of a real NIRCam exposure (template in
``data/uncal_header_template.yaml``) with updated values. SCI: (nints, ngroups, ny, nx) uint16
stored as BITPIX=16 with BZERO=32768, plus WCS and pointing keywords. GROUP and INT_TIMES tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from astropy.io import fits
from astropy.time import Time
from astropy.wcs import WCS

from jwpipe import __version__
from jwpipe.simulate._io import write_fits_atomic
from jwpipe.simulate.config import ARCSEC_PER_PIXEL, DETECTORS, SimulationConfig

__all__ = ["ExposureInfo", "exposure_root", "write_uncal"]


@cache
def _template() -> dict[str, list[list[Any]]]:
    text = resources.files("jwpipe.simulate").joinpath("data/uncal_header_template.yaml")
    return yaml.safe_load(text.read_text(encoding="utf-8"))


def _header(cards: list[list[Any]], updates: dict[str, Any]) -> fits.Header:
    h = fits.Header()
    for key, value, comment in cards:
        if key == "":
            h.append(fits.Card("", value), end=True)
            continue
        if key in updates:
            value = updates[key]
        h.append(fits.Card(key, value, comment), end=True)
    return h


def exposure_root(cfg: SimulationConfig, exposure: int, detector: str) -> str:
    """``jw<ppppp><ooo><vvv>_<gg><s><aa>_<eeeee>_<detector>`` for exposure index ``exposure``."""
    return (f"jw{cfg.program}{cfg.observation}{cfg.visit}_02101_{exposure + 1:05d}_"
            f"{detector.lower()}")


@dataclass(frozen=True)
class ExposureInfo:
    """Per-exposure values that go into the headers."""

    exposure: int
    detector: str
    start: datetime
    nominal_wcs: WCS
    dither: tuple[float, float]
    boresight: tuple[float, float]
    v2v3: tuple[float, float]


def _mjd(t: datetime) -> float:
    return float(Time(t, scale="utc").mjd)


def _group_table(cfg: SimulationConfig, start: datetime) -> fits.BinTableHDU:
    nrows = cfg.nints * cfg.ngroups
    integ = np.repeat(np.arange(1, cfg.nints + 1), cfg.ngroups)
    group = np.tile(np.arange(1, cfg.ngroups + 1), cfg.nints)
    frames_per_int = cfg.ngroups * (cfg.nframes + cfg.groupgap)
    last_frame = (integ - 1) * (frames_per_int + 1) + (group - 1) * (cfg.nframes + cfg.groupgap)
    seconds = (last_frame + cfg.nframes) * cfg.tframe
    ends = [start + timedelta(seconds=float(s)) for s in seconds]
    days = np.array([e.timetuple().tm_yday for e in ends])  # day of year
    msec = np.array([(e - datetime(e.year, e.month, e.day)).total_seconds() * 1000 for e in ends])
    mjd = np.array([_mjd(e) for e in ends])
    cols = [
        fits.Column("integration_number", "J", array=integ),
        fits.Column("group_number", "I", array=group),
        fits.Column("end_day", "I", array=days),
        fits.Column("end_milliseconds", "J", array=np.floor(msec).astype(np.int64)),
        fits.Column("end_submilliseconds", "I", array=np.round((msec % 1) * 1000).astype(int)),
        fits.Column("group_end_time", "26A",
                    array=np.array([e.strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] for e in ends])),
        fits.Column("number_of_columns", "I", array=np.full(nrows, cfg.size)),
        fits.Column("number_of_rows", "I", array=np.full(nrows, cfg.size)),
        fits.Column("number_of_gaps", "I", array=np.zeros(nrows, int)),
        fits.Column("completion_code_number", "I", array=np.zeros(nrows, int)),
        fits.Column("completion_code_text", "36A", array=np.array(["COMPLETE"] * nrows)),
        fits.Column("bary_end_time", "D", array=mjd),
        fits.Column("helio_end_time", "D", array=mjd),
    ]
    return fits.BinTableHDU.from_columns(cols, name="GROUP")


def _int_times(cfg: SimulationConfig, start: datetime) -> fits.BinTableHDU:
    frames_per_int = cfg.ngroups * (cfg.nframes + cfg.groupgap) + 1  # + 1 reset frame
    k = np.arange(cfg.nints)
    t0 = np.array([_mjd(start)]) + k * frames_per_int * cfg.tframe / 86400.0
    t1 = t0 + (frames_per_int - 1) * cfg.tframe / 86400.0
    mid = (t0 + t1) / 2
    cols = [fits.Column("integration_number", "J", array=k + 1)]
    for name, arr in (("int_start_MJD_UTC", t0), ("int_mid_MJD_UTC", mid),
                      ("int_end_MJD_UTC", t1), ("int_start_BJD_TDB", t0),
                      ("int_mid_BJD_TDB", mid), ("int_end_BJD_TDB", t1)):
        cols.append(fits.Column(name, "D", array=arr))
    return fits.BinTableHDU.from_columns(cols, name="INT_TIMES")


def _s_region(wcs: WCS, size: int) -> str:
    edge = size - 0.5
    corners = np.array([[-0.5, -0.5], [edge, -0.5], [edge, edge], [-0.5, edge]])
    world = wcs.wcs_pix2world(corners, 0)
    return "POLYGON ICRS " + " ".join(f"{ra:.9f} {dec:.9f}" for ra, dec in world)


def exposure_duration(cfg: SimulationConfig) -> float:
    """Total duration (s) of an exposure, reset frames included."""
    return cfg.nints * (cfg.ngroups * (cfg.nframes + cfg.groupgap) + 1) * cfg.tframe


def write_uncal(
    path: Path, data: np.ndarray, cfg: SimulationConfig, info: ExposureInfo, n_exposures: int
) -> Path:
    """Write one ``_uncal.fits`` file atomically; return its path."""
    tpl = _template()
    module, _, _, fast, slow = DETECTORS[info.detector]
    duration = exposure_duration(cfg)
    end = info.start + timedelta(seconds=duration)
    # first reset to the end of the last group's reads (107.3677 s for 10 RAPID full-frame groups)
    effint = (cfg.ngroups - 1) * cfg.tgroup + cfg.nframes * cfg.tframe
    effexp = effint * cfg.nints
    mjd0, mjd1 = _mjd(info.start), _mjd(end)
    wcs = info.nominal_wcs
    pc = wcs.wcs.get_pc()
    roll = cfg.roll
    ra_ref, dec_ref = (float(v) for v in wcs.wcs.crval)
    name = path.name
    primary = {
        "DATE": "2026-01-01T00:00:00.000",  # fixed, so files are identical for a seed
        "ORIGIN": "JWPIPE", "FILENAME": name, "SDP_VER": f"jwpipe {__version__}",
        "DATE-OBS": info.start.strftime("%Y-%m-%d"),
        "TIME-OBS": info.start.strftime("%H:%M:%S.%f")[:12],
        "DATE-BEG": info.start.strftime("%Y-%m-%dT%H:%M:%S.%f")[:23],
        "DATE-END": end.strftime("%Y-%m-%dT%H:%M:%S.%f")[:23],
        "OBS_ID": f"V{cfg.program}{cfg.observation}{cfg.visit}P0000000002101",
        "VISIT_ID": f"{cfg.program}{cfg.observation}{cfg.visit}", "PROGRAM": cfg.program,
        "OBSERVTN": cfg.observation, "VISIT": cfg.visit, "VISITGRP": "02", "SEQ_ID": "1",
        "ACT_ID": "01", "EXPOSURE": f"{info.exposure + 1}", "TEMPLATE": "NIRCam Imaging",
        "TITLE": "jwpipe simulated NIRCam imaging", "PI_NAME": "jwpipe, simulator",
        "CATEGORY": "CAL", "SUBCAT": "NIRCAM", "OBSLABEL": "jwpipe.simulate field",
        "OBSFOLDR": "simulation", "NEXPOSUR": n_exposures, "TARGPROP": "SIMFIELD",
        "TARGNAME": "SIMFIELD", "TARG_RA": cfg.ra, "TARG_DEC": cfg.dec, "PROP_RA": cfg.ra,
        "PROP_DEC": cfg.dec, "MU_RA": 0.0, "MU_DEC": 0.0, "DETECTOR": info.detector,
        "MODULE": module, "CHANNEL": "SHORT", "FILTER": cfg.filter, "PUPIL": cfg.pupil,
        "CORONMSK": "NONE", "EXPCOUNT": info.exposure + 1, "EXP_TYPE": "NRC_IMAGE",
        "EXPSTART": mjd0, "EXPMID": (mjd0 + mjd1) / 2, "EXPEND": mjd1,
        "READPATT": cfg.readpatt, "NOUTPUTS": cfg.noutputs, "NINTS": cfg.nints,
        "NGROUPS": cfg.ngroups, "NFRAMES": cfg.nframes, "FRMDIVSR": cfg.nframes,
        "GROUPGAP": cfg.groupgap, "TFRAME": cfg.tframe, "TGROUP": cfg.tgroup,
        "EFFINTTM": effint, "EFFEXPTM": effexp, "DURATION": duration, "IS_PSF": False,
        "SUBARRAY": cfg.subarray, "SUBSTRT1": 1, "SUBSTRT2": 1, "SUBSIZE1": cfg.size,
        "SUBSIZE2": cfg.size, "FASTAXIS": fast, "SLOWAXIS": slow, "PATTTYPE": "JWPIPE-DITHER",
        "PRIDTYPE": "NONE", "PRIDTPTS": 1, "PATT_NUM": info.exposure + 1,
        "NUMDTHPT": n_exposures, "SMGRDPAT": "NONE", "SUBPXPTS": n_exposures,
        "SUBPXPAT": "JWPIPE", "XOFFSET": info.dither[0] * ARCSEC_PER_PIXEL,
        "YOFFSET": info.dither[1] * ARCSEC_PER_PIXEL,
        "APERNAME": f"{info.detector}_{cfg.subarray}", "PPS_APER": f"{info.detector}_FULL",
        "VA_RA": ra_ref, "VA_DEC": dec_ref, "GS_RA": cfg.ra, "GS_DEC": cfg.dec + 0.05,
    }
    sci = {
        "MJD-BEG": mjd0, "MJD-AVG": (mjd0 + mjd1) / 2, "MJD-END": mjd1, "TDB-BEG": mjd0,
        "TDB-MID": (mjd0 + mjd1) / 2, "TDB-END": mjd1, "XPOSURE": effexp, "TELAPSE": duration,
        "EPH_TIME": (mjd0 + mjd1) / 2, "PA_APER": roll, "VA_SCALE": 1.0, "BUNIT": "DN",
        "RA_V1": info.boresight[0], "DEC_V1": info.boresight[1], "PA_V3": roll,
        "CRPIX1": float(wcs.wcs.crpix[0]), "CRPIX2": float(wcs.wcs.crpix[1]),
        "CRVAL1": ra_ref, "CRVAL2": dec_ref, "CDELT1": float(wcs.wcs.cdelt[0]),
        "CDELT2": float(wcs.wcs.cdelt[1]), "PC1_1": float(pc[0, 0]), "PC1_2": float(pc[0, 1]),
        "PC2_1": float(pc[1, 0]), "PC2_2": float(pc[1, 1]), "S_REGION": _s_region(wcs, cfg.size),
        "V2_REF": info.v2v3[0], "V3_REF": info.v2v3[1], "VPARITY": -1, "V3I_YANG": 0.0,
        "RA_REF": ra_ref, "DEC_REF": dec_ref, "ROLL_REF": roll, "VELOSYS": 0.0,
    }
    phdr = _header(tpl["primary"], primary)
    phdr.add_history("Simulated by jwpipe.simulate; keywords from a real NIRCam header.")
    sci_hdu = fits.ImageHDU(data, name="SCI")  # uint16 -> BITPIX 16, BZERO 32768
    for card in _header(tpl["sci"], sci).cards:
        sci_hdu.header.append(card, end=True)
    sci_hdu.header["EXTVER"] = 1
    hdul = fits.HDUList([fits.PrimaryHDU(header=phdr), sci_hdu,
                         _group_table(cfg, info.start), _int_times(cfg, info.start)])
    return write_fits_atomic(hdul, path)
