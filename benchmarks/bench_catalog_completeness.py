"""Benchmark: catalogue completeness and close-pair deblending, photutils catalogue vs the
former hand-written detector, on the same mosaics in the same run.

Usage::

    python benchmarks/bench_catalog_completeness.py [--workdir DIR] [--seeds 2026 ... 2031]
        [--pair-seeds 8] [--param NAME=VALUE ...]

1. Completeness. For every seed a field of 4 dithered 256x256 exposures is simulated (100
   stars, 20 galaxies, fluxes down to S/N ~ 3: :data:`FIELD`; rate files = truth + noise
   matching ERR, as in the Image3 tests),
   calibrated with Image2Pipeline, aligned to the truth with tweakreg (``abs_refcat``), cleaned
   with outlier_detection and drizzled with resample (cached in ``--workdir``). On each mosaic:

   * jwpipe: ``SourceCatalogStep`` with its defaults (``--param`` overrides them);
   * the former detector (``benchmarks/_old_image_sources.py``, jwpipe's own code before the
     move to photutils: mesh background, Gaussian matched filter with the ERR map, segments
     of >= 25 pixels split at S/N peaks) at the *same real threshold*: its S/N map is built
     from ERR, which ignores the drizzle noise correlation, so its threshold is 3 x the
     robust RMS of its own S/N map on blank sky (the matched-filter S/N 3 jwpipe uses).

   Truth S/N of a source = true flux / (ERR x the catalogue's measured noise-correlation
   factor x sqrt(noise-equivalent area)), the area of the source's rendered profile widened
   by the drizzle kernel (1/6 px^2 per axis). Found = the nearest truth source of a detection
   within 1.5 px (one detection finds one source). False
   detections = detections more than 3 px from every truth source.

2. Close pairs. Synthetic drizzled mosaics (the test_image_catalog pairs fields: 40 stars
   30 px apart, PSF sigma 1.2 px, a companion 2-6 px from each of the first 20, 4-point
   sub-pixel dither drizzled with pixfrac 1): pairs with both members found, per
   separation bin, by both detectors at the same real threshold.

3. Fluxes: Kron and aperture-corrected total fluxes of isolated stars at truth S/N >= 20
   (the simulator's APCORR reference), as pulls against the true flux.

Errors are binomial (sqrt(k (n - k) / n), 1 for k = 0 or n). Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "steps"))
sys.path.insert(0, str(HERE.parent / "tests" / "algorithms"))

SNR_BINS = ((5, 10), (10, 20), (20, 50), (50, np.inf))
SEP_BINS = ((2, 3), (3, 4), (4, 5), (5, 6))
MATCH = 1.5
#: The Image3 tests' field with fluxes reaching 30x fainter (the simulator's default range
#: puts almost every source above S/N 50 on a 4-exposure mosaic): log-uniform, so each
#: decade of S/N holds about the same number of sources.
FIELD = {"n_stars": 100, "n_galaxies": 20, "star_flux_range": (0.01, 100.0),
         "galaxy_flux_range": (0.02, 50.0)}


# ----------------------------------------------------------------------------- inputs


def prepare(workdir: Path, seed: int) -> tuple[Path, Path]:
    """Simulate, calibrate and drizzle one field; return (i2d path, truth sources path)."""
    from test_image_simdata import simulate_rates

    from jwpipe.pipeline import Image2Pipeline
    from jwpipe.steps import OutlierDetectionStep, ResampleStep, TweakRegStep

    root = workdir / f"seed{seed}"
    i2d = root / "mosaic_i2d.fits"
    srcs = root / "truth_sources.ecsv"
    if i2d.exists() and srcs.exists():
        return i2d, srcs
    sim = simulate_rates(root / "sim", n_exposures=4, size=256, seed=seed, **FIELD)
    cal_dir = root / "cal"
    os.environ["JWPIPE_REFS"] = str(sim.sim.store_dir)
    try:
        cals = []
        for rate in sim.rates:
            Image2Pipeline.call(str(rate), save_results=True, output_dir=str(cal_dir))
            cals.append(str(cal_dir / rate.name.replace("_rate", "_cal")))
        sim.sources[["ra", "dec"]].write(root / "refcat.ecsv", format="ascii.ecsv",
                                         overwrite=True)
        aligned = TweakRegStep.call(cals, abs_refcat=str(root / "refcat.ecsv"))
        crf = OutlierDetectionStep.call(aligned)
        mosaic = ResampleStep.call(crf)
        mosaic.save(str(i2d))
    finally:
        del os.environ["JWPIPE_REFS"]
    sim.sources.write(srcs, format="ascii.ecsv", overwrite=True)
    return i2d, srcs


def noise_equivalent_area(src: np.void) -> float:
    """1 / sum(p^2) of the source's unit-flux profile as rendered by the simulator, widened
    by the drizzle kernel (pixfrac 1, random phases: 1/6 px^2 per axis)."""
    from scipy import ndimage

    from jwpipe.simulate.scene import render_scene

    half = 40 if src["kind"] != "star" else 12
    half = int(min(half, np.ceil(5 * max(src["r_eff_pix"], 1.0)) + 8))
    cat = np.array([src])
    stamp = render_scene(cat, np.array([half + 0.3]), np.array([half + 0.3]),
                         (2 * half + 1, 2 * half + 1), 1.0, 0.0).astype(np.float64)
    stamp = ndimage.gaussian_filter(stamp, np.sqrt(1.0 / 6.0))
    stamp /= stamp.sum()
    return float(1.0 / (stamp**2).sum())


# ----------------------------------------------------------------------------- detectors


def mosaic_arrays(i2d_path: Path):
    from jwpipe import datamodels
    from jwpipe.steps._image_common import bad_pixel_mask

    model = datamodels.open(str(i2d_path))
    data = np.asarray(model.data, dtype=np.float64)
    err = np.asarray(model.err, dtype=np.float64)
    bad = bad_pixel_mask(model.dq, data.shape) | ~np.isfinite(data) | ~np.isfinite(err)
    if model.wht is not None:
        bad |= ~(np.asarray(model.wht) > 0)
    return model, data, err, bad


def jwpipe_catalog(model, params: dict, refs: Path | None = None):
    """(x, y, noise-correlation factor, segmentation map, table) of SourceCatalogStep, with
    the simulator's APCORR and ABVEGAOFFSET references from the CRDS cache ``refs``."""
    from jwpipe.steps import SourceCatalogStep

    saved = os.environ.get("JWPIPE_REFS")
    if refs is not None:
        os.environ["JWPIPE_REFS"] = str(refs)
    try:
        step = SourceCatalogStep(**params)
        table = step.run(model)
    finally:
        if saved is None:
            os.environ.pop("JWPIPE_REFS", None)
        else:
            os.environ["JWPIPE_REFS"] = saved
    x = np.asarray(table["xcentroid"], float) if len(table) else np.zeros(0)
    y = np.asarray(table["ycentroid"], float) if len(table) else np.zeros(0)
    return x, y, float(table.meta["noise_correlation_factor"]), step.segmentation_map, table


