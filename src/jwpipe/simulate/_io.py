"""Atomic file writing helpers (temporary file in the target directory, then os.replace)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from astropy.io import fits
from astropy.table import Table

__all__ = ["write_fits_atomic", "write_table_atomic"]


def _atomic(path: Path, write) -> Path:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_fits_atomic(hdul: fits.HDUList, path: str | os.PathLike[str]) -> Path:
    """Write an HDUList to ``path`` atomically."""
    return _atomic(Path(path), lambda tmp: hdul.writeto(tmp, overwrite=True, checksum=False))


def write_table_atomic(table: Table, path: str | os.PathLike[str]) -> Path:
    """Write an astropy Table as ECSV atomically."""
    return _atomic(Path(path), lambda tmp: table.write(tmp, format="ascii.ecsv", overwrite=True))
