"""In-memory form of a JWST association: :class:`Association`, :class:`Product`, :class:`Member`.

Objects are built by :func:`jwpipe.associations.validate.parse_asn` (never by hand in normal
use), so every instance is already validated. ``to_dict()`` gives back the JSON structure,
keeping keys jwpipe does not interpret (``constraints``, ``code_version``, ...) untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Member roles (``exptype``) known to the JWST association generator and pipelines.
KNOWN_EXPTYPES: frozenset[str] = frozenset(
    {
        # level 2 and level 3 roles consumed by the imaging/spectroscopic pipelines
        "science",
        "background",
        "imprint",
        "sourcecat",
        "segmap",
        "direct_image",
        "psf",
        "selfcal",
        # roles the DMS generator maps other EXP_TYPEs to
        "target_acquisition",
        "target_acquistion",  # spelled so by jwst's generator in 2018 (asn_standards files)
        "dark",
        "flat",
        "engineering",
        "autoflat",
        "autowave",
    }
)


@dataclass(frozen=True)
class Member:
    """One member of an association product.

    Attributes
    ----------
    expname : str
        File name exactly as written in the association (relative to its directory).
    exptype : str
        Role of the member, lower-cased (``science``, ``background``, ...).
    path : pathlib.Path
        Absolute path of the member, resolved against the association file's directory.
    exposerr : str or None
        Exposure error status copied from the file (old files hold the string ``"null"``).
    asn_candidate : str or None
        Candidate list string as written by the DMS generator.
    group_id : str or None
        Explicit group (exposure) identifier used to align detectors as one unit.
    extra : dict
        Any other member keys (for example ``tweakreg_catalog``), kept for ``to_dict``.
    """

    expname: str
    exptype: str
    path: Path
    exposerr: str | None = None
    asn_candidate: str | None = None
    group_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the member as written in an association file."""
        out: dict[str, Any] = {"expname": self.expname, "exptype": self.exptype}
        for key in ("exposerr", "asn_candidate", "group_id"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        out.update(self.extra)
        return out


@dataclass(frozen=True)
class Product:
    """One output product of an association and the members that make it.

    Attributes
    ----------
    name : str
        Output root name (level 2: exposure root; level 3: combined product root).
    members : list of Member
        Members in file order.
    extra : dict
        Any other product keys, kept for ``to_dict``.
    """

    name: str
    members: list[Member]
    extra: dict[str, Any] = field(default_factory=dict)

    def members_of(self, exptype: str) -> list[Member]:
        """Return the members whose role is ``exptype`` (case-insensitive), in file order."""
        wanted = exptype.lower()
        return [m for m in self.members if m.exptype == wanted]

    @property
    def science(self) -> list[Member]:
        """The ``science`` members."""
        return self.members_of("science")

    @property
    def background(self) -> list[Member]:
        """The ``background`` members."""
        return self.members_of("background")

    def to_dict(self) -> dict[str, Any]:
        """Return the product as written in an association file."""
        out: dict[str, Any] = {"name": self.name}
        out.update(self.extra)
        out["members"] = [m.to_dict() for m in self.members]
        return out


#: Top-level keys with a dedicated attribute, in the order the DMS generator writes them.
TOP_LEVEL_KEYS: tuple[str, ...] = (
    "asn_type",
    "asn_rule",
    "version_id",
    "code_version",
    "degraded_status",
    "program",
    "constraints",
    "asn_id",
    "target",
    "asn_pool",
)


@dataclass(frozen=True)
class Association:
    """A validated JWST association.

    Attributes
    ----------
    asn_type, asn_rule, asn_id, program, target, asn_pool : str or None
        Identification keys (``None`` when the file leaves them out; only ``products`` is
        required by the JWST schema).
    version_id, code_version, degraded_status, constraints : str or None
        Generator bookkeeping, kept as read.
    products : list of Product
        Output products in file order.
    directory : pathlib.Path
        Absolute directory that member names are relative to.
    source : str
        Where the association came from (file path, or ``"<dict>"``), used in messages.
    extra : dict
        Any other top-level keys, kept for ``to_dict``.
    null_keys : frozenset of str
        Identification keys present in the file with a JSON ``null`` value (written back).
    """

    products: list[Product]
    directory: Path
    source: str = "<dict>"
    asn_type: str | None = None
    asn_rule: str | None = None
    version_id: str | None = None
    code_version: str | None = None
    degraded_status: str | None = None
    program: str | None = None
    constraints: str | None = None
    asn_id: str | None = None
    target: str | None = None
    asn_pool: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    null_keys: frozenset[str] = frozenset()

    @property
    def level(self) -> int:
        """Pipeline level the association feeds: 2 for ``*2`` types (image2, spec2...), else 3."""
        return 2 if (self.asn_type or "").endswith("2") else 3

    @property
    def members(self) -> list[Member]:
        """All members of all products, in file order (a file may appear in several products)."""
        return [m for p in self.products for m in p.members]

    def science_paths(self) -> list[Path]:
        """Absolute paths of all science members, without repeats, in file order."""
        seen: dict[Path, None] = {}
        for member in self.members:
            if member.exptype == "science":
                seen.setdefault(member.path, None)
        return list(seen)

    def missing_members(self) -> list[Path]:
        """Absolute paths of members that do not exist on disk, without repeats."""
        seen: dict[Path, None] = {}
        for member in self.members:
            if not member.path.exists():
                seen.setdefault(member.path, None)
        return list(seen)

    def to_dict(self) -> dict[str, Any]:
        """Return the association as a JSON-ready dict (member names as written, not resolved)."""
        out: dict[str, Any] = {}
        for key in TOP_LEVEL_KEYS:
            value = getattr(self, key)
            if value is not None or key in self.null_keys:
                out[key] = value
        out.update({k: v for k, v in self.extra.items() if k not in out})
        out["products"] = [p.to_dict() for p in self.products]
        return out
