"""make-workflow on real and simulated associations, from the command line (issue 17).

Real associations (tests/data/asn, jwst's public files) of every type jwpipe does not process
are mixed with a small simulated imaging field; the real ``jwpipe`` and ``snakemake`` commands
run as subprocesses.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jwpipe.simulate import simulate_field

DATA = Path(__file__).parents[1] / "data"
ASN = DATA / "asn"
PARS = DATA / "pars"

#: Real association files of types jwpipe's engine refuses, and the jwst pipeline named.
REFUSED = {
    "jw80600_20171108T041522_pool-o013_spec2_001_asn.json": ("spec2", "calwebb_spec2"),
    "jw80600_20171108T041522_pool-o013_spec3_001_asn.json": ("spec3", "calwebb_spec3"),
    "jw10004_20171108T090028_pool-o001_tso-spec2_001_asn.json": ("tso-spec2", "calwebb_spec2"),
    "jw10004_20171108T090028_pool-o001_tso3_001_asn.json": ("tso3", "calwebb_tso3"),
    "jw87600_20180824T213416_pool-o027_ami3_001_asn.json": ("ami3", "calwebb_ami3"),
    "jw10005_20181020T033546_pool-c1000_coron3_001_asn.json": ("coron3", "calwebb_coron3"),
    "jw96215_20180602T170215_pool-o001_nrslamp-spec2_001_asn.json":
        ("nrslamp-spec2", "calwebb_spec2"),
    "pool_021_tso-o006_tso-image2_001_asn.json": ("tso-image2", "calwebb_image2"),
}


def _jwpipe(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jwpipe", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    root = tmp_path_factory.mktemp("asnwf")
    out = simulate_field(root / "sim", n_exposures=2, size=32, ngroups=3, seed=4,
                         n_stars=5, n_galaxies=1)
    return out


def _mixed_dir(sim, tmp_path: Path) -> Path:
    """A directory holding the simulated image3 association, its data, and refused ones."""
    mixed = tmp_path / "mixed"
    shutil.copytree(sim.outdir, mixed, ignore=shutil.ignore_patterns("refs", "truth"))
    for p in mixed.glob("*image2*_asn.json"):
        p.unlink()
    for name in REFUSED:
        shutil.copy(ASN / name, mixed / name)
    shutil.copy(ASN / "jw00711_20181027T043250_pool-o002_wfs-image3_001_asn.json", mixed)
    return mixed


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_each_refused_type_names_type_pipeline_and_command(name, tmp_path):
    asn_type, pipeline = REFUSED[name]
    proc = _jwpipe("make-workflow", str(ASN / name), "-o", "wf", cwd=tmp_path)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    msg = lines[0]
    assert f"association type '{asn_type}'" in msg
    assert pipeline in msg and f"strun {pipeline} {name}" in msg
    assert "--engine jwst" in msg
    assert ("plan it with --engine jwst" in msg) == (
        asn_type in ("spec2", "nrslamp-spec2", "tso-spec2", "spec3", "coron3", "tso3",
                     "ami3"))
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "wf").exists()


def test_mixed_directory_plans_what_it_can_and_reports_the_rest(sim, tmp_path):
    mixed = _mixed_dir(sim, tmp_path)
    refs = str(sim.store_dir)
    proc = _jwpipe("make-workflow", str(mixed), "--refs", refs, "-o", "wf", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "2 exposure(s), 1 product(s)" in proc.stdout
    refused = [ln for ln in proc.stderr.splitlines() if ln.startswith("refused: ")]
    assert len(refused) == len(REFUSED) + 1
    for name, (asn_type, _) in REFUSED.items():
        assert any(name in ln and f"'{asn_type}'" in ln for ln in refused)
    # its template name ("..._{suffix}-05") loads; its type is what refuses it
    assert any("wfs-image3" in ln and "jw00711" in ln for ln in refused)
    summary = proc.stderr.strip().splitlines()[-1]
    assert summary.startswith(f"{len(REFUSED) + 1} association(s) refused: ")
    assert "1 type spec2" in summary and "1 type wfs-image3" in summary

    # --strict: the same input fails and writes nothing
    proc = _jwpipe("make-workflow", str(mixed), "--refs", refs, "-o", "strict", "--strict",
                   cwd=tmp_path)
    assert proc.returncode == 1
    assert "--strict: 9 of 10 association(s) cannot be planned; nothing written" in proc.stderr
    assert not (tmp_path / "strict").exists()

    # nothing plannable: non-zero without --strict, every refusal reported
    only = tmp_path / "refused_only"
    only.mkdir()
    for name in REFUSED:
        shutil.copy(ASN / name, only / name)
    proc = _jwpipe("make-workflow", str(only), "-o", "none", cwd=tmp_path)
    assert proc.returncode == 1
    assert sum(ln.startswith("refused: ") for ln in proc.stderr.splitlines()) == len(REFUSED)
    assert "nothing could be planned" in proc.stderr
    assert not (tmp_path / "none").exists()


def test_relative_paths_work_from_another_directory(sim, tmp_path):
    """Generated from a sibling directory with relative --input-dir, --refs and asn path, the
    workflow runs inside its own directory."""
    data = tmp_path / "data"
    shutil.copytree(sim.outdir, data, ignore=shutil.ignore_patterns("truth"))
    asn_dir = tmp_path / "asns"
    asn_dir.mkdir()
    asn2 = sorted(data.glob("*image2*_asn.json"))[0]
    shutil.move(asn2, asn_dir / asn2.name)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = _jwpipe("make-workflow", f"../asns/{asn2.name}", "--input-dir", "../data",
                   "--refs", "../data/refs", "-o", "../wf", cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    work = tmp_path / "wf"
    for unit in (work / "units").glob("*/*.json"):
        for path in json.loads(unit.read_text())["members"] + [
                p for p in json.dumps(json.loads(unit.read_text())["parameters"]).split('"')
                if p.endswith(".fits")]:
            assert os.path.isabs(path)
    snakefile = (work / "Snakefile").read_text()
    assert "../data" not in snakefile
    env = dict(os.environ)
    run = subprocess.run([sys.executable, "-m", "snakemake", "--profile", "profiles/local",
                          "--cores", "2", "--quiet", "all"], cwd=work, env=env,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    root = asn2.name  # the one exposure's cal product exists
    cals = list((work / "products").glob("*_cal.fits"))
    assert len(cals) == 1, root


def test_step_level_parameter_file_applies_to_its_step(sim, tmp_path):
    """jwst's own jump.cfg (class jwst.jump.JumpStep) with rejection_threshold = 7."""
    jump = tmp_path / "jump.cfg"
    jump.write_text((PARS / "jump.cfg").read_text().replace("4.0", "7"))
    proc = _jwpipe("make-workflow", str(sim.asn_image3), "--refs", str(sim.store_dir),
                   "-p", str(jump), "-o", "wf", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    units = list((tmp_path / "wf" / "units" / "jump").glob("*.json"))
    assert len(units) == 2
    for unit in units:
        assert json.loads(unit.read_text())["parameters"]["rejection_threshold"] == 7.0
    # jwst's superbias.cfg (SuperBiasStep, as jwst spells it) is accepted too
    proc = _jwpipe("make-workflow", str(sim.asn_image3), "--refs", str(sim.store_dir),
                   "-p", str(PARS / "superbias.cfg"), "-o", "wf2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("body,expect", [
    ('class = "Detector1Pipelin"\nrejection_threshold = 99\n',
     "'Detector1Pipelin' names no step or pipeline jwpipe knows"),
    ('class = "os.system"\n', "'os.system' names no step or pipeline jwpipe knows"),
    ('class = "subprocess.Popen"\n', "'subprocess.Popen' names no step"),
    (None, "'jwst.pipeline.Spec2Pipeline' is a jwst class that jwpipe does not implement"),
    ('class = "jwst.ipc.IPCStep"\n', "'jwst.ipc.IPCStep' is a jwst class"),
])
def test_parameter_file_with_unknown_class_is_an_error(sim, tmp_path, body, expect):
    if body is None:
        pars = PARS / "calwebb_spec2.cfg"
    else:
        pars = tmp_path / "bad.cfg"
        pars.write_text(body)
    proc = _jwpipe("make-workflow", str(sim.asn_image3), "--refs", str(sim.store_dir),
                   "-p", str(pars), "-o", "wf", cwd=tmp_path)
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert expect in proc.stderr
    assert not (tmp_path / "wf").exists()


