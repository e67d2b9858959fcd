"""Read and write association JSON files."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from jwpipe.associations.model import Association
from jwpipe.associations.validate import parse_asn
from jwpipe.atomic import write_text_atomic
from jwpipe.errors import AssociationError


def load_asn(path: str | os.PathLike[str]) -> Association:
    """Load and validate an association file.

    Parameters
    ----------
    path : str or path-like
        The ``*_asn.json`` file. Member names are resolved relative to its directory.

    Returns
    -------
    Association
        The validated association. Member files need not exist (see
        :meth:`Association.missing_members`).

    Raises
    ------
    AssociationError
        If the file cannot be read, is not valid JSON, or violates the schema or name rules.
    """
    from jwpipe.parsing_limits import LimitError, loads_json, read_limited

    file = Path(path)
    source = str(file)
    try:
        text = read_limited(file).decode("utf-8")
    except LimitError as exc:
        raise AssociationError(f"{source}: refused: {exc}") from None
    except FileNotFoundError:
        raise AssociationError(f"{source}: association file not found") from None
    except IsADirectoryError:
        raise AssociationError(f"{source}: is a directory, not an association file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AssociationError(f"{source}: cannot read association file ({exc})") from None
    try:
        data = loads_json(text)
    except LimitError as exc:
        raise AssociationError(f"{source}: refused: {exc}") from None
    except json.JSONDecodeError as exc:
        raise AssociationError(
            f"{source}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    return parse_asn(data, file.absolute().parent, source)


def write_asn(asn: dict[str, Any] | Association, path: str | os.PathLike[str]) -> str:
    """Validate an association and write it atomically as JSON.

    Parameters
    ----------
    asn : dict or Association
        The association structure (as returned by :func:`asn_from_list`).
    path : str or path-like
        Output file. Member names are validated relative to its directory.

    Returns
    -------
    str
        The path written.

    Raises
    ------
    AssociationError
        If the association is invalid, or the file cannot be written.
    """
    target = Path(path)
    data = asn.to_dict() if isinstance(asn, Association) else asn
    parse_asn(data, target.absolute().parent, str(target))
    try:
        text = json.dumps(data, indent=4) + "\n"
    except (TypeError, ValueError) as exc:
        raise AssociationError(f"{target}: association is not JSON-serialisable ({exc})") from None
    directory = target.absolute().parent
    if not directory.is_dir():
        raise AssociationError(f"{target}: output directory {directory} does not exist")
    try:
        write_text_atomic(target, text, fsync=True)
    except OSError as exc:
        raise AssociationError(f"{target}: cannot write association ({exc})") from None
    return str(target)
