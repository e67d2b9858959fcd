"""Run jwst's Spec2Pipeline in one process on a spec2 association, as a user would
(``Spec2Pipeline.call``).

Usage: python _run_jwst_spec2.py ASN OUTPUT_DIR. The CRDS environment comes from the caller.
Writes the products to OUTPUT_DIR and ``steps.json``: the steps jwst called, in order, each
with whether it ran or was skipped (stpipe's log records, as ``_run_jwst_pipelines.py``).
"""

import json
import shutil
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _run_jwst_pipelines import recording


def main(asn: str, output_dir: str) -> None:
    warnings.simplefilter("ignore")
    from jwst.pipeline import Spec2Pipeline

    out, handler = recording(output_dir)
    local = out / Path(asn).name
    shutil.copy(asn, local)
    for product in json.loads(local.read_text())["products"]:
        for member in product["members"]:
            shutil.copy(Path(asn).parent / member["expname"], out / member["expname"])
    Spec2Pipeline.call(str(local), save_results=True, output_dir=str(out))
    runs = [{"pipeline": "Spec2Pipeline", "input": local.name, "steps": handler.steps[1:]}]
    (out / "steps.json").write_text(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:3])
