"""Association types: which engine and which pipeline process an association as it is.

The ``asn_type`` of an association says which stage-2 or stage-3 pipeline it is meant for
(jwst's "Association Types" convention: ``image2`` -> calwebb_image2, ``spec3`` ->
calwebb_spec3, ...). jwpipe implements the imaging pipelines only, so an association is
dispatched on its type, never assumed to be imaging:

* level-2 imaging (``image2``, and the older generator names ``wfs-image2`` and
  ``nrslamp-image2`` for the same rules) is planned up to Image2 with the jwpipe engine;
* level-3 imaging (``image3``, ``mosaic`` and the pre-2018 ``image``) is planned up to the
  Image3 mosaic with the jwpipe engine;
* level-2 spectroscopy (``spec2``, ``nrslamp-spec2``) is planned by the jwst engine only
  (``--engine jwst``: Detector1 and jwst's Spec2); jwpipe's engine refuses it, naming
  ``--engine jwst``; so is time-series spectroscopy (``tso-spec2``: jwst's Spec2 from the
  members' ``_rateints`` to ``_calints`` and ``_x1dints``), and level-3 spectroscopy
  (``spec3``: jwst's calwebb_spec3 step by step, for MIRI LRS fixed slit);
* coronagraphy, time-series and AMI level-3 (``coron3``, ``tso3``, ``ami3``) are planned by
  the jwst engine only (``--engine jwst``: jwst's calwebb_coron3, calwebb_tso3 and
  calwebb_ami3 step by step, from the members' ``_calints``; tso3 for imaging and
  spectroscopic TSO but NIRISS SOSS);
  jwpipe's engine refuses them, naming ``--engine jwst``;
* every other type is refused with one line that names the type and the jwst pipeline that
  processes it.

Standard library only: workflow jobs and the CLI import this.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from jwpipe.errors import AssociationError

__all__ = [
    "AsnKind",
    "UnsupportedAssociationError",
    "association_kind",
    "dispatch",
    "nonscience_advice",
]


@dataclass(frozen=True)
class AsnKind:
    """What an association type is for.

    Attributes
    ----------
    asn_type : str
        The type, lower-cased.
    level : int
        2 (one product per exposure) or 3 (combined products).
    jwst_pipeline : str
        The jwst pipeline alias that processes this type.
    jwpipe : bool
        Whether jwpipe's own engine processes it.
    """

    asn_type: str
    level: int
    jwst_pipeline: str
    jwpipe: bool


#: Every association type the jwst generator writes (current and older names), by type.
KINDS: dict[str, AsnKind] = {
    k.asn_type: k
    for k in (
        AsnKind("image2", 2, "calwebb_image2", True),
        AsnKind("wfs-image2", 2, "calwebb_image2", True),
        AsnKind("nrslamp-image2", 2, "calwebb_image2", True),
        AsnKind("image3", 3, "calwebb_image3", True),
        AsnKind("mosaic", 3, "calwebb_image3", True),
        AsnKind("image", 3, "calwebb_image3", True),
        AsnKind("tso-image2", 2, "calwebb_image2", False),
        AsnKind("spec2", 2, "calwebb_spec2", False),
        AsnKind("nrslamp-spec2", 2, "calwebb_spec2", False),
        AsnKind("tso-spec2", 2, "calwebb_spec2", False),
        AsnKind("spec3", 3, "calwebb_spec3", False),
        AsnKind("tso3", 3, "calwebb_tso3", False),
        AsnKind("ami3", 3, "calwebb_ami3", False),
        AsnKind("coron3", 3, "calwebb_coron3", False),
        AsnKind("wfs-image3", 3, "calwebb_wfs-image3", False),
    )
}

#: Types jwpipe's own steps do not process that the jwst engine (``--engine jwst``) plans.
JWST_ENGINE_TYPES = frozenset({"spec2", "nrslamp-spec2", "tso-spec2", "spec3", "coron3",
                               "tso3", "ami3"})

_WHY_NOT = {
    "tso-image2": "time-series imaging (integration-resolved _calints products)",
    "wfs-image3": "WFS&C image combination (wfs_combine)",
}


class UnsupportedAssociationError(AssociationError):
    """An association jwpipe's engine does not process; ``reason`` is a short category."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def association_kind(asn_type: str | None) -> AsnKind | None:
    """The :class:`AsnKind` of a type name (case-insensitive), or None if unknown."""
    if not asn_type:
        return None
    return KINDS.get(asn_type.strip().lower())


