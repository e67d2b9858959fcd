"""``TweakRegStep``: joint relative (and optional absolute) alignment of exposures.

1. Sources are detected in every member with the source catalogue's photutils detection
   (:func:`jwpipe.algorithms.image_catalog.find_sources`: Background2D, matched filter,
   segmentation, windowed centroids; no deblending, which alignment does not need); the
   ``brightest`` ones not touching a bad pixel or the edge are kept and projected with the
   member's current WCS onto one tangent plane (arcsec about the mean reference point of all
   members).
2. Members of one exposure (same ``group_id``: all detectors of an exposure) are pooled and
   aligned as one rigid unit.
3. :func:`jwpipe.algorithms.image_align.align_catalogs` matches every pair of
   groups whose footprints overlap (2-D histogram vote, then mutual nearest neighbours within
   ``tolerance``) and solves one least-squares system for all groups at once (shift, plus
   rotation for ``rshift``) through normal equations accumulated pair by pair, the first
   group held fixed, or every group tied to ``abs_refcat`` when one is given. ``general``
   (jwst's full affine, used by STScI's generic and MIRI ``pars-tweakreg`` files) matches with
   the ``rshift`` fit, then fits ``A p + t`` (6 parameters per group) to the final matches.
4. Each member's WCS (SCI header) is corrected: the reference point moves with the fitted
   transformation and the CD matrix rotates with it (``general``: is multiplied by ``A``).

Fallback: if the fit fails (fewer than ``minobj`` sources or matches, groups that share no
sources) the WCSs are left unchanged, ``S_TWKREG = SKIPPED`` is recorded in every member and
the reason is logged; a single exposure without ``abs_refcat`` is also SKIPPED, as in jwst.
Without ``abs_refcat``, groups whose footprints overlap none of the largest set of overlapping
groups (e.g. a separate pointing) are left unaligned with a warning, SKIPPED and
``extra['tweakreg']['skipped']`` recorded, while that set is aligned.
Per-member results go to ``model.extra['tweakreg']`` (shift in arcsec, rotation in deg,
RMS, number of matches).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from jwpipe.algorithms.image_align import AlignmentError, align_catalogs, tangent_plane
from jwpipe.algorithms.image_catalog import find_sources
from jwpipe.algorithms.image_geometry import boxes_overlap, sky_footprint
from jwpipe.algorithms.image_skymatch import connected_components
from jwpipe.atomic import atomic_path
from jwpipe.errors import StepInputError
from jwpipe.steps._image_common import (
    affine_wcs,
    bad_pixel_mask,
    model_wcs,
    rotate_shift_wcs,
    set_model_wcs,
)
from jwpipe.steps._members import check_members, group_ids, load_members, map_members
from jwpipe.stpipe import Step

__all__ = ["TweakRegStep", "detect_member_sources", "read_reference_catalog"]


def detect_member_sources(model: Any, kernel_fwhm: float, snr_threshold: float,
                          bkg_boxsize: int, brightest: int, peakmax: float | None,
                          npixels: int = 5) -> np.ndarray:
    """Untruncated sources of one image, brightest first (``find_sources`` rows)."""
    data = np.asarray(model.data, dtype=np.float32)
    bad = bad_pixel_mask(model.dq, data.shape) | ~np.isfinite(data)
    err = np.asarray(model.err, dtype=np.float32)
    usable = np.isfinite(err[~bad]).any() and (err[~bad] > 0).any()
    # no deblending: alignment needs the brightest isolated sources only, and deblending
    # thousands of segments of a full frame costs more than the rest of the step
    src = find_sources(data, bad, err if usable else None, kernel_fwhm=kernel_fwhm,
                       snr_threshold=snr_threshold, npixels=npixels,
                       box_size=int(max(16, min(bkg_boxsize, max(data.shape)))), deblend=False,
                       brightest=brightest, drop_truncated=True, peakmax=peakmax)
    return src


_RA_NAMES = ("ra", "ra_deg", "ra_icrs", "raj2000")
_DEC_NAMES = ("dec", "dec_deg", "de_icrs", "dej2000", "decj2000")


def read_reference_catalog(path: str) -> tuple[np.ndarray, np.ndarray]:
    """RA, Dec (degrees) of an absolute reference catalogue (any astropy table format)."""
    from astropy.table import Table

    if not os.path.exists(path):
        raise StepInputError(f"abs_refcat {path} does not exist")
    try:
        table = Table.read(path)
    except Exception as exc:  # astropy raises many types for unreadable tables
        raise StepInputError(f"abs_refcat {path}: cannot read the table ({exc})") from None
    names = {n.lower(): n for n in table.colnames}
    # Gaia archive (ra, dec), VizieR Gaia DR3 (RA_ICRS, DE_ICRS), J2000 catalogues
    ra = next((names[k] for k in _RA_NAMES if k in names), None)
    dec = next((names[k] for k in _DEC_NAMES if k in names), None)
    if ra is None or dec is None:
        raise StepInputError(f"abs_refcat {path} needs RA and DEC columns (degrees), has "
                             f"{', '.join(table.colnames)}")
    return np.asarray(table[ra], float), np.asarray(table[dec], float)


class TweakRegStep(Step):
    """Align the exposures of a product to each other (and to a reference catalogue)."""

    class_alias = "tweakreg"
    spec = """
    save_catalogs = boolean(default=False)  # Write each member's source catalogue (ECSV)
    kernel_fwhm = float(default=2.5)  # Gaussian kernel FWHM (pixels) for source detection
    snr_threshold = float(default=10.0)  # Detection threshold (matched-filter S/N)
    npixels = integer(default=5)  # Least number of connected pixels above the threshold
    bkg_boxsize = integer(default=400)  # Background mesh box size (pixels)
    brightest = integer(default=200)  # Keep this many brightest sources per image
    peakmax = float(default=None)  # Reject sources with a peak above this value
    minobj = integer(default=15)  # Least number of sources / matches per exposure
    fitgeometry = option('shift', 'rshift', 'general', default='rshift')  # Fitted transformation
    nclip = integer(min=0, default=3)  # Sigma-clipping iterations of the fit
    sigma = float(min=0.0, default=3.0)  # Clipping limit in units of the fit RMS
    searchrad = float(default=2.0)  # Largest initial offset between exposures (arcsec)
    use2dhist = boolean(default=True)  # Find the initial offset with a 2-D histogram
    tolerance = float(default=0.7)  # Matching radius after the initial offset (arcsec)
    abs_refcat = string(default='')  # Absolute reference catalogue (file with RA, DEC)
    abs_minobj = integer(default=15)  # minobj for the absolute alignment
    abs_searchrad = float(default=6.0)  # searchrad for the absolute alignment (arcsec)
    abs_tolerance = float(default=0.7)  # tolerance for the absolute alignment (arcsec)
    """
    workflow_scope = "product"
    workflow_memory = (0.05, 300.0)

    def process(self, input: Any) -> Any:
        container = load_members(input, self.qualified_name)
        check_members(container, self.qualified_name)
        groups = group_ids(container)
        names = list(dict.fromkeys(groups))
        refcat = self.abs_refcat.strip() if self.abs_refcat else ""
        if len(names) < 2 and not refcat:
            return self._skip(container, "only one exposure (group) and no abs_refcat")

        wcss, cats = [], []
        for i in range(len(container)):
            model = container[i]
            wcss.append(model_wcs(model, self.qualified_name))
            src = detect_member_sources(model, self.kernel_fwhm, self.snr_threshold,
                                        self.bkg_boxsize, self.brightest, self.peakmax,
                                        self.npixels)
            ra, dec = wcss[-1].all_pix2world(src["x"], src["y"], 0)
            cats.append((ra, dec))
            self.log.info("%s: %d sources", getattr(model.meta, "filename", i), len(src))
            if self.save_catalogs:
                self._save_catalog(model, src, ra, dec)
            del model
        centres = np.array([w.wcs.crval for w in wcss])
        tp = _mean_direction(centres[:, 0], centres[:, 1])
        plane = []
        for name in names:
            xs, ys = [], []
            for (ra, dec), g in zip(cats, groups, strict=True):
                if g == name:
                    xi, eta = tangent_plane(ra, dec, *tp)
                    xs.append(xi)
                    ys.append(eta)
            plane.append(np.column_stack([np.concatenate(xs), np.concatenate(ys)]))
        reference = None
        minobj, searchrad, tolerance = self.minobj, self.searchrad, self.tolerance
        if refcat:
            rra, rdec = read_reference_catalog(self.make_input_path(refcat))
            xi, eta = tangent_plane(rra, rdec, *tp)
            cx, cy = tangent_plane(centres[:, 0], centres[:, 1], *tp)
            near = np.hypot(xi, eta) < np.hypot(cx, cy).max() + 600.0  # arcsec
            reference = np.column_stack([xi[near], eta[near]])
            minobj, searchrad, tolerance = self.abs_minobj, self.abs_searchrad, \
                self.abs_tolerance
        pairs = _overlapping_groups(wcss, groups, names, tp, margin=searchrad)
        aligned = names
        if reference is None:
            aligned, plane, pairs = self._largest_overlapping_set(names, plane, pairs)
            if len(aligned) < 2:
                return self._skip(container, "no two exposure groups overlap")
        try:
            result = align_catalogs(plane, reference=reference, fixed=0,
                                          fit_rotation=self.fitgeometry != "shift",
                                          affine=self.fitgeometry == "general",
                                          searchrad=searchrad, tolerance=tolerance,
                                          minobj=minobj, nclip=self.nclip, sigma=self.sigma,
                                          candidate_pairs=pairs)
        except AlignmentError as exc:
            return self._skip(container, f"alignment failed: {exc}")

        index = {name: k for k, name in enumerate(aligned)}

        def correct(i: int, model: Any) -> None:
            if groups[i] not in index:  # overlaps none of the aligned exposures: unchanged
                model.extra["tweakreg"] = {"group": groups[i],
                                           "skipped": "overlaps no aligned exposure group"}
                self.record_step_status(model, "SKIPPED")
                return
            k = index[groups[i]]
            if result.matrix is not None:
                new = affine_wcs(wcss[i], result.matrix[k], result.shift[k], tp)
            else:
                new = rotate_shift_wcs(wcss[i], result.shift[k], float(result.rotation[k]), tp)
            set_model_wcs(model, new)
            model.extra["tweakreg"] = {
                "group": groups[i],
                "shift_arcsec": [float(v) for v in result.shift[k]],
                "rotation_deg": float(result.rotation[k]),
                **({"matrix": result.matrix[k].tolist()} if result.matrix is not None else {}),
                "rms_arcsec": float(result.rms[k]),
                "nmatch": int(result.nmatch[k]),
                "reference": "abs_refcat" if reference is not None else aligned[0],
            }
            self.record_step_status(model, "COMPLETE")

        for k, name in enumerate(aligned):
            self.log.info("%s: shift (%.4f, %.4f)\" rotation %.5f deg, rms %.4f\", %d matches",
                          name, *result.shift[k], result.rotation[k], result.rms[k],
                          result.nmatch[k])
        return map_members(self, container, correct)

    def _largest_overlapping_set(self, names: list[str], plane: list[np.ndarray],
                                 pairs: list[tuple[int, int]]
                                 ) -> tuple[list[str], list[np.ndarray], list[tuple[int, int]]]:
        """Keep the largest set of groups linked by overlapping footprints (ties: the set of
        the first group); the others cannot be aligned to it and are left as they are."""
        comp = connected_components(len(names), pairs)
        main = int(np.argmax(np.bincount(comp)))
        keep = [k for k in range(len(names)) if comp[k] == main]
        if len(keep) == len(names):
            return names, plane, pairs
        self.log.warning("exposure group(s) %s overlap none of %s: left unaligned",
                         ", ".join(names[k] for k in range(len(names)) if comp[k] != main),
                         ", ".join(names[k] for k in keep))
        new = {old: k for k, old in enumerate(keep)}
        return ([names[k] for k in keep], [plane[k] for k in keep],
                [(new[i], new[j]) for i, j in pairs if i in new and j in new])

    def _skip(self, container: Any, reason: str) -> Any:
        self.log.warning("tweakreg skipped: %s", reason)

        def mark(i: int, model: Any) -> None:
            self.record_step_status(model, "SKIPPED")
            model.extra["tweakreg"] = {"skipped": reason}

        return map_members(self, container, mark)

    def _save_catalog(self, model: Any, src: np.ndarray, ra: np.ndarray, dec: np.ndarray
                      ) -> None:
        from astropy.table import Table

        table = Table({"x": src["x"], "y": src["y"], "ra": ra, "dec": dec,
                       "flux": src["flux"], "snr": src["snr"]})
        base = getattr(model.meta, "filename", None) or "member.fits"
        path = self.make_output_path(basepath=base, suffix="cat", ext=".ecsv")
        if os.path.dirname(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
        with atomic_path(path) as tmp:
            table.write(tmp, format="ascii.ecsv", overwrite=True)


def _overlapping_groups(wcss: list[Any], groups: list[str], names: list[str],
                        tp: tuple[float, float], margin: float) -> list[tuple[int, int]]:
    """Pairs of groups whose footprints (tangent-plane boxes, arcsec) overlap."""
    boxes = {name: [np.inf, -np.inf, np.inf, -np.inf] for name in names}
    for wcs, g in zip(wcss, groups, strict=True):
        sky = sky_footprint(wcs, (wcs.pixel_shape[1], wcs.pixel_shape[0]))
        xi, eta = tangent_plane(sky[:, 0], sky[:, 1], *tp)
        b = boxes[g]
        b[:] = [min(b[0], xi.min()), max(b[1], xi.max()), min(b[2], eta.min()),
                max(b[3], eta.max())]
    return [(i, j) for i, a in enumerate(names) for j in range(i + 1, len(names))
            if boxes_overlap(boxes[a], boxes[names[j]], margin)]


def _mean_direction(ra: np.ndarray, dec: np.ndarray) -> tuple[float, float]:
    r, d = np.radians(ra), np.radians(dec)
    v = np.array([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)]).mean(axis=1)
    return (float(np.degrees(np.arctan2(v[1], v[0])) % 360.0),
            float(np.degrees(np.arcsin(v[2] / np.linalg.norm(v)))))

