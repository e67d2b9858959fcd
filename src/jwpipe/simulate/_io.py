"""Atomic file writing helpers (temporary file in the target directory, then os.replace)."""

from __future__ import annotations

import os
from pathlib import Path

from astropy.io import fits
from astropy.table import Table

from jwpipe.atomic import atomic_path

__all__ = ["write_fits_atomic", "write_table_atomic"]


def _atomic(path: Path, write) -> Path:
    with atomic_path(path) as tmp:
        write(tmp)
    return Path(path)


def write_fits_atomic(hdul: fits.HDUList, path: str | os.PathLike[str]) -> Path:
    """Write an HDUList to ``path`` atomically."""
    return _atomic(Path(path), lambda tmp: hdul.writeto(tmp, overwrite=True, checksum=False))


def write_table_atomic(table: Table, path: str | os.PathLike[str]) -> Path:
    """Write an astropy Table as ECSV atomically."""
    return _atomic(Path(path), lambda tmp: table.write(tmp, format="ascii.ecsv", overwrite=True))