def _jwst_command(pipeline: str, source: str) -> str:
    name = source.rsplit("/", 1)[-1] if source and not source.startswith("<") else "ASN.json"
    return f"strun {pipeline} {name}"


def dispatch(asn_type: str | None, source: str = "<dict>", pipelines: Sequence[str] = (),
             engine: str = "jwpipe") -> AsnKind:
    """Return the kind of an association that the workflow's engine processes; refuse any other.

    Parameters
    ----------
    asn_type : str or None
        The association's ``asn_type``.
    source : str
        The association file, named in the message.
    pipelines : list of str
        The jwst aliases of the workflow's stages (``calwebb_spec2``...).
    engine : str
        ``jwpipe`` or ``jwst``: the jwst engine also plans :data:`JWST_ENGINE_TYPES` when its
        stages include their pipeline.

    Raises
    ------
    UnsupportedAssociationError
        For a missing, unknown or non-imaging type: one line naming the type, the jwst pipeline
        that handles it and the command to run.
    """
    if not asn_type:
        raise UnsupportedAssociationError(
            f"{source}: the association has no 'asn_type', so its pipeline is unknown; add "
            '"asn_type": "image2" (one product per exposure) or "image3" (a combined product)',
            "no asn_type")
    kind = association_kind(asn_type)
    if kind is None:
        known = ", ".join(sorted(KINDS))
        raise UnsupportedAssociationError(
            f"{source}: unknown association type {asn_type!r} (jwst's types: {known})",
            f"unknown type {asn_type}")
    if kind.jwpipe or (engine == "jwst" and kind.asn_type in JWST_ENGINE_TYPES
                       and kind.jwst_pipeline in pipelines):
        return kind
    command = _jwst_command(kind.jwst_pipeline, source)
    if kind.asn_type in JWST_ENGINE_TYPES and engine == "jwst":
        how = (f"this workflow's stages ({', '.join(p for p in pipelines if p)}) are for "
               "imaging: one workflow holds imaging or spectroscopic associations, so make "
               "one for each")
    elif kind.asn_type in JWST_ENGINE_TYPES:
        how = (f"plan it with --engine jwst (jwst's steps), or run jwst's own pipeline, e.g. "
               f"'{command}'")
    else:
        how = (f"no jwpipe engine plans it yet (not even --engine jwst): run jwst's own "
               f"pipeline instead, e.g. '{command}' with jwst installed")
    what = _WHY_NOT.get(kind.asn_type, "")
    detail = f" ({what})" if what else ""
    raise UnsupportedAssociationError(
        f"{source}: association type '{kind.asn_type}'{detail} is for jwst's "
        f"{kind.jwst_pipeline}, which jwpipe's own steps do not implement; {how}",
        f"type {kind.asn_type}")


def nonscience_advice(kind: AsnKind, roles: list[str], source: str) -> str:
    """The command that processes an association whose products have non-science members.

    jwpipe's Image2 subtracts ``background`` members when run directly (``jwpipe strun``); any
    other non-science role is jwst's to handle.
    """
    if kind.level == 2 and set(roles) <= {"background"}:
        return (f"run 'jwpipe strun calwebb_image2 {source}' (it subtracts the background "
                "members), or give the workflow an association without them")
    return f"run jwst's own pipeline, e.g. '{_jwst_command(kind.jwst_pipeline, source)}'"
