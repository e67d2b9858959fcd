"""Build association structures from a list of files (the ``asn_from_list`` equivalent)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

from jwpipe import __version__
from jwpipe.associations.validate import (
    check_member_name,
    check_product_name,
    normalize_exptype,
)
from jwpipe.errors import AssociationError

#: File-name suffixes of JWST pipeline products, stripped to get an exposure's root name.
KNOWN_SUFFIXES: frozenset[str] = frozenset(
    {
        "uncal",
        "dq_init",
        "saturation",
        "superbias",
        "refpix",
        "linearity",
        "dark_current",
        "dark",
        "jump",
        "ramp",
        "rate",
        "rateints",
        "trapsfilled",
        "fitopt",
        "bsub",
        "bsubints",
        "assign_wcs",
        "flat_field",
        "photom",
        "cal",
        "calints",
        "crf",
        "crfints",
        "i2d",
        "tweakreg",
        "skymatch",
        "outlier_detection",
        "resample",
        "s2d",
        "x1d",
        "x1dints",
    }
)

_DEFAULT_RULES = {"image2": "Asn_Lv2Image", "image3": "Asn_Lv3Image"}


def member_root(name: str) -> str:
    """Return an exposure's root name: file name without extension and known product suffix.

    ``jw01234001001_02101_00001_nrca1_rate.fits`` -> ``jw01234001001_02101_00001_nrca1``.
    """
    stem = PurePosixPath(name).name
    for ext in (".fits.gz", ".fits", ".fit", ".asdf"):
        if stem.lower().endswith(ext):
            stem = stem[: -len(ext)]
            break
    root, sep, suffix = stem.rpartition("_")
    if sep and root and suffix.lower() in KNOWN_SUFFIXES:
        return root
    return stem


def asn_from_list(
    members: list[str],
    product_name: str | None = None,
    asn_type: str = "image3",
    exptype: str = "science",
    rule: str | None = None,
    asn_id: str | None = None,
    program: str | None = None,
    target: str | None = None,
    pool: str | None = None,
) -> dict[str, Any]:
    """Create an association structure from a list of member file names.

    Parameters
    ----------
    members : list of str
        Member file names, relative to the directory the association will be written to.
    product_name : str, optional
        ``image3``: the one product's name (required). ``image2``: allowed only with a single
        member, to override the default product name (the member's root name).
    asn_type : {"image3", "image2"}
        ``image3``: one product holding all members. ``image2``: one product per member.
    exptype : str
        Role given to every member (default ``science``).
    rule, asn_id, program, target, pool : str, optional
        Identification keys. Defaults: rule ``Asn_Lv3Image`` / ``Asn_Lv2Image``, asn_id
        ``a3001``, program ``noprogram``, target ``none``, pool ``none``.

    Returns
    -------
    dict
        A JSON-ready association in the JWST layout (validate and save with ``write_asn``).

    Raises
    ------
    AssociationError
        For an empty or duplicated member list, unsafe names, an unknown exptype or asn_type,
        a missing image3 product name, or an image2 product name with several members.
    """
    source = "asn_from_list"
    if asn_type not in _DEFAULT_RULES:
        raise AssociationError(
            f"{source}: asn_type must be one of {sorted(_DEFAULT_RULES)}, got {asn_type!r}"
        )
    if not members:
        raise AssociationError(f"{source}: no member files given")
    role = normalize_exptype(exptype, source, "exptype")
    names = [check_member_name(str(m), source, f"member {i}") for i, m in enumerate(members)]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise AssociationError(f"{source}: duplicate member {dup!r}")
    if asn_id is not None and not re.fullmatch(r"[A-Za-z0-9_-]+", asn_id):
        raise AssociationError(f"{source}: asn_id {asn_id!r} must be letters, digits, '_', '-'")

    def member(name: str) -> dict[str, Any]:
        return {"expname": name, "exptype": role, "exposerr": None}

    if asn_type == "image3":
        if not product_name:
            raise AssociationError(f"{source}: an image3 association needs a product name")
        check_product_name(product_name, source, "product")
        products = [{"name": product_name, "members": [member(n) for n in names]}]
    else:
        if product_name and len(names) > 1:
            raise AssociationError(
                f"{source}: an image2 association makes one product per member, named after "
                f"the member; a product name can only be given for a single member "
                f"({len(names)} given)"
            )
        products = []
        for name in names:
            pname = product_name or member_root(name)
            check_product_name(pname, source, f"product for {name}")
            products.append({"name": pname, "members": [member(name)]})
        roots = [p["name"] for p in products]
        if len(set(roots)) != len(roots):
            dup = next(r for r in roots if roots.count(r) > 1)
            raise AssociationError(
                f"{source}: two members share the root name {dup!r}; image2 products would "
                "overwrite each other"
            )

    return {
        "asn_type": asn_type,
        "asn_rule": rule or _DEFAULT_RULES[asn_type],
        "version_id": datetime.now(UTC).strftime("%Y%m%dt%H%M%S"),
        "code_version": f"jwpipe {__version__}",
        "degraded_status": "No known degraded exposures in association.",
        "program": program or "noprogram",
        "constraints": "none",
        "asn_id": asn_id or "a3001",
        "target": target or "none",
        "asn_pool": pool or "none",
        "products": products,
    }
