"""Run one of jwst's level-3 pipelines in one process, as a user would (``Pipeline.call``).

Usage: python _run_jwst_level3.py PIPELINE ASN OUTPUT_DIR [STEPS_JSON] (PIPELINE:
``Coron3Pipeline``, ``Tso3Pipeline`` ...; STEPS_JSON: the ``steps`` argument of ``call``). The
CRDS environment comes from the caller. Writes the products to OUTPUT_DIR and ``steps.json``:
the steps jwst called in order, each with whether it ran (from stpipe's log records, as
``_run_jwst_pipelines.py`` reads them).
"""

import json
import sys
import warnings

from _run_jwst_pipelines import recording


def main(pipeline: str, asn: str, output_dir: str, steps: str = "{}") -> None:
    warnings.simplefilter("ignore")
    import jwst.pipeline

    out, handler = recording(output_dir)
    getattr(jwst.pipeline, pipeline).call(asn, save_results=True, output_dir=str(out),
                                          steps=json.loads(steps))
    # the pipeline's own "running" record comes first
    (out / "steps.json").write_text(json.dumps(handler.steps[1:], indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:5])