def test_missing_member_names_the_association(sim, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(sim.outdir, data, ignore=shutil.ignore_patterns("refs", "truth"))
    next(data.glob("*_00002_nrca1_uncal.fits")).unlink()
    asn = next(data.glob("*image3*_asn.json"))
    proc = _jwpipe("make-workflow", str(asn), "--refs", str(sim.store_dir), "-o", "wf",
                   cwd=tmp_path)
    assert proc.returncode == 1
    assert str(asn) in proc.stderr and "_00002_nrca1_uncal.fits" in proc.stderr


def test_background_members(sim, tmp_path):
    """image2 with background members is refused with a command that handles it; image3
    plans its science members (as calwebb_image3) and says so."""
    data = tmp_path / "data"
    shutil.copytree(sim.outdir, data, ignore=shutil.ignore_patterns("refs", "truth"))
    asn2 = json.loads(sorted(data.glob("*image2*_asn.json"))[0].read_text())
    asn2["products"][0]["members"].append({"expname": "bg_rate.fits", "exptype": "background"})
    (data / "bg2_asn.json").write_text(json.dumps(asn2))
    proc = _jwpipe("make-workflow", str(data / "bg2_asn.json"), "--refs", str(sim.store_dir),
                   "-o", "wf", cwd=tmp_path)
    assert proc.returncode == 1
    assert f"jwpipe strun calwebb_image2 {data / 'bg2_asn.json'}" in proc.stderr
    asn3 = json.loads(next(data.glob("*image3*_asn.json")).read_text())
    asn3["products"][0]["members"].append({"expname": "bg_cal.fits", "exptype": "background"})
    (data / "bg3_asn.json").write_text(json.dumps(asn3))
    proc = _jwpipe("make-workflow", str(data / "bg3_asn.json"), "--refs", str(sim.store_dir),
                   "-o", "wf", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "1 non-science member(s) (background) not used, as calwebb_image3" in proc.stderr