def flux_pulls(table, src, tx, ty, snr, shape) -> dict[str, np.ndarray]:
    """(measured - true) / error of ``kron_flux`` and ``aper_total_flux`` for isolated stars
    (no other truth source within 15 px, 15 px inside the mosaic) at truth S/N >= 20,
    matched within 1 px, no masked pixel in the largest aperture."""
    ny, nx = shape
    d_src = np.hypot(tx[:, None] - tx[None], ty[:, None] - ty[None])
    np.fill_diagonal(d_src, np.inf)
    ok = ((np.asarray(src["kind"]) == "star") & (d_src.min(axis=1) > 15.0) & (snr >= 20)
          & (tx > 15) & (tx < nx - 16) & (ty > 15) & (ty < ny - 16))
    out: dict[str, list[float]] = {"kron": [], "aper_total": [], "kron_ratio": [],
                                   "aper_total_ratio": [], "snr": []}
    if not len(table):
        return {k: np.array(v) for k, v in out.items()}
    cx, cy = np.asarray(table["xcentroid"]), np.asarray(table["ycentroid"])
    for k in np.flatnonzero(ok):
        d = np.hypot(cx - tx[k], cy - ty[k])
        row = table[int(d.argmin())]
        if d.min() > 1.0 or row["nbad"]:
            continue
        truth = float(src["flux_ujy"][k]) * 1e-6  # Jy
        for key in ("kron", "aper_total"):
            out[key].append((float(row[f"{key}_flux"]) - truth) / float(row[f"{key}_flux_err"]))
            out[f"{key}_ratio"].append(float(row[f"{key}_flux"]) / truth)
        out["snr"].append(float(snr[k]))
    return {k: np.array(v) for k, v in out.items()}


