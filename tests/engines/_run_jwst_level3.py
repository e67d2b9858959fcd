"""Run one of jwst's level-3 pipelines in one process, as a user would (``Pipeline.call``).

Usage: python _run_jwst_level3.py PIPELINE ASN OUTPUT_DIR [STEPS_JSON [rateints|rate]]
(PIPELINE: ``Coron3Pipeline``, ``Tso3Pipeline`` ...; STEPS_JSON: the ``steps`` argument of
``call``; ``rateints``: first ``Image2Pipeline.call`` on each member's ``_rateints`` next to
ASN, into OUTPUT_DIR, and the level-3 pipeline on a copy of ASN there; ``rate``: likewise
``Spec2Pipeline.call`` on each member's ``_rate``). The CRDS environment comes from
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

#: The level-2 pipeline making the members' level-3 input from each start suffix.
LEVEL2 = {"rateints": ("Image2Pipeline", "calints"), "rate": ("Spec2Pipeline", "cal")}


def main(pipeline: str, asn: str, output_dir: str, steps: str = "{}", start: str = "") -> None:
    warnings.simplefilter("ignore")
    import jwst.pipeline

    if start:
        level2, made = LEVEL2[start]
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        table = json.loads(Path(asn).read_text())
        for member in (m for p in table["products"] for m in p["members"]):
            rate = Path(asn).parent / member["expname"].replace(f"_{made}.", f"_{start}.")
            getattr(jwst.pipeline, level2).call(str(rate), save_results=True,
                                                output_dir=output_dir)
        asn = shutil.copy(asn, output_dir)

    out, handler = recording(output_dir)
    getattr(jwst.pipeline, pipeline).call(asn, save_results=True, output_dir=str(out),
                                          steps=json.loads(steps))
    # the pipeline's own "running" record comes first
    (out / "steps.json").write_text(json.dumps(handler.steps[1:], indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:6])
