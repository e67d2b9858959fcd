"""Associations from exposure files, grouped the way JWST's imaging association rules group them.

``jwpipe make-workflow *_uncal.fits`` needs no association: each science imaging exposure gets
an image2 product (its own root name), and exposures sharing program, observation, target,
instrument and optical elements (filter and pupil) become one image3 product, named
``jw<program>-o<observation>_t<target>_<instrument>_<optical elements>`` as the operational
generator names observation candidates (``jw02738-o002_t001_nircam_clear-f090w``). The optical
elements are the lower-cased FILTER and PUPIL values without ``N/A``/``NONE``, sorted and joined
by ``-``. Targets are numbered ``t001``, ``t002`` ... per program in order of their TARGPROP.

Only the primary header of each file is read (no data).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from jwpipe.associations.create import asn_from_list, member_root
from jwpipe.errors import AssociationError

__all__ = ["ExposureInfo", "associations_from_exposures", "read_exposure_info"]

#: EXP_TYPEs of imaging science that calwebb_image2/image3 calibrate (jwst's IMAGE2 list,
#: less coronagraphy, AMI and time series, which have their own level-3 pipelines).
IMAGING_EXP_TYPES = frozenset({"NRC_IMAGE", "MIR_IMAGE", "NIS_IMAGE", "FGS_IMAGE"})

_KEYS = ("PROGRAM", "OBSERVTN", "TARGPROP", "INSTRUME", "FILTER", "PUPIL", "EXP_TYPE",
         "DETECTOR")


@dataclass(frozen=True)
class ExposureInfo:
    """What grouping needs to know about one exposure file."""

    path: str
    program: str
    observation: str
    target: str
    instrument: str
    optical_elements: tuple[str, ...]
    exp_type: str

    @property
    def root(self) -> str:
        return member_root(os.path.basename(self.path))


def read_exposure_info(path: str | os.PathLike) -> ExposureInfo:
    """Read the grouping keywords from an exposure's primary header.

    Raises
    ------
    AssociationError
        If the file is not FITS or lacks PROGRAM, OBSERVTN, INSTRUME or EXP_TYPE.
    """
    from astropy.io import fits

    name = os.fspath(path)
    try:
        header = fits.getheader(name, 0)
    except (OSError, ValueError) as exc:
        raise AssociationError(f"{name}: cannot read its FITS header ({exc})") from None
    values = {k: str(header.get(k, "") or "").strip() for k in _KEYS}
    missing = [k for k in ("PROGRAM", "OBSERVTN", "INSTRUME", "EXP_TYPE") if not values[k]]
    if missing:
        raise AssociationError(f"{name}: header lacks {', '.join(missing)}; cannot group it "
                               "into associations (write an association file instead)")
    elements = tuple(sorted({v.lower() for v in (values["FILTER"], values["PUPIL"])
                             if v and v.upper() not in ("N/A", "NONE")}))
    return ExposureInfo(
        path=name, program=values["PROGRAM"].zfill(5), observation=values["OBSERVTN"].zfill(3),
        target=values["TARGPROP"] or "unknown", instrument=values["INSTRUME"].lower(),
        optical_elements=elements, exp_type=values["EXP_TYPE"].upper())


def _target_numbers(infos: Iterable[ExposureInfo]) -> dict[tuple[str, str], int]:
    numbers: dict[tuple[str, str], int] = {}
    for info in sorted(infos, key=lambda i: (i.program, i.target)):
        key = (info.program, info.target)
        if key not in numbers:
            numbers[key] = 1 + sum(1 for p, _ in numbers if p == info.program)
    return numbers


def associations_from_exposures(paths: Sequence[str | os.PathLike], *,
                                level3: bool = True) -> tuple[list[dict[str, Any]], list[str]]:
    """Group exposure files into image2 and image3 associations.

    Parameters
    ----------
    paths : sequence of path
        Exposure files (``_uncal``, ``_rate`` or ``_cal``). Members are named by the product
        each stage consumes (``<root>_rate.fits`` for image2, ``<root>_cal.fits`` for image3);
        the planner walks back from them to the earliest file present in the input directory,
        as it does for operational associations.
    level3 : bool
        Make image3 associations (one per group); False: one image2 association per exposure.

    Returns
    -------
    associations : list of dict
        The image3 associations, or with ``level3=False`` the image2 ones.
    skipped : list of str
        One line per file that is not imaging science (and why).
    """
    infos, skipped = [], []
    for path in paths:
        info = read_exposure_info(path)
        if info.exp_type not in IMAGING_EXP_TYPES:
            skipped.append(f"{os.path.basename(info.path)}: EXP_TYPE {info.exp_type} is not "
                           "imaging science; not associated")
            continue
        infos.append(info)
    if not infos:
        raise AssociationError("none of the files is an imaging science exposure "
                               f"({len(skipped)} skipped)")
    roots: dict[str, ExposureInfo] = {}
    for info in infos:
        if info.root in roots:
            raise AssociationError(
                f"{os.path.basename(info.path)} and {os.path.basename(roots[info.root].path)} "
                f"are the same exposure ({info.root}) at two processing levels; give one")
        roots[info.root] = info
    if not level3:
        return [asn_from_list([f"{i.root}_rate.fits"], asn_type="image2", program=i.program)
                for i in infos], skipped
    associations = []
    tid = _target_numbers(infos)
    groups: dict[str, list[ExposureInfo]] = {}
    for info in infos:
        name = (f"jw{info.program}-o{info.observation}_t{tid[(info.program, info.target)]:03d}_"
                f"{info.instrument}_{'-'.join(info.optical_elements) or 'clear'}")
        groups.setdefault(name, []).append(info)
    for name, members in sorted(groups.items()):
        first = members[0]
        associations.append(asn_from_list(
            sorted(f"{m.root}_cal.fits" for m in members), product_name=name,
            asn_type="image3", asn_id=f"o{first.observation}", program=first.program,
            target=f"t{tid[(first.program, first.target)]:03d}"))
    return associations, skipped