def old_snr_scale(data, err, bad, blank, fwhm=2.0) -> float:
    """Robust RMS of the former detector's S/N map on blank sky (its ERR-only S/N)."""
    import _old_image_sources as old

    bkg, _ = old.background_mesh(data, bad, box_size=int(max(16, min(1000, max(data.shape)))))
    good = ~bad & np.isfinite(err) & (err > 0)
    _, snr = old.matched_filter_snr(data - bkg, good, fwhm, err)
    vals = snr[blank & good]
    return float(1.482602218505602 * np.median(np.abs(vals - np.median(vals))))


def old_catalog(data, err, bad, snr_threshold, fwhm=2.0, npixels=25
                ) -> tuple[np.ndarray, np.ndarray]:
    """The former SourceCatalogStep's detection (its defaults, the given threshold)."""
    import _old_image_sources as old

    bkg, _ = old.background_mesh(data, bad, box_size=int(max(16, min(1000, max(data.shape)))))
    src = old.detect_sources(data, bad, fwhm=fwhm, snr_threshold=snr_threshold,
                             npixels=npixels, background=bkg, error=err)
    return np.asarray(src["x"], float), np.asarray(src["y"], float)


# ----------------------------------------------------------------------------- scoring


def binomial(k: int, n: int) -> float:
    return float(np.sqrt(k * (n - k) / n)) if 0 < k < n else 1.0


def found(tx, ty, x, y) -> np.ndarray:
    """Truth sources that are the nearest truth source of a detection within MATCH px (one
    detection finds at most one source: a merged 2 px pair is one detection between them,
    within 1.5 px of both)."""
    hit = np.zeros(tx.size, dtype=bool)
    if x.size == 0:
        return hit
    d = np.hypot(x[:, None] - tx[None], y[:, None] - ty[None])
    nearest = d.argmin(axis=1)
    hit[nearest[d[np.arange(x.size), nearest] < MATCH]] = True
    return hit


def false_detections(tx, ty, x, y) -> int:
    if x.size == 0:
        return 0
    d = np.hypot(x[:, None] - tx[None], y[:, None] - ty[None])
    return int((d.min(axis=1) > 3.0).sum())


def field_scores(i2d_path: Path, srcs_path: Path, params: dict) -> dict:
    """Truth S/N and hits of both detectors on one mosaic."""
    from astropy.table import Table
    from scipy import ndimage

    from jwpipe.steps._image_common import model_wcs

    model, data, err, bad = mosaic_arrays(i2d_path)
    src = Table.read(srcs_path, format="ascii.ecsv")
    t0 = time.perf_counter()
    refs = srcs_path.parent / "sim" / "refs"
    jx, jy, factor, segm, table = jwpipe_catalog(model, params,
                                                 refs if refs.is_dir() else None)
    t_new = time.perf_counter() - t0
    tx, ty = model_wcs(model).all_world2pix(np.asarray(src["ra"]), np.asarray(src["dec"]), 0)
    ny, nx = data.shape
    xi = np.clip(np.rint(tx).astype(int), 0, nx - 1)
    yi = np.clip(np.rint(ty).astype(int), 0, ny - 1)
    inside = (tx > 2) & (tx < nx - 3) & (ty > 2) & (ty < ny - 3)
    inside &= ~bad[yi, xi]
    nea = np.array([noise_equivalent_area(s) for s in src.as_array()])
    flux = np.asarray(src["flux_ujy"]) * 1e-12 / model.meta.photometry.pixelarea_steradians
    snr = flux / (factor * err[yi, xi] * np.sqrt(nea))
    pulls = flux_pulls(table, src, tx, ty, snr, data.shape)
    # blank sky for the former detector's S/N scale: off every segment (grown by 6 px)
    blank = ~ndimage.binary_dilation(segm > 0, iterations=6) & ~bad
    scale = old_snr_scale(data, err, bad, blank)
    t0 = time.perf_counter()
    ox, oy = old_catalog(data, err, bad, 3.0 * scale)
    t_old = time.perf_counter() - t0
    return {"snr": snr[inside], "kind": np.asarray(src["kind"])[inside],
            "new": found(tx, ty, jx, jy)[inside], "old": found(tx, ty, ox, oy)[inside],
            "new_false": false_detections(tx, ty, jx, jy), "new_n": jx.size,
            "old_false": false_detections(tx, ty, ox, oy), "old_n": ox.size,
            "pulls": pulls, "factor": factor, "old_scale": scale, "t_new": t_new, "t_old": t_old}


