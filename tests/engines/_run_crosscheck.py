"""Run one engine's Detector1, Image2 and Image3 in one process, as a user would.

Usage: python _run_crosscheck.py ENGINE PLAN_JSON, ENGINE ``jwst`` or ``jwpipe``. The plan
names ``inputs`` (a folder of ``_uncal`` files), ``asn`` (an image3 association), ``out``
(the folder for the stage 1 and 2 products) and ``image3``: a list of runs, each ``{"name":
folder under out, "steps": {step: {par: value}}, "grid_from": an _i2d file or null}``; with
``grid_from`` the resample step is given that mosaic's grid (``crval``, ``crpix``,
``rotation``, ``pixel_scale``, ``output_shape``: jwst's own parameters). The CRDS
environment (``CRDS_PATH``, read-only) comes from the caller and serves both engines.
Writes ``seconds.json``: the wall time of each stage.
"""

import json
import math
import shutil
import sys
import time
import warnings
from pathlib import Path


def grid_of(i2d: str) -> dict:
    """The resample parameters that reproduce a TAN mosaic's grid (FITS PC/CDELT header)."""
    from astropy.io import fits

    h = fits.getheader(i2d, "SCI")
    return {"crval": [h["CRVAL1"], h["CRVAL2"]],
            "crpix": [h["CRPIX1"] - 1.0, h["CRPIX2"] - 1.0],
            "rotation": math.degrees(math.atan2(h["PC1_2"], -h["PC1_1"])),
            "pixel_scale": abs(h["CDELT1"]) * 3600.0,
            "output_shape": [h["NAXIS1"], h["NAXIS2"]]}


def main(engine: str, plan_file: str) -> None:
    warnings.simplefilter("ignore")
    if engine == "jwst":
        from jwst.pipeline import Detector1Pipeline, Image2Pipeline, Image3Pipeline
    else:
        from jwpipe.pipeline import Detector1Pipeline, Image2Pipeline, Image3Pipeline
    plan = json.loads(Path(plan_file).read_text())
    out = Path(plan["out"])
    out.mkdir(parents=True, exist_ok=True)
    seconds = {}
    start = time.perf_counter()
    uncals = sorted(Path(plan["inputs"]).glob("*_uncal.fits"))
    for uncal in uncals:
        Detector1Pipeline.call(str(uncal), save_results=True, output_dir=str(out))
    seconds["detector1"] = time.perf_counter() - start
    start = time.perf_counter()
    for uncal in uncals:
        Image2Pipeline.call(str(out / uncal.name.replace("_uncal", "_rate")),
                            save_results=True, output_dir=str(out))
    seconds["image2"] = time.perf_counter() - start
    for run in plan["image3"]:
        start = time.perf_counter()
        folder = out / run["name"]
        folder.mkdir()
        for cal in out.glob("*_cal.fits"):
            shutil.copy(cal, folder / cal.name)
        asn = folder / Path(plan["asn"]).name
        shutil.copy(plan["asn"], asn)
        steps = {k: dict(v) for k, v in run.get("steps", {}).items()}
        if run.get("grid_from"):
            steps.setdefault("resample", {}).update(grid_of(run["grid_from"]))
        Image3Pipeline.call(str(asn), save_results=True, output_dir=str(folder), steps=steps)
        seconds[f"image3 {run['name']}"] = time.perf_counter() - start
    (out / "seconds.json").write_text(json.dumps(seconds, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:3])
