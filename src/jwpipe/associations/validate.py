"""Validate an association's JSON structure and turn it into an :class:`Association`.

Besides the JWST schema (only ``products`` is required; each product needs ``members``; each
member needs ``expname`` and ``exptype``), names are checked for safety because they later
become file names, shell arguments and Snakefile strings: a member name is a relative path
whose parts use only ``[A-Za-z0-9._-]``, never start with ``-`` and never leave the
association's directory; a product name is a single such part.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

from jwpipe.associations.model import (
    KNOWN_EXPTYPES,
    TOP_LEVEL_KEYS,
    Association,
    Member,
    Product,
)
from jwpipe.errors import AssociationError

_SAFE_PART = re.compile(r"[A-Za-z0-9._-]+")

#: Optional string-valued member keys with a dedicated attribute.
_MEMBER_STR_KEYS = ("exposerr", "asn_candidate", "group_id")


def _fail(source: str, where: str, problem: str) -> AssociationError:
    location = f"{source}: {where}: " if where else f"{source}: "
    return AssociationError(location + problem)


def check_product_name(name: object, source: str = "<dict>", where: str = "product") -> str:
    """Check that a product name is a safe single file-name root; return it.

    Parameters
    ----------
    name : object
        Candidate name.
    source, where : str
        Association source and location, used in the error message.

    Returns
    -------
    str
        The name, unchanged.

    Raises
    ------
    AssociationError
        When the name is not a non-empty string of ``[A-Za-z0-9._-]`` not starting with ``-``
        (``.`` and ``..`` are refused too).
    """
    if not isinstance(name, str) or not name:
        raise _fail(source, where, f"'name' must be a non-empty string, got {name!r}")
    if "{" in name and "}" in name:
        raise _fail(
            source,
            where,
            f"product name {name!r} is a template (fields such as '{{suffix}}' or "
            "'{source_id}' filled in by the jwst pipeline), which jwpipe does not support",
        )
    if not _SAFE_PART.fullmatch(name) or name.startswith("-") or name in (".", ".."):
        raise _fail(
            source,
            where,
            f"product name {name!r} is unsafe: use only letters, digits, '.', '_' and '-' "
            "(no path separators, not starting with '-')",
        )
    return name


def check_member_name(name: object, source: str = "<dict>", where: str = "member") -> str:
    """Check that a member name is a safe relative path inside the association's directory.

    Parameters
    ----------
    name : object
        Candidate ``expname``.
    source, where : str
        Association source and location, used in the error message.

    Returns
    -------
    str
        The name, unchanged.

    Raises
    ------
    AssociationError
        For a non-string or empty name, an absolute path, a ``..`` part, an empty part
        (``a//b``), a part starting with ``-``, or any character outside ``[A-Za-z0-9._-/]``.
    """
    if not isinstance(name, str) or not name:
        raise _fail(source, where, f"'expname' must be a non-empty string, got {name!r}")
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        raise _fail(
            source,
            where,
            f"member {name!r} is an absolute path; members must be relative "
            "to the association file's directory",
        )
    parts = name.split("/")
    for part in parts:
        if part == "..":
            raise _fail(source, where, f"member {name!r} leaves the association's directory ('..')")
        if not part or not _SAFE_PART.fullmatch(part):
            raise _fail(
                source,
                where,
                f"member name {name!r} is unsafe: use only letters, digits, '.', '_', '-' "
                "and '/' between directory parts",
            )
        if part.startswith("-"):
            raise _fail(source, where, f"member name {name!r} has a part starting with '-'")
    if parts[-1] == ".":
        raise _fail(source, where, f"member name {name!r} is not a file name")
    return name


def normalize_exptype(exptype: object, source: str = "<dict>", where: str = "member") -> str:
    """Return ``exptype`` lower-cased after checking it is a known member role.

    Raises
    ------
    AssociationError
        For a non-string or unknown role.
    """
    if not isinstance(exptype, str):
        raise _fail(source, where, f"'exptype' must be a string, got {exptype!r}")
    value = exptype.strip().lower()
    if value not in KNOWN_EXPTYPES:
        known = ", ".join(sorted(KNOWN_EXPTYPES))
        raise _fail(source, where, f"unknown exptype {exptype!r} (known: {known})")
    return value


def _optional_str(
    value: Any, key: str, source: str, where: str, allow_int: bool = False
) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _fail(source, where, f"{key!r} must be a string, got {type(value).__name__}")
    if isinstance(value, int) and not allow_int:
        raise _fail(source, where, f"{key!r} must be a string, got int {value}")
    return str(value)


def _parse_member(raw: Any, base: Path, source: str, where: str) -> Member:
    if not isinstance(raw, dict):
        raise _fail(source, where, f"member must be a JSON object, got {type(raw).__name__}")
    for key in ("expname", "exptype"):
        if key not in raw:
            raise _fail(source, where, f"member is missing required key {key!r}")
    expname = check_member_name(raw["expname"], source, where)
    exptype = normalize_exptype(raw["exptype"], source, f"{where} ({expname})")
    values = {
        key: _optional_str(raw.get(key), key, source, f"{where} ({expname})", allow_int=True)
        for key in _MEMBER_STR_KEYS
    }
    # keys written as JSON null stay in ``extra`` so that to_dict() writes them back
    extra = {
        k: v
        for k, v in raw.items()
        if k not in ("expname", "exptype", *_MEMBER_STR_KEYS) or v is None
    }
    if "tweakreg_catalog" in extra and extra["tweakreg_catalog"] not in (None, ""):
        check_member_name(extra["tweakreg_catalog"], source, f"{where} tweakreg_catalog")
    path = base.joinpath(*PurePosixPath(expname).parts)
    return Member(expname=expname, exptype=exptype, path=path, extra=extra, **values)


def _parse_product(raw: Any, base: Path, source: str, index: int) -> Product:
    where = f"products[{index}]"
    if not isinstance(raw, dict):
        raise _fail(source, where, f"product must be a JSON object, got {type(raw).__name__}")
    if "name" not in raw:
        raise _fail(source, where, "product is missing required key 'name'")
    name = check_product_name(raw["name"], source, where)
    where = f"products[{index}] ({name})"
    if "members" not in raw:
        raise _fail(source, where, "product is missing required key 'members'")
    raw_members = raw["members"]
    if not isinstance(raw_members, list) or not raw_members:
        raise _fail(source, where, "'members' must be a non-empty list")
    members = [
        _parse_member(m, base, source, f"{where} members[{j}]") for j, m in enumerate(raw_members)
    ]
    seen: dict[Path, str] = {}
    for member in members:
        key = Path(*PurePosixPath(member.expname).parts)
        if key in seen:
            raise _fail(
                source, where, f"duplicate member {member.expname!r} (also listed as {seen[key]!r})"
            )
        seen[key] = member.expname
    if not any(m.exptype == "science" for m in members):
        raise _fail(source, where, "product has no 'science' member")
    extra = {k: v for k, v in raw.items() if k not in ("name", "members")}
    return Product(name=name, members=members, extra=extra)


def parse_asn(data: Any, base_dir: str | Path, source: str = "<dict>") -> Association:
    """Validate an association structure and build an :class:`Association`.

    Parameters
    ----------
    data : object
        The decoded JSON (must be a dict).
    base_dir : str or path-like
        Directory that member names are relative to (the association file's directory).
    source : str
        Name used in error messages (the file path).

    Returns
    -------
    Association
        With member paths resolved to absolute paths under ``base_dir``.

    Raises
    ------
    AssociationError
        On any schema violation or unsafe name, naming ``source`` and the offending key.
    """
    if not isinstance(data, dict):
        raise _fail(source, "", f"an association must be a JSON object, got {type(data).__name__}")
    if "products" not in data:
        raise _fail(source, "", "missing required key 'products'")
    raw_products = data["products"]
    if not isinstance(raw_products, list) or not raw_products:
        raise _fail(source, "", "'products' must be a non-empty list")
    base = Path(base_dir).absolute()
    products = [_parse_product(p, base, source, i) for i, p in enumerate(raw_products)]
    names: set[str] = set()
    for product in products:
        if product.name in names:
            raise _fail(source, "", f"duplicate product name {product.name!r}")
        names.add(product.name)

    values: dict[str, str | None] = {}
    for key in TOP_LEVEL_KEYS:
        allow_int = key in ("program", "target")
        values[key] = _optional_str(data.get(key), key, source, "", allow_int=allow_int)
    null_keys = frozenset(k for k in TOP_LEVEL_KEYS if k in data and data[k] is None)
    extra = {k: v for k, v in data.items() if k not in (*TOP_LEVEL_KEYS, "products")}
    return Association(
        products=products,
        directory=base,
        source=source,
        extra=extra,
        null_keys=null_keys,
        **values,
    )