def pairs_mosaic(seed: int):
    """Drizzled close-pairs mosaic (test_image_catalog's, separations 2-6 px)."""
    from test_image_synthetic import noisy, random_field, render_stars

    from jwpipe.algorithms.image_resample import DrizzleAccumulator

    rng = np.random.default_rng(200 + seed)
    shape = (256, 256)
    x, y, f = random_field(rng, 40, shape, border=15, min_sep=30, flux_range=(150, 20000))
    n = 20
    sep = rng.uniform(2.0, 6.0, n)
    ang = rng.uniform(0, 2 * np.pi, n)
    xs = np.r_[x, x[:n] + sep * np.cos(ang)]
    ys = np.r_[y, y[:n] + sep * np.sin(ang)]
    fs = np.r_[np.maximum(f[:n], 3000.0), f[n:],
               np.maximum(f[:n] * rng.uniform(0.3, 1, n), 1500.0)]
    acc = DrizzleAccumulator(shape, ("var",))
    yy, xx = np.indices(shape, dtype=np.float64)
    for dx, dy in ((0.0, 0.0), (0.5, 0.5), (0.25, 0.75), (0.75, 0.25)):
        data, err = noisy(rng, 10 + render_stars(shape, xs - dx, ys - dy, fs, 1.2), 3.0)
        acc.add(data, np.stack([xx + dx, yy + dy], axis=-1), 1.0, {"var": err**2})
    res = acc.finalize()
    return res.sci, res.err, xs, ys, n, sep


def pairs_scores(seed: int, params: dict) -> dict:
    """Pairs with both members found, per separation bin, for both detectors."""
    from photutils.segmentation import SourceCatalog
    from scipy import ndimage

    from jwpipe.algorithms.image_catalog import detect, estimate_background, source_positions

    sci, err, xs, ys, n, sep = pairs_mosaic(seed)
    bad = ~np.isfinite(sci)
    bkg, _ = estimate_background(sci, bad, box_size=64)
    sub = np.where(bad, 0.0, sci - bkg)
    keys = ("kernel_fwhm", "snr_threshold", "npixels", "connectivity", "deblend", "nlevels",
            "contrast", "deblend_npixels")
    found_new = detect(sub, bad, box_size=64, **{k: v for k, v in params.items() if k in keys})
    if found_new.segm is None:
        jx = jy = np.zeros(0)
    else:
        cat = SourceCatalog(sub, found_new.segm, convolved_data=found_new.convolved,
                            error=np.where(bad, 0.0, err), mask=bad)
        jx, jy = source_positions(cat)
    blank = ~ndimage.binary_dilation(found_new.labels > 0, iterations=6) & ~bad
    scale = old_snr_scale(sci, err, bad, blank)
    ox, oy = old_catalog(sci, err, bad, 3.0 * scale)
    out = {}
    for name, (x, y) in (("new", (jx, jy)), ("old", (ox, oy))):
        hit = found(xs, ys, x, y)
        both = hit[:n] & hit[40:]
        out[name] = {b: (int(both[(sep >= b[0]) & (sep < b[1])].sum()),
                         int(((sep >= b[0]) & (sep < b[1])).sum())) for b in SEP_BINS}
        out[name]["isolated"] = (int(hit[n:40].sum()), 40 - n)
        out[name + "_false"] = false_detections(xs, ys, x, y)
    return out


# ----------------------------------------------------------------------------- main


