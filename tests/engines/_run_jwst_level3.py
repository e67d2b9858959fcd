"""Run one of jwst's level-3 pipelines in one process, as a user would (``Pipeline.call``).

Usage: python _run_jwst_level3.py PIPELINE ASN OUTPUT_DIR [STEPS_JSON [rateints]] (PIPELINE:
``Coron3Pipeline``, ``Tso3Pipeline`` ...; STEPS_JSON: the ``steps`` argument of ``call``;
``rateints``: first ``Image2Pipeline.call`` on each member's ``_rateints`` next to ASN, into
OUTPUT_DIR, and the level-3 pipeline on a copy of ASN there). The CRDS environment comes from
the caller. Writes the products to OUTPUT_DIR and ``steps.json``:
the steps jwst called in order, each with whether it ran (from stpipe's log records, as
``_run_jwst_pipelines.py`` reads them).
"""

import json
import shutil
import sys
import warnings
from pathlib import Path

from _run_jwst_pipelines import recording


def main(pipeline: str, asn: str, output_dir: str, steps: str = "{}", start: str = "") -> None:
    warnings.simplefilter("ignore")
    import jwst.pipeline

    if start == "rateints":
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        table = json.loads(Path(asn).read_text())
        for member in (m for p in table["products"] for m in p["members"]):
            rate = Path(asn).parent / member["expname"].replace("_calints", "_rateints")
            jwst.pipeline.Image2Pipeline.call(str(rate), save_results=True,
                                              output_dir=output_dir)
        asn = shutil.copy(asn, output_dir)

    out, handler = recording(output_dir)
    getattr(jwst.pipeline, pipeline).call(asn, save_results=True, output_dir=str(out),
                                          steps=json.loads(steps))
    # the pipeline's own "running" record comes first
    (out / "steps.json").write_text(json.dumps(handler.steps[1:], indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:6])
