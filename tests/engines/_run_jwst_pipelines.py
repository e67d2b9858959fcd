"""Run jwst's Detector1, Image2 and Image3 in one process, as a user would (``Pipeline.call``).

Usage: python _run_jwst_pipelines.py INPUT_DIR ASN OUTPUT_DIR (ASN ``-``: Detector1 only;
``image2``: Detector1 and Image2).
The CRDS environment comes from the caller. Writes the products to OUTPUT_DIR and
``steps.json``: for each pipeline run, the steps jwst called in order, each with whether it ran
or was skipped (from stpipe's log records "Step <name> running ..." and "Step skipped.").
"""

import json
import logging
import re
import shutil
import sys
import warnings
from pathlib import Path

RUNNING = re.compile(r"^Step (\w+) running with args")


class StepOrder(logging.Handler):
    """Collects the steps stpipe reports running, and which of them it skipped."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.steps: list[list] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        found = RUNNING.match(message)
        if found:
            self.steps.append([found.group(1), True])
        elif message.startswith("Step skipped") and self.steps:
            self.steps[-1][1] = False


def recording(output_dir: str) -> tuple[Path, StepOrder]:
    """The output directory (created) and a handler on the root logger recording the steps."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    handler = StepOrder()
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)
    return out, handler


def main(input_dir: str, asn: str, output_dir: str) -> None:
    warnings.simplefilter("ignore")
    from jwst.pipeline import Detector1Pipeline, Image2Pipeline, Image3Pipeline

    out, handler = recording(output_dir)
    runs = []

    def run(pipeline: type, arg: str) -> None:
        handler.steps = []
        pipeline.call(arg, save_results=True, output_dir=str(out))
        # the pipeline's own "running" record comes first
        runs.append({"pipeline": pipeline.__name__, "input": Path(arg).name,
                     "steps": handler.steps[1:]})

    uncals = sorted(Path(input_dir).glob("*_uncal.fits"))
    for uncal in uncals:
        run(Detector1Pipeline, str(uncal))
    for uncal in uncals if asn != "-" else []:
        run(Image2Pipeline, str(out / uncal.name.replace("_uncal", "_rate")))
    if asn not in ("-", "image2"):
        shutil.copy(asn, out / Path(asn).name)
        run(Image3Pipeline, str(out / Path(asn).name))
    (out / "steps.json").write_text(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:4])