def _param(text: str) -> tuple[str, object]:
    key, _, value = text.partition("=")
    for cast in (int, float):
        try:
            return key, cast(value)
        except ValueError:
            pass
    return key, {"true": True, "false": False}.get(value.lower(), value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="/tmp/bench_catalog_completeness")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(2026, 2032)))
    parser.add_argument("--pair-seeds", type=int, default=8)
    parser.add_argument("--param", action="append", default=[],
                        help="SourceCatalogStep parameter NAME=VALUE (jwpipe side)")
    ns = parser.parse_args(argv)
    params = dict(_param(p) for p in ns.param)
    workdir = Path(ns.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    print(f"load average at start: {os.getloadavg()}; jwpipe parameters {params or 'defaults'}")
    fields = []
    for seed in ns.seeds:
        t0 = time.perf_counter()
        i2d, srcs = prepare(workdir, seed)
        t_prep = time.perf_counter() - t0
        score = field_scores(i2d, srcs, params)
        fields.append(score)
        print(f"seed {seed}: mosaic {t_prep:.0f} s; noise factor {score['factor']:.3f}, former "
              f"detector's S/N scale {score['old_scale']:.3f}; detections jwpipe "
              f"{score['new_n']} ({score['t_new']:.1f} s), former {score['old_n']} "
              f"({score['t_old']:.1f} s)", flush=True)
    snr = np.concatenate([f["snr"] for f in fields])
    new = np.concatenate([f["new"] for f in fields])
    old = np.concatenate([f["old"] for f in fields])
    print(f"\nCompleteness, {len(fields)} mosaics (seeds {ns.seeds[0]}-{ns.seeds[-1]}), "
          "all sources on the mosaic:\n")
    print("| truth S/N | sources | former detector | jwpipe |")
    print("|---|---|---|---|")
    for lo, hi in SNR_BINS:
        sel = (snr >= lo) & (snr < hi)
        n = int(sel.sum())
        k_old, k_new = int(old[sel].sum()), int(new[sel].sum())
        label = f"{lo}-{hi}" if np.isfinite(hi) else f">= {lo}"
        print(f"| {label} | {n} | {k_old} ± {binomial(k_old, n):.1f} | "
              f"{k_new} ± {binomial(k_new, n):.1f} |")
    nf_old = sum(f["old_false"] for f in fields)
    nf_new = sum(f["new_false"] for f in fields)
    print(f"| false detections (> 3 px from any truth source) | | {nf_old} of "
          f"{sum(f['old_n'] for f in fields)} | {nf_new} of {sum(f['new_n'] for f in fields)} |")
    print("\nFluxes of isolated stars at truth S/N >= 20 (default APCORR apertures), "
          "pull = (measured - true) / error:\n")
    print("| flux | truth S/N | stars | mean pull (± 1/sqrt(n)) | pull std | median pull | "
          "pull MAD std | median ratio |")
    print("|---|---|---|---|---|---|---|---|")
    fsnr = np.concatenate([f["pulls"]["snr"] for f in fields])
    for key in ("kron", "aper_total"):
        p = np.concatenate([f["pulls"][key] for f in fields])
        r = np.concatenate([f["pulls"][f"{key}_ratio"] for f in fields])
        for lo, hi in ((20, 100), (100, 1000), (1000, np.inf)):
            sel = (fsnr >= lo) & (fsnr < hi)
            if sel.any():
                q = p[sel]
                mad = 1.482602218505602 * np.median(np.abs(q - np.median(q)))
                print(f"| `{key}_flux` | {lo}-{hi} | {sel.sum()} | {q.mean():+.2f} ± "
                      f"{1 / np.sqrt(sel.sum()):.2f} | {q.std():.2f} | {np.median(q):+.2f} | "
                      f"{mad:.2f} | {np.median(r[sel]):.4f} |")
    tallies = {"new": {b: [0, 0] for b in (*SEP_BINS, "isolated")},
               "old": {b: [0, 0] for b in (*SEP_BINS, "isolated")}}
    false = {"new": 0, "old": 0}
    for seed in range(ns.pair_seeds):
        res = pairs_scores(seed, params)
        for name in ("new", "old"):
            for b, (k, n) in res[name].items():
                tallies[name][b][0] += k
                tallies[name][b][1] += n
            false[name] += res[name + "_false"]
    print(f"\nClose pairs, {ns.pair_seeds} drizzled mosaics (PSF FWHM 2.83 px before "
          "drizzling), pairs with both members found:\n")
    print("| separation | former detector | jwpipe |")
    print("|---|---|---|")
    for b in SEP_BINS:
        (ko, n), (kn, _) = tallies["old"][b], tallies["new"][b]
        print(f"| {b[0]}-{b[1]} px | {ko}/{n} ± {binomial(ko, n):.1f} | "
              f"{kn}/{n} ± {binomial(kn, n):.1f} |")
    (ko, n), (kn, _) = tallies["old"]["isolated"], tallies["new"]["isolated"]
    print(f"| isolated stars | {ko}/{n} | {kn}/{n} |")
    print(f"| false detections | {false['old']} | {false['new']} |")
    print(f"\ntotal {time.perf_counter() - t_start:.0f} s; load average at end: "
          f"{os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
