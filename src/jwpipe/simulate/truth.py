"""Write the truth products of a simulation (documented in ``docs/simulate.md``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from jwpipe.simulate._io import write_fits_atomic, write_table_atomic

__all__ = ["write_exposure_truth", "write_table"]


def write_exposure_truth(
    path: Path,
    *,
    rate: np.ndarray,
    true_wcs: WCS,
    nominal_wcs: WCS,
    sources: Table,
    cosmic_rays: Table,
    keywords: dict[str, object],
) -> Path:
    """Write ``<exposure>_truth.fits``.

    Extensions: ``RATE`` (true count rate in DN/s as the detector sees it: sky + sources times
    the flat, excluding dark current; WCS = the *true* WCS), ``SOURCES`` (catalogue positions on
    this detector), ``CRS`` (cosmic-ray hits). Primary keywords: pointing truth and parameters.
    """
    primary = fits.PrimaryHDU()
    for key, value in keywords.items():
        primary.header[key] = value
    rate_hdu = fits.ImageHDU(rate.astype(np.float32), name="RATE")
    rate_hdu.header["BUNIT"] = "DN/s"
    rate_hdu.header.update(true_wcs.to_header())
    nom = nominal_wcs.wcs
    rate_hdu.header["NOMCRV1"] = (float(nom.crval[0]), "nominal (header) CRVAL1")
    rate_hdu.header["NOMCRV2"] = (float(nom.crval[1]), "nominal (header) CRVAL2")
    hdul = fits.HDUList([
        primary,
        rate_hdu,
        fits.BinTableHDU(sources, name="SOURCES"),
        fits.BinTableHDU(cosmic_rays, name="CRS"),
    ])
    return write_fits_atomic(hdul, path)


def write_table(table: Table, path: Path) -> Path:
    """Write a truth table as ECSV."""
    return write_table_atomic(table, path)
