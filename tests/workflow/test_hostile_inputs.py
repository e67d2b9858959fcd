"""Issue 15 item 4: hostile inputs end with one line, a non-zero exit and nothing written.

Each case runs the real `jwpipe` command in a subprocess and checks: exit status 1, exactly
one line on stderr, no traceback, no workflow directory (nor staging directory) left behind.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import jwpipe

#: The jwpipe under test first on the path of every child (the field fixture sets PYTHONPATH).
SRC = str(Path(jwpipe.__file__).resolve().parents[1])


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(
        [SRC, *filter(None, [os.environ.get("PYTHONPATH")])]))

ROOT = "jw01234001001_01101_00001_nrca1"
LAUGHS = """\
class: jwpipe.pipeline.Detector1Pipeline
parameters:
  a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]
  b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
  c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
  d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
  e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
  f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
  g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
  h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
"""


def _asn(tmp: Path, *, name: str = "jw01234-o001_t001_nircam", expname: object = None,
         asn_type: str | None = "image3") -> dict:
    data: dict = {"asn_rule": "candidate_Asn_Lv3Image", "asn_pool": "pool",
                  "products": [{"name": name, "members": [
                      {"expname": expname if expname is not None else f"{ROOT}_cal.fits",
                       "exptype": "science"}]}]}
    if asn_type:
        data["asn_type"] = asn_type
    return data


def _refused(tmp: Path, *args: str, cwd: Path) -> str:
    """Run make-workflow into tmp/wf; check the one-line refusal; return the line."""
    proc = subprocess.run([sys.executable, "-m", "jwpipe", "make-workflow", *args, "-o",
                           str(tmp / "wf")], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env=_env())
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp / "wf").exists()
    assert not [p for p in tmp.iterdir() if p.name.startswith(".wf.")]
    print(f"HOSTILE {args[0] if args else ''}: {lines[0]}")
    return lines[0]


@pytest.fixture
def data(field):
    return field["dir"]


def test_deeply_nested_association(data, tmp_path):
    path = tmp_path / "deep_asn.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    line = _refused(tmp_path, str(path), cwd=data)
    assert "nesting deeper than 64 levels" in line


def test_association_nesting_just_beyond_the_limit(data, tmp_path):
    path = tmp_path / "deep65_asn.json"
    doc = _asn(tmp_path)
    doc["extra"] = json.loads("[" * 70 + "]" * 70)
    path.write_text(json.dumps(doc))
    assert "nesting deeper than 64 levels" in _refused(tmp_path, str(path), cwd=data)


def test_member_name_that_is_a_huge_integer(data, tmp_path):
    path = tmp_path / "int_asn.json"
    text = json.dumps(_asn(tmp_path, expname=0)).replace('"expname": 0', '"expname": ' +
                                                         "7" * 5000)
    path.write_text(text)
    line = _refused(tmp_path, str(path), cwd=data)
    assert "an integer with 5,000 digits" in line


def test_oversized_association_is_not_read(data, tmp_path):
    path = tmp_path / "huge_asn.json"
    with open(path, "wb") as fh:  # sparse: costs no disk, refused by size before reading
        fh.truncate(200 * 1024 * 1024)
    assert "the limit is 67,108,864" in _refused(tmp_path, str(path), cwd=data)


def test_billion_laughs_parameter_file(field, tmp_path):
    params = tmp_path / "laughs.yaml"
    params.write_text(LAUGHS)
    assert params.stat().st_size < 400
    line = _refused(tmp_path, field["asn"], "-p", str(params), cwd=field["dir"])
    assert "once aliases are expanded" in line


def test_recursive_alias_and_deep_yaml(field, tmp_path):
    rec = tmp_path / "rec.yaml"
    rec.write_text("class: jwpipe.pipeline.Detector1Pipeline\nparameters: &a [*a]\n")
    assert "contains itself" in _refused(tmp_path, field["asn"], "-p", str(rec),
                                         cwd=field["dir"])
    deep = tmp_path / "deep.yaml"
    deep.write_text("class: jwpipe.pipeline.Detector1Pipeline\nparameters: " + "[" * 50_000)
    assert "refused" in _refused(tmp_path, field["asn"], "-p", str(deep), cwd=field["dir"])


def test_product_name_too_long_fails_before_writing(data, tmp_path):
    path = data / "long_asn.json"
    path.write_text(json.dumps(_asn(tmp_path, name="p" * 300)))
    line = _refused(tmp_path, str(path), cwd=data)
    assert "is 300 characters long; the limit is 160" in line


def test_association_without_asn_type(data, tmp_path):
    path = data / "untyped_asn.json"
    path.write_text(json.dumps(_asn(tmp_path, asn_type=None)))
    line = _refused(tmp_path, str(path), cwd=data)
    assert "has no 'asn_type'" in line


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """One small simulated exposure with its references and associations."""
    base = tmp_path_factory.mktemp("hostile_sim")
    subprocess.run([sys.executable, "-m", "jwpipe", "simulate", "sim", "--exposures", "1",
                    "--size", "32", "--ngroups", "3", "--seed", "1"], cwd=base, check=True,
                   capture_output=True, timeout=300, env=_env())
    return base / "sim"


def _file_size_limit(nbytes: int):
    def limit():  # pragma: no cover - runs in the child
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))
    return limit


def test_failure_while_writing_leaves_nothing(sim, tmp_path):
    """An OS error in the middle of writing a new workflow (a file-size limit here; a full disk
    takes the same path) leaves no directory behind and is reported in one line."""
    asn = next(sim.glob("*image2*_asn.json"))
    proc = subprocess.run([sys.executable, "-m", "jwpipe", "make-workflow", str(asn),
                           "--refs", str(sim / "refs"), "-o", str(tmp_path / "wf")],
                          capture_output=True, text=True, timeout=120,
                          preexec_fn=_file_size_limit(2000), env=_env())
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert "File too large" in lines[0]
    assert not (tmp_path / "wf").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".wf.")]
    print(f"HOSTILE write failure: {lines[0]}")


def test_disk_full_in_a_job_ends_the_log_with_one_line(sim, tmp_path):
    """A job that cannot write its output exits 1; its log ends with one clear line and holds
    no traceback; no output appears under its final name."""
    asn = next(sim.glob("*image2*_asn.json"))
    wf = tmp_path / "wf"
    subprocess.run([sys.executable, "-m", "jwpipe", "make-workflow", str(asn), "--refs",
                    str(sim / "refs"), "-o", str(wf)], check=True, capture_output=True,
                   env=_env())
    plan = json.loads((wf / "plan.json").read_text())
    step = plan["steps"][0]["name"]
    key, entry = next(iter(plan["units"][step].items()))
    proc = subprocess.run([sys.executable, "-m", "jwpipe", "run-step",
                           f"units/{step}/{key}.json"], cwd=wf, capture_output=True, text=True,
                          timeout=120, preexec_fn=_file_size_limit(4000), env=_env())
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"jwpipe run-step units/{step}/{key}.json: error: ")
    assert "File too large" in last
    assert not any((wf / o).exists() for o in entry["outputs"])
    print(f"HOSTILE full disk in a job: {last}")
