"""Association types are dispatched, never assumed (issue 17, points 1, 3, 7).

Runs over the real association files in tests/data/asn (jwst's public files, see the README
there): every jwst association type the generator writes is either planned with the stage it
asks for or refused with one line naming the type and the command that handles it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from jwpipe.associations import load_asn
from jwpipe.associations.types import (
    JWST_ENGINE_TYPES,
    KINDS,
    UnsupportedAssociationError,
    association_kind,
    dispatch,
)
from jwpipe.errors import JwpipeError, WorkflowError
from jwpipe.workflow.plan import _default_stages, plan_workflow, stage_for_association

ASN = Path(__file__).parents[1] / "data" / "asn"
REAL = sorted(ASN.glob("*.json"))

#: Expected outcome per real file: the stage it ends at, or the reason it is refused.
EXPECTED = {
    "image2": "Image2Pipeline", "wfs-image2": "Image2Pipeline",
    "nrslamp-image2": "Image2Pipeline", "image3": "Image3Pipeline",
    "mosaic": "Image3Pipeline", "image": "Image3Pipeline",
    "spec2": "calwebb_spec2", "nrslamp-spec2": "calwebb_spec2", "tso-spec2": "calwebb_spec2",
    "spec3": "calwebb_spec3", "tso3": "calwebb_tso3", "ami3": "calwebb_ami3",
    "coron3": "calwebb_coron3", "tso-image2": "calwebb_image2",
}


def _raw_type(path: Path) -> str:
    return json.loads(path.read_text())["asn_type"]


def test_real_files_cover_every_type():
    types = {_raw_type(p) for p in REAL}
    assert set(EXPECTED) | {"wfs-image3"} <= types


@pytest.mark.parametrize("path", [p for p in REAL if "wfs-image3" not in p.name],
                         ids=lambda p: p.name)
def test_each_real_association_is_planned_as_what_it_is(path):
    asn = load_asn(path)
    want = EXPECTED[asn.asn_type]
    stages = _default_stages()
    if want.endswith("Pipeline"):
        top = stage_for_association(asn, stages)
        assert stages[top].__name__ == want
        # level-3 imaging types (image3, mosaic, image) keep the Image3 stage
        assert (want == "Image3Pipeline") == (association_kind(asn.asn_type).level == 3)
    else:
        with pytest.raises(UnsupportedAssociationError) as err:
            stage_for_association(asn, stages)
        msg = str(err.value)
        assert "\n" not in msg
        assert f"association type '{asn.asn_type}'" in msg
        assert f"'strun {want} {path.name}'" in msg
        if asn.asn_type in JWST_ENGINE_TYPES:  # use jwst's
            assert "plan it with --engine jwst" in msg
        else:
            assert "no jwpipe engine plans it yet (not even --engine jwst)" in msg
        # the planner refuses before it looks for any member file
        with pytest.raises(WorkflowError, match=f"'{asn.asn_type}'"):
            plan_workflow([path])


def test_wfs_image3_is_for_wfs_combine():
    with pytest.raises(UnsupportedAssociationError, match=r"wfs_combine.*calwebb_wfs-image3"):
        dispatch("wfs-image3", "x_asn.json")


def test_missing_and_unknown_types_are_refused(tmp_path):
    with pytest.raises(UnsupportedAssociationError, match="has no 'asn_type'") as err:
        dispatch(None, "a.json")
    assert err.value.reason == "no asn_type"
    with pytest.raises(UnsupportedAssociationError, match="unknown association type 'imgae3'"):
        dispatch("imgae3", "a.json")
    data = json.loads((ASN / REAL[0].name).read_text())
    data.pop("asn_type")
    path = tmp_path / "notype_asn.json"
    path.write_text(json.dumps(data))
    with pytest.raises(WorkflowError, match="has no 'asn_type'"):
        plan_workflow([path])


def test_type_table_matches_jwst_conventions():
    # every type jwst's generator writes today (docs: "Association Types") is in the table
    for t in ("ami3", "coron3", "image2", "image3", "nrslamp-spec2", "spec2", "spec3", "tso3",
              "tso-image2", "tso-spec2", "wfs-image3"):
        assert t in KINDS
    assert association_kind("IMAGE3").asn_type == "image3"


def test_template_product_names_are_called_unsupported():
    """jwst's template fields load (``{source_id}``, a trailing ``_{suffix}``); a ``{suffix}``
    inside the name (the wfs-image3 rule) is refused as unsupported, not as unsafe."""
    from jwpipe.associations import product_root

    path = ASN / "jw00711_20181027T043250_pool-o002_wfs-image3_001_asn.json"
    name = load_asn(path).products[0].name
    assert name.endswith("_{suffix}-05")
    with pytest.raises(JwpipeError) as err:
        product_root(name)
    assert "template" in str(err.value) and "support" in str(err.value)
    assert "unsafe" not in str(err.value)


def test_asn_check_checks_every_file_and_summarises(tmp_path):
    broken = tmp_path / "broken_asn.json"
    broken.write_text("{not json")
    files = [str(p) for p in REAL] + [str(broken)]
    proc = subprocess.run([sys.executable, "-m", "jwpipe", "asn", "check", *files],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    ok = [ln for ln in proc.stdout.splitlines() if ": OK " in ln]
    failed = [ln for ln in proc.stderr.splitlines() if ln.startswith("FAILED ")]
    assert len(ok) == len(REAL)  # template names (jwst's {suffix}) load too
    assert len(failed) == 1 and "invalid JSON" in failed[0]
    n_ours = sum(1 for ln in ok if "jwpipe engine" in ln)
    assert n_ours == 12  # 4 image2, 4 image3, wfs-image2, nrslamp-image2, mosaic, image
    assert proc.stdout.strip().splitlines()[-1] == (
        f"{len(files)} file(s) checked: {len(REAL)} valid ({n_ours} for jwpipe's engine, "
        f"{len(REAL) - n_ours} for jwst pipelines), 1 failed")
    spec3 = next(ln for ln in ok if "_spec3_" in ln)
    assert "not for jwpipe's engine: type spec3" in spec3
    image3 = next(ln for ln in ok if "o001_image3_" in ln)
    assert "jwpipe engine" in image3
    assert "Traceback" not in proc.stderr
    # all valid: exit 0
    proc = subprocess.run([sys.executable, "-m", "jwpipe", "asn", "check", *files[:2]],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
