"""The workflow's pictures and Snakemake's report, checked in a real headless browser.

A small simulated field goes through the whole chain; the picture rules draw the quick-looks,
the mosaic with its sources, the alignment residuals, the timings and the status table;
``snakemake --report`` packs them; Chromium opens the report, every category is clicked and
every picture must have loaded (non-zero natural size).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _run(*args, cwd):
    proc = subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def _browser_or_skip():
    """Playwright driving Debian's Chromium; in CI its absence is a failure, not a skip."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None or CHROMIUM is None:
        reason = "needs Chromium (apt-get install chromium) and playwright (test extra)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return sync_playwright


@pytest.fixture(scope="module")
def finished_workflow(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    _run("jwpipe", "simulate", "sim", "--exposures", "2", "--size", "96", "--ngroups", "4",
         "--seed", "11", cwd=tmp)
    asn = next((tmp / "sim").glob("*image3*_asn.json"))
    _run("jwpipe", "make-workflow", str(asn), "--refs", "sim/refs", "-o", "wf", cwd=tmp)
    _run("snakemake", "--profile", "profiles/local", "--cores", "2", "--quiet", "all",
         cwd=tmp / "wf")
    return tmp / "wf"


def test_pictures_are_made_by_rules(finished_workflow):
    from PIL import Image

    pictures = finished_workflow / "pictures"
    names = sorted(p.name for p in pictures.iterdir())
    assert sum(n.endswith("_rate.png") for n in names) == 2
    assert sum(n.endswith("_cal.png") for n in names) == 2
    assert any(n.endswith("_i2d.png") for n in names)
    assert any(n.endswith("_tweakreg.png") for n in names)
    assert {"timings.png", "status.html"} <= set(names)
    # a quick-look is a picture of the data, not a blank canvas
    rate = next(pictures.glob("*_rate.png"))
    pixels = np.asarray(Image.open(rate).convert("L"), dtype=float)
    assert pixels.std() > 10
    assert "done" in (pictures / "status.html").read_text()


def walk_report(report, sync_playwright) -> dict[str, list[tuple[int, int]]]:
    """Open the report, click through every category and subcategory and every result's eye.

    Returns the natural size of each picture shown (``(1, 1)`` for an HTML result), by
    category.
    """
    shown: dict[str, list[tuple[int, int]]] = {}
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("pageerror", lambda exc: errors.append(str(exc)))

        def open_path(path: list[str]) -> None:
            page.goto(report.as_uri())
            for text in path:
                page.get_by_text(text, exact=True).first.click()
                page.wait_for_timeout(200)

        def menu_entries() -> list[str]:
            return [t.strip() for t in page.locator("li, a.hover\\:text-emerald-600")
                    .all_inner_texts() if t.strip()]

        page.goto(report.as_uri())
        body = page.inner_text("body")
        categories = body.split("RESULTS", 1)[1].split("\n\n", 1)[0].split()
        for category in categories:
            open_path([category])
            eyes = page.locator("a[iconname=eye]")
            paths = [[category]]
            if eyes.count() == 0:  # a list of subcategories
                listing = page.inner_text("body").split(category, 1)[1].split("\n\n", 1)[0]
                paths = [[category, sub] for sub in listing.split()]
            sizes = []
            for path in paths:
                open_path(path)
                for i in range(page.locator("a[iconname=eye]").count()):
                    open_path(path)
                    page.locator("a[iconname=eye]").nth(i).click()
                    page.wait_for_timeout(300)
                    media = page.locator("img[src^='data:image/png'], iframe")
                    assert media.count() > 0, f"nothing shown for result {i} under {path}"
                    sizes.append(tuple(media.first.evaluate(
                        "e => e.tagName == 'IFRAME' ? [1, 1] : [e.naturalWidth, e.naturalHeight]")))
            shown[category] = sizes
        browser.close()
    assert not errors, errors
    return shown


def test_report_opens_in_a_browser_and_every_picture_loads(finished_workflow):
    sync_playwright = _browser_or_skip()
    _run("snakemake", "--report", "report.html", "all", cwd=finished_workflow)
    report = finished_workflow / "report.html"
    assert report.stat().st_size > 100_000
    shown = walk_report(report, sync_playwright)
    assert set(shown) == {"Exposures", "Mosaic", "Alignment", "Timings", "Status"}
    for category, sizes in shown.items():
        assert sizes, f"no picture under {category}"
        assert all(w > 0 and h > 0 for w, h in sizes), (category, sizes)
    assert len(shown["Exposures"]) == 4  # rate and cal of both exposures
