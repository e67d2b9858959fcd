"""The pictures of a workflow's report, drawn with matplotlib (no screen needed).

Each function reads products from disk and writes one PNG; they are run by the workflow's
report rules (``jwpipe figure KIND ...``), never by run-step, so a picture is remade only when
its inputs change and a failed picture never fails the calibration.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jwpipe.report.quicklook import asinh_stretch, downsample, marker_positions

__all__ = ["alignment_figure", "benchmark_figure", "image_figure"]

#: Longest side of a quick-look picture, in image pixels after block averaging.
MAX_PIXELS = 1024
#: DQ bit that marks a pixel as unusable (``DO_NOT_USE``).
_DO_NOT_USE = 1


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, out: str | os.PathLike) -> None:
    """Write a figure atomically (temporary name, then rename)."""
    from jwpipe.atomic import atomic_path

    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    _pyplot().close(fig)


def _catalog_positions(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    from astropy.table import Table

    table = Table.read(path, format="ascii.ecsv")
    for xname, yname in (("xcentroid", "ycentroid"), ("x_centroid", "y_centroid")):
        if xname in table.colnames and yname in table.colnames:
            return np.asarray(table[xname], float), np.asarray(table[yname], float)
    raise ValueError(f"{path}: no xcentroid/ycentroid columns")


def image_figure(image: str | os.PathLike, out: str | os.PathLike, *,
                 catalog: str | os.PathLike | None = None, title: str | None = None) -> None:
    """Quick-look PNG of a 2-D product (``_rate``, ``_cal``, ``_i2d``), DQ-masked.

    Parameters
    ----------
    image : path
        A FITS product with a 2-D ``SCI`` array (``DQ`` used when present; for an ``_i2d``,
        pixels with zero weight are masked).
    out : path
        The PNG to write.
    catalog : path, optional
        A source catalogue (``_cat.ecsv``) whose ``xcentroid``/``ycentroid`` are marked.
    title : str, optional
        Defaults to the file name with the filter and units.
    """
    from jwpipe import datamodels

    with datamodels.open(str(image)) as model:
        data = np.asarray(model.data, dtype=np.float32)
        if data.ndim == 3:  # a _rateints: show the first integration
            data = data[0]
        good = np.isfinite(data)
        dq = getattr(model, "dq", None)
        if dq is not None and np.shape(dq)[-2:] == data.shape:
            dq = np.asarray(dq)
            good &= (dq.reshape((-1, *data.shape))[0] & _DO_NOT_USE) == 0
        wht = getattr(model, "wht", None)
        if wht is not None and np.shape(wht) == data.shape:
            good &= np.asarray(wht) > 0
        meta = model.meta
        filt = getattr(meta.instrument, "filter", None) if hasattr(meta, "instrument") else None
        unit = getattr(meta, "bunit_data", None)
    stretched, factor = downsample(asinh_stretch(data, good), MAX_PIXELS)
    plt = _pyplot()
    height, width = stretched.shape
    fig, ax = plt.subplots(figsize=(7.0, 7.0 * height / width + 0.6))
    cmap = plt.get_cmap("gray").copy()
    cmap.set_bad("#a02c2c")  # flagged or empty pixels: visibly not data
    ax.imshow(stretched, origin="lower", cmap=cmap, vmin=0.0, vmax=1.0,
              interpolation="nearest")
    if catalog is not None:
        x, y = _catalog_positions(catalog)
        px, py = marker_positions(x, y, factor)
        ax.scatter(px, py, s=60, facecolors="none", edgecolors="#3cb4ff", linewidths=0.8)
        ax.text(0.01, 0.99, f"{len(x)} sources", transform=ax.transAxes, va="top",
                color="#3cb4ff", fontsize=9)
    parts = [Path(image).name] + [str(v) for v in (filt, unit) if v]
    ax.set_title(title or "  ".join(parts), fontsize=9)
    ax.set_xlabel(f"x [pixel / {factor}]" if factor > 1 else "x [pixel]", fontsize=8)
    ax.set_ylabel(f"y [pixel / {factor}]" if factor > 1 else "y [pixel]", fontsize=8)
    ax.tick_params(labelsize=7)
    fig.tight_layout()
    _save(fig, out)


def read_benchmarks(paths: Iterable[str | os.PathLike]) -> dict[str, list[tuple[float, float]]]:
    """Per-step (wall seconds, max RSS MiB) from Snakemake ``benchmark:`` files.

    The step is the benchmark file's parent directory name (``benchmarks/<step>/<unit>.tsv``).
    """
    rows: dict[str, list[tuple[float, float]]] = {}
    for path in paths:
        with open(path, newline="") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                try:
                    wall, rss = float(row["s"]), float(row["max_rss"])
                except (KeyError, ValueError):
                    continue  # Snakemake writes "NA" for values it could not measure
                rows.setdefault(Path(path).parent.name, []).append((wall, rss))
    return rows


def benchmark_figure(paths: Sequence[str | os.PathLike], out: str | os.PathLike,
                     order: Sequence[str] | None = None) -> None:
    """Wall time and peak memory of every job, one row per step, in pipeline order.

    Parameters
    ----------
    paths : sequence of path
        Snakemake benchmark TSV files (``benchmarks/<step>/<unit>.tsv``).
    out : path
        The PNG to write.
    order : sequence of str, optional
        Step names in the order to show (the workflow's rule order); others follow.
    """
    rows = read_benchmarks(paths)
    steps = [s for s in (order or []) if s in rows] + sorted(set(rows) - set(order or []))
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.35 * max(len(steps), 3) + 1.2), sharey=True)
    ypos = np.arange(len(steps))[::-1]
    for ax, column, label in ((axes[0], 0, "wall time [s]"), (axes[1], 1, "peak RSS [MiB]")):
        for y, step in zip(ypos, steps):
            values = np.array([r[column] for r in rows[step]])
            jitter = (np.arange(values.size) % 5 - 2) * 0.06
            ax.scatter(values, y + jitter, s=12, color="#1f77b4", alpha=0.7)
            ax.plot([np.median(values)] * 2, [y - 0.3, y + 0.3], color="#d62728", lw=1.5)
        ax.set_xlabel(label)
        ax.grid(axis="x", alpha=0.3)
        ax.set_xlim(left=0)
    axes[0].set_yticks(ypos, steps, fontsize=8)
    axes[0].set_title("per job (dots) and median (bar)", fontsize=9)
    fig.tight_layout()
    _save(fig, out)


def alignment_records(members: Iterable[str | os.PathLike]) -> list[dict[str, Any]]:
    """The ``tweakreg`` record of each aligned member (name, shift, rms, matches)."""
    from jwpipe import datamodels

    records = []
    for path in members:
        with datamodels.open(str(path)) as model:
            info = dict((model.extra or {}).get("tweakreg", {}))
        info["name"] = Path(path).name
        records.append(info)
    return records


def alignment_figure(members: Sequence[str | os.PathLike], out: str | os.PathLike) -> None:
    """Tweakreg residuals before and after alignment, per exposure group.

    "Before" is the offset of each group's matched sources from the reference before the fit
    (the correction's size, in milliarcseconds); "after" is the rms of the matched sources
    around the fit. Skipped alignments are listed with their reason.
    """
    records = alignment_records(members)
    groups: dict[str, dict[str, Any]] = {}
    skipped = [r for r in records if "skipped" in r]
    for rec in records:
        if "skipped" in rec or "shift_arcsec" not in rec:
            continue
        groups.setdefault(str(rec.get("group", rec["name"])), rec)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 0.4 * max(len(groups), 3) + 1.4))
    names = list(groups)
    ypos = np.arange(len(names))[::-1]
    before = np.array([1e3 * np.hypot(*groups[n]["shift_arcsec"]) for n in names])
    after = np.array([1e3 * groups[n].get("rms_arcsec", np.nan) for n in names])
    ax.barh(ypos + 0.18, before, height=0.35, color="#ff7f0e", label="before (correction size)")
    ax.barh(ypos - 0.18, after, height=0.35, color="#2ca02c", label="after (rms of matches)")
    ax.set_yticks(ypos, [f"{n}  ({groups[n].get('nmatch', '?')} matches)" for n in names],
                  fontsize=8)
    ax.set_xlabel("residual [mas]")
    ax.legend(fontsize=8, loc="lower right")
    title = "tweakreg alignment"
    if skipped:
        title += f" — skipped: {skipped[0]['skipped']}"
    ax.set_title(title, fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    _save(fig, out)


_STATUS_COLOURS = {"done": "#c7e9c0", "stale": "#fdd0a2", "failed": "#fcae91",
                   "pending": "#e0e0e0"}


def status_page(workdir: str | os.PathLike, out: str | os.PathLike) -> None:
    """The workflow's status table (units x steps) as a small self-contained HTML page."""
    from html import escape

    from jwpipe.atomic import write_text_atomic
    from jwpipe.workflow.status import read_states

    states = read_states(workdir)
    steps = list(dict.fromkeys(s.step for s in states))
    keys = list(dict.fromkeys(s.key for s in states))
    cell = {(s.key, s.step): s for s in states}
    rows = []
    for key in keys:
        tds = []
        for step in steps:
            st = cell.get((key, step))
            if st is None:
                tds.append("<td></td>")
                continue
            tip = escape("; ".join(st.reasons), quote=True)
            tds.append(f'<td style="background:{_STATUS_COLOURS.get(st.status, "#fff")}" '
                       f'title="{tip}">{escape(st.status)}</td>')
        rows.append(f"<tr><th>{escape(key)}</th>{''.join(tds)}</tr>")
    totals = {s: sum(st.status == s for st in states) for s in _STATUS_COLOURS}
    summary = ", ".join(f"{n} {s}" for s, n in totals.items() if n)
    head = "".join(f"<th>{escape(s)}</th>" for s in steps)
    write_text_atomic(out, f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>jwpipe status</title>
<style>body{{font-family:sans-serif;font-size:12px}} table{{border-collapse:collapse}}
td,th{{border:1px solid #bbb;padding:2px 6px;text-align:center}}</style></head>
<body><p>{len(states)} units: {escape(summary)}</p>
<table><tr><th>unit</th>{head}</tr>
{chr(10).join(rows)}
</table></body></html>
""")
