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
    true_wcs: fits.Header,
    nominal_wcs: WCS,
    sources: Table,
    area: np.ndarray | None = None,
    cosmic_rays: Table,
    keywords: dict[str, object],
) -> Path:
    """Write ``<exposure>_truth.fits``.

    Extensions: ``RATE`` (true count rate in DN/s as the detector sees it: sky + sources times
    the flat, excluding dark current; ``true_wcs``: the header of the *true* WCS, a TAN-SIP fit
    to the distorted true gWCS), ``AREA`` (the true relative pixel area, when given),
    ``SOURCES`` (catalogue positions on this detector), ``CRS`` (cosmic-ray hits). Primary
    keywords: pointing truth and parameters.
    """
    primary = fits.PrimaryHDU()
    for key, value in keywords.items():
        primary.header[key] = value
    rate_hdu = fits.ImageHDU(rate.astype(np.float32), name="RATE")
    rate_hdu.header["BUNIT"] = "DN/s"
    rate_hdu.header.update(true_wcs)
    nom = nominal_wcs.wcs
    rate_hdu.header["NOMCRV1"] = (float(nom.crval[0]), "nominal (header) CRVAL1")
    rate_hdu.header["NOMCRV2"] = (float(nom.crval[1]), "nominal (header) CRVAL2")
    hdus = [primary, rate_hdu]
    if area is not None:
        hdus.append(fits.ImageHDU(area.astype(np.float32), name="AREA"))
    hdus += [fits.BinTableHDU(sources, name="SOURCES"), fits.BinTableHDU(cosmic_rays, name="CRS")]
    hdul = fits.HDUList(hdus)
    return write_fits_atomic(hdul, path)


def write_table(table: Table, path: Path) -> Path:
    """Write a truth table as ECSV."""
    return write_table_atomic(table, path)
