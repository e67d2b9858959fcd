"""Synthetic star fields with known truth for the image-stage algorithm tests.

Other ``test_image_*`` modules import the helpers from here; the tests in this module check
the helpers themselves.
"""

from __future__ import annotations

import numpy as np
from scipy.special import erf

SQRT2 = np.sqrt(2.0)


def pixel_integrated_gaussian_1d(n: int, centres: np.ndarray, sigma: float) -> np.ndarray:
    """Fraction of unit flux in each of ``n`` pixels for 1-D Gaussians; shape (len(centres), n)."""
    edges = np.arange(n + 1, dtype=np.float64) - 0.5
    cdf = 0.5 * (1.0 + erf((edges[None, :] - np.asarray(centres)[:, None]) / (SQRT2 * sigma)))
    return np.diff(cdf, axis=1)


def render_stars(
    shape: tuple[int, int], x: np.ndarray, y: np.ndarray, flux: np.ndarray, sigma: float
) -> np.ndarray:
    """Image of pixel-integrated circular Gaussian stars (exact pixel integrals)."""
    px = pixel_integrated_gaussian_1d(shape[1], x, sigma)
    py = pixel_integrated_gaussian_1d(shape[0], y, sigma)
    return np.einsum("s,sy,sx->yx", np.asarray(flux, dtype=np.float64), py, px)


def random_field(
    rng: np.random.Generator,
    n: int,
    shape: tuple[int, int],
    border: float = 12.0,
    min_sep: float = 10.0,
    flux_range: tuple[float, float] = (2000.0, 20000.0),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` star positions at least ``min_sep`` apart and log-uniform fluxes."""
    xs: list[float] = []
    ys: list[float] = []
    for _ in range(200 * n):
        if len(xs) == n:
            break
        cx = rng.uniform(border, shape[1] - 1 - border)
        cy = rng.uniform(border, shape[0] - 1 - border)
        if all((cx - a) ** 2 + (cy - b) ** 2 >= min_sep**2 for a, b in zip(xs, ys)):
            xs.append(cx)
            ys.append(cy)
    if len(xs) < n:
        raise ValueError(f"cannot place {n} stars {min_sep} px apart in {shape}")
    flux = np.exp(rng.uniform(np.log(flux_range[0]), np.log(flux_range[1]), n))
    return np.array(xs), np.array(ys), flux


def noisy(
    rng: np.random.Generator, model: np.ndarray, sky_sigma: float, gain: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Add Gaussian read noise plus shot noise of the whole model; return (data, true error)."""
    err = np.sqrt(sky_sigma**2 + np.clip(model, 0.0, None) / gain)
    return model + rng.normal(size=model.shape) * err, err


def test_render_conserves_flux():
    img = render_stars((64, 64), np.array([31.3]), np.array([30.7]), np.array([1000.0]), 1.5)
    assert abs(img.sum() - 1000.0) < 1e-6
    yy, xx = np.indices(img.shape)
    assert abs((img * xx).sum() / img.sum() - 31.3) < 1e-9
    assert abs((img * yy).sum() / img.sum() - 30.7) < 1e-9


def test_random_field_separation():
    x, y, f = random_field(np.random.default_rng(1), 30, (128, 128))
    d = np.hypot(x[:, None] - x[None], y[:, None] - y[None]) + np.eye(30) * 1e9
    assert d.min() >= 10.0
    assert f.min() >= 2000.0 and f.max() <= 20000.0
