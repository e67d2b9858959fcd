"""`jwpipe make-workflow *_uncal.fits`: associations built from the exposures themselves."""

from __future__ import annotations

import json
import subprocess
import sys

from wfhelpers import planned_jobs


def _jw(*args, cwd):
    proc = subprocess.run([sys.executable, "-m", "jwpipe", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc


def test_exposure_files_plan_the_same_workflow_as_their_association(tmp_path):
    _jw("simulate", "sim", "--exposures", "2", "--size", "48", "--ngroups", "3", "--seed", "4",
        cwd=tmp_path)
    uncals = sorted(str(p) for p in (tmp_path / "sim").glob("*_uncal.fits"))
    asn = next((tmp_path / "sim").glob("*image3*_asn.json"))
    _jw("make-workflow", str(asn), "--refs", "sim/refs", "-o", "from_asn", cwd=tmp_path)
    made = _jw("make-workflow", *uncals, "--refs", "sim/refs", "-o", "from_files", cwd=tmp_path)
    written = sorted((tmp_path / "from_files" / "associations").glob("*_asn.json"))
    assert [p.name for p in written] == ["jw01234-o001_t001_nircam_clear-f200w_image3_asn.json"]
    assert "2 exposure(s) -> jw01234-o001_t001_nircam_clear-f200w" in made.stderr
    members = [m["expname"] for m in json.loads(written[0].read_text())["products"][0]["members"]]
    assert members == [p.rsplit("/", 1)[1].replace("_uncal", "_cal") for p in uncals]
    assert planned_jobs(tmp_path / "from_files") == planned_jobs(tmp_path / "from_asn")
    # mixing association and exposure files is refused
    mixed = subprocess.run([sys.executable, "-m", "jwpipe", "make-workflow", str(asn), uncals[0],
                            "-o", "x"], cwd=tmp_path, capture_output=True, text=True)
    assert mixed.returncode == 2 and "not both" in mixed.stderr
