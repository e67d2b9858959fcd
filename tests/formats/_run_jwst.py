"""Run jwst steps on files, offline, in a process of their own (called by the format tests).

Usage: python _run_jwst.py TASKS.json. Each task is ``{"step": "assign_wcs", "input": path,
"output": path, "distortion": path, "filteroffset": path}`` or ``{"step": "resample",
"inputs": [paths], "output": path}``. Every reference type jwst's AssignWcsStep asks for is
given as an override, so CRDS selects nothing; CRDS_PATH is an empty cache (read-only) and no
server is configured.
"""

import json
import sys
import warnings


def main(spec_path: str) -> None:
    warnings.simplefilter("ignore")
    from jwst.assign_wcs import AssignWcsStep
    from jwst.resample import ResampleStep

    with open(spec_path) as f:
        tasks = json.load(f)
    for task in tasks:
        if task["step"] == "assign_wcs":
            overrides = {f"override_{r}": "N/A" for r in AssignWcsStep.reference_file_types}
            overrides["override_distortion"] = task["distortion"]
            overrides["override_filteroffset"] = task.get("filteroffset") or "N/A"
            result = AssignWcsStep(**overrides).run(task["input"])
        elif task["step"] == "resample":
            result = ResampleStep().run(task["inputs"])
        else:
            raise SystemExit(f"unknown task {task['step']}")
        result.save(task["output"])


if __name__ == "__main__":
    main(sys.argv[1])
