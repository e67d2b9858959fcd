"""The simulated focal plane's geometric distortion, as CRDS ``distortion`` references.

Each simulated detector gets a NIRCam-like imaging distortion: detector pixels (0-based; the
simulated array is the whole detector) -> V2/V3 arcsec, 0.031"/pixel at the array centre
(V2 against +x, VPARITY = -1), plus quadratic and cubic terms that move the corners by
:data:`CORNER_DISPLACEMENT` pixels from where a linear WCS puts them, as the full-frame NIRCam
short-wavelength detectors do. Smaller arrays carry the same pattern compressed onto them
(same corner displacement in pixels, so steeper gradients), and arrays below 256 pixels a
proportionally smaller one. The transform carries a fitted polynomial inverse, as CRDS
distortion references do.

The references are written in the layout stdatamodels' ``DistortionModel`` and
``FilteroffsetModel`` read (ASDF ``meta`` + ``model`` / ``filters``). The simulator renders the
scene through exactly these transforms (:func:`jwpipe.algorithms.imaging_wcs` chain).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from jwpipe.simulate.config import ARCSEC_PER_PIXEL, DETECTORS, SimulationConfig

__all__ = [
    "CORNER_DISPLACEMENT",
    "FILTER_OFFSETS",
    "corner_displacement",
    "distortion_model",
    "exact_inverse",
    "pixel_area_map",
    "write_distortion_reference",
    "write_filteroffset_reference",
]

#: Largest displacement (pixels) of the array's corners from a linear WCS, for arrays of 256
#: pixels and more (several pixels, as on full-frame NIRCam SW detectors).
CORNER_DISPLACEMENT = 3.0

# Shape of the displacement field on the normalised array (u, v in [-1, 1]): quadratic and
# cubic terms, (i, j) -> coefficient of u**i v**j, for dx and dy. Normalised at run time so
# that the largest corner displacement is 1.
_PATTERN_X = {(2, 0): 0.40, (1, 1): -0.25, (0, 2): 0.15, (3, 0): -0.30, (1, 2): 0.20,
              (2, 1): 0.05}
_PATTERN_Y = {(2, 0): -0.10, (1, 1): 0.30, (0, 2): -0.35, (0, 3): 0.25, (2, 1): -0.20,
              (1, 2): 0.05}

#: Filter-dependent pixel offsets (column, row) of the simulated FILTEROFFSET reference: a
#: few tenths of a pixel, as measured for NIRCam's SW filters (CLEAR pupil).
FILTER_OFFSETS: dict[str, tuple[float, float]] = {
    "F070W": (0.21, -0.15), "F090W": (0.12, -0.08), "F115W": (0.05, -0.03),
    "F140M": (-0.04, 0.06), "F150W": (-0.02, 0.04), "F150W2": (0.0, 0.0),
    "F162M": (-0.08, 0.09), "F164N": (-0.11, 0.14), "F182M": (-0.06, 0.05),
    "F187N": (-0.13, 0.11), "F200W": (0.09, -0.12), "F210M": (0.15, -0.10),
    "F212N": (0.18, -0.16),
}


def corner_displacement(size: int) -> float:
    """Largest corner displacement (pixels) of a ``size`` x ``size`` simulated detector."""
    return CORNER_DISPLACEMENT * min(1.0, size / 256.0)


def _pattern(u: np.ndarray, v: np.ndarray, terms: dict[tuple[int, int], float]) -> np.ndarray:
    return sum(c * u**i * v**j for (i, j), c in terms.items())


def _pattern_scale() -> float:
    corners = np.array([-1.0, 1.0, 1.0, -1.0]), np.array([-1.0, -1.0, 1.0, 1.0])
    return float(np.hypot(_pattern(*corners, _PATTERN_X), _pattern(*corners, _PATTERN_Y)).max())


def distortion_model(size: int, v2_ref: float, v3_ref: float) -> Any:
    """Detector pixels (0-based) -> V2/V3 arcsec for a ``size`` x ``size`` simulated detector.

    The array centre ``((size - 1) / 2, (size - 1) / 2)`` maps to ``(v2_ref, v3_ref)``; the
    local scale there is 0.031"/pixel. The model's ``inverse`` is a degree-7 polynomial fitted
    to it (largest error ~1e-5 pixel over the array and a margin of 10 %).
    """
    from astropy.modeling import fitting, models

    centre = (size - 1) / 2.0
    half = size / 2.0
    amp = corner_displacement(size) / _pattern_scale()
    s = ARCSEC_PER_PIXEL
    px = models.Polynomial2D(3, c1_0=-s)
    py = models.Polynomial2D(3, c0_1=s)
    for terms, poly, sign in ((_PATTERN_X, px, -s), (_PATTERN_Y, py, s)):
        for (i, j), c in terms.items():
            setattr(poly, f"c{i}_{j}", sign * amp * c / half ** (i + j))
    forward = (models.Shift(-centre) & models.Shift(-centre) | models.Mapping((0, 1, 0, 1))
               | px & py | models.Shift(v2_ref) & models.Shift(v3_ref))
    # polynomial inverse on normalised coordinates, fitted over the array plus a margin
    g = np.linspace(-1.1 * half, 1.1 * half, 45)
    xx, yy = np.meshgrid(g, g)
    du, dv = px(xx, yy) / (s * half), py(xx, yy) / (s * half)
    fit = fitting.LinearLSQFitter()
    ix = fit(models.Polynomial2D(7), du, dv, xx / half)
    iy = fit(models.Polynomial2D(7), du, dv, yy / half)
    inverse = (models.Shift(-v2_ref) & models.Shift(-v3_ref)
               | models.Scale(1.0 / (s * half)) & models.Scale(1.0 / (s * half))
               | models.Mapping((0, 1, 0, 1)) | ix & iy
               | models.Scale(half) & models.Scale(half)
               | models.Shift(centre) & models.Shift(centre))
    forward.inverse = inverse
    forward.name = "distortion"
    return forward


def exact_inverse(transform: Any, a: np.ndarray, b: np.ndarray, shape: tuple[int, int], *,
                  iterations: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Invert a detector -> V2/V3 transform to machine precision (0-based pixels).

    Newton's method from the linear approximation about the array centre (Jacobian by central
    differences, exact for the cubic distortion). Points whose linear estimate lies more than
    one array width from the centre (where a polynomial distortion stops being meaningful)
    keep the linear estimate: they are far off the array.
    """
    ny, nx = shape
    ta = np.atleast_1d(np.asarray(a, dtype=np.float64))
    tb = np.atleast_1d(np.asarray(b, dtype=np.float64))
    cx, cy = (nx - 1) / 2.0, (ny - 1) / 2.0

    def jacobian(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
        h = 0.5
        ax1, bx1 = transform(x + h, y)
        ax0, bx0 = transform(x - h, y)
        ay1, by1 = transform(x, y + h)
        ay0, by0 = transform(x, y - h)
        return ((ax1 - ax0) / (2 * h), (ay1 - ay0) / (2 * h), (bx1 - bx0) / (2 * h),
                (by1 - by0) / (2 * h))

    def step(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        fa, fb = transform(x, y)
        ra, rb = fa - ta, fb - tb
        j11, j12, j21, j22 = jacobian(x, y)
        det = j11 * j22 - j12 * j21
        return x - (j22 * ra - j12 * rb) / det, y - (j11 * rb - j21 * ra) / det

    # linear estimate: one Newton step from the centre with the centre's Jacobian
    x0, y0 = np.full_like(ta, cx), np.full_like(tb, cy)
    lx, ly = step(x0, y0)
    near = (np.abs(lx - cx) <= nx) & (np.abs(ly - cy) <= ny)
    x, y = lx.copy(), ly.copy()
    if near.any():
        xs, ys = x[near], y[near]
        keep_a, keep_b = ta, tb
        ta, tb = ta[near], tb[near]
        for _ in range(iterations):
            xs, ys = step(xs, ys)
        ta, tb = keep_a, keep_b
        x[near], y[near] = xs, ys
    return x, y


def pixel_area_map(det2v2v3: Any, shape: tuple[int, int]) -> np.ndarray:
    """Solid angle of each pixel relative to the nominal (0.031")^2 (float32, (ny, nx)).

    The Jacobian of detector -> V2/V3 by central differences (exact for the cubic
    distortion), times cos(V3) for the spherical V2/V3 frame.
    """
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float64)
    h = 0.5
    v2x1, v3x1 = det2v2v3(xx + h, yy)
    v2x0, v3x0 = det2v2v3(xx - h, yy)
    v2y1, v3y1 = det2v2v3(xx, yy + h)
    v2y0, v3y0 = det2v2v3(xx, yy - h)
    v3 = 0.5 * (v3x1 + v3x0)  # V3 at the pixel centre to ~1e-6 arcsec: enough for cos(V3)
    jac = ((v2x1 - v2x0) * (v3y1 - v3y0) - (v2y1 - v2y0) * (v3x1 - v3x0)) / (2 * h) ** 2
    area = np.abs(jac) * np.cos(np.radians(v3 / 3600.0)) / ARCSEC_PER_PIXEL**2
    return area.astype(np.float32)


def _meta(cfg: SimulationConfig, detector: str, reftype: str, description: str,
          model_type: str) -> dict[str, Any]:
    module = DETECTORS[detector.upper()][0]
    return {
        "reftype": reftype, "model_type": model_type,
        "description": f"{description} (jwpipe simulation)", "author": "jwpipe.simulate",
        "pedigree": "SIMULATION", "telescope": "JWST", "useafter": cfg.useafter,
        "instrument": {"name": "NIRCAM", "detector": detector.upper(), "channel": "SHORT",
                       "module": module},
        "exposure": {"type": "NRC_IMAGE", "p_exptype": "NRC_IMAGE|NRC_TSIMAGE|NRC_FLAT|"},
    }


def _write_asdf(tree: dict[str, Any], path: Path) -> Path:
    import asdf

    tmp = path.with_name(path.name + ".part")
    asdf.AsdfFile(tree).write_to(tmp)
    tmp.replace(path)
    return path


def write_distortion_reference(directory: Path, cfg: SimulationConfig, detector: str,
                               model: Any, counter: int) -> Path:
    """Write ``jwst_nircam_distortion_<NNNN>.asdf`` (stdatamodels' DistortionModel layout)."""
    meta = _meta(cfg, detector, "DISTORTION", "Imaging distortion, detector to V2/V3",
                 "DistortionModel")
    meta["instrument"]["p_pupil"] = "CLEAR|"
    meta["input_units"] = "pixel"
    meta["output_units"] = "arcsec"
    directory.mkdir(parents=True, exist_ok=True)
    return _write_asdf({"meta": meta, "model": model},
                       directory / f"jwst_nircam_distortion_{counter:04d}.asdf")


def write_filteroffset_reference(directory: Path, cfg: SimulationConfig, detector: str,
                                 counter: int) -> Path:
    """Write ``jwst_nircam_filteroffset_<NNNN>.asdf`` (stdatamodels' FilteroffsetModel)."""
    meta = _meta(cfg, detector, "FILTEROFFSET", "Filter-dependent pixel offsets",
                 "FilteroffsetModel")
    meta["input_units"] = "pixel"
    filters = [{"filter": f, "pupil": "CLEAR", "column_offset": float(c),
                "row_offset": float(r)} for f, (c, r) in sorted(FILTER_OFFSETS.items())]
    directory.mkdir(parents=True, exist_ok=True)
    return _write_asdf({"meta": meta, "filters": filters},
                       directory / f"jwst_nircam_filteroffset_{counter:04d}.asdf")
