"""`make-workflow --until` and user steps inserted into the chain (`--insert-after`, parameter
files, the `jwpipe.steps` entry point), with real Snakemake.

The user's step is a real 1/f-noise-style cleaner (`cleanpkg.clean.ColumnCleanStep`: row-median
subtraction) registered through a real entry point: a dist-info directory with entry_points.txt
on the path. Its package is importable, but never allowed by JWPIPE_ALLOW_IMPORT: only the entry
point makes it runnable.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml
from cleanpkg.clean import bad_pixels, row_offsets
from test_catalog_layout import STAGE_NAMES, _run
from wfhelpers import job_env, planned_jobs, pythonpath, snakemake
from wfsteps import STAGES

from jwpipe import datamodels
from jwpipe.errors import WorkflowError
from jwpipe.simulate import simulate_field
from jwpipe.workflow.generate import generate_workflow

DET1 = ["group_scale", "dq_init", "saturation", "superbias", "refpix", "linearity",
        "dark_current", "jump", "ramp_fit", "gain_scale"]
IMAGE2 = ["assign_wcs", "flat_field", "photom"]


def _user_site(base):
    """A directory holding the dist-info of an installed 'cleanpkg' with its entry point."""
    site = base / "site"
    info = site / "cleanpkg-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: cleanpkg\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[jwpipe.steps]\ncolumn_clean = cleanpkg.clean:ColumnCleanStep\n")
    return site


@pytest.fixture
def user_site(tmp_path, monkeypatch):
    site = _user_site(tmp_path)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), pythonpath()]))
    return site


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    base = tmp_path_factory.mktemp("shape")
    return simulate_field(base / "data", n_exposures=2, size=48, ngroups=5, seed=5)


def _targets(work):
    return json.loads((work / "plan.json").read_text())["targets"]


def _unit(work, step, key):
    return json.loads((work / "units" / step / f"{key}.json").read_text())


def _jwpipe(*args, cwd, env=None):
    return subprocess.run([sys.executable, "-m", "jwpipe", *args], cwd=cwd, env=env or job_env(),
                          capture_output=True, text=True, timeout=300)


# ---------------------------------------------------------------------- --until, small steps
def test_until_a_step_then_the_rest_reuses_its_outputs(field, tmp_path):
    overrides = {"inc": {"override_gain": str(field["gain"])}}
    work = tmp_path / "wf"
    plan, _ = generate_workflow([field["asn"]], work, stages=STAGES, overrides=overrides,
                                until="inc", pictures=False)
    assert planned_jobs(work) == {"inc": 3}
    assert plan.targets == [f"products/{r}_inc.fits" for r in field["roots"]]
    snakemake(work)
    # the same directory without --until: the inc products are the ones the chain reads
    generate_workflow([field["asn"]], work, stages=STAGES, overrides=overrides, pictures=False)
    assert planned_jobs(work) == {"dbl": 3, "scl": 3, "align": 1, "stack": 1}
    generate_workflow([field["asn"]], work, stages=STAGES, overrides=overrides, until="wf_det",
                      pictures=False)
    assert planned_jobs(work) == {"dbl": 3}
    assert _targets(work) == [f"products/{r}_rate.fits" for r in field["roots"]]


def test_until_unknown_name_is_one_error(field, tmp_path):
    with pytest.raises(WorkflowError, match=r"--until 'imgae2': no such stage or step \(known: "
                                            r"WfDetStage, WfImgStage, WfMosaicStage, inc"):
        generate_workflow([field["asn"]], tmp_path / "wf", stages=STAGES, until="imgae2")
    assert not (tmp_path / "wf").exists()


def test_inserted_step_in_small_chain_and_refusals(field, tmp_path, user_site):
    overrides = {"inc": {"override_gain": str(field["gain"])}}
    work = tmp_path / "wf"
    generate_workflow([field["asn"]], work, stages=STAGES, overrides=overrides,
                      insert_after=["inc=column_clean"], pictures=False)
    assert planned_jobs(work) == {"inc": 3, "column_clean": 3, "dbl": 3, "scl": 3, "align": 1,
                                  "stack": 1}
    root = field["roots"][1]
    assert [i["path"] for i in _unit(work, "dbl", root)["inputs"]] == \
        [f"products/{root}_column_clean.fits"]
    snakemake(work)
    with datamodels.open(str(work / "products" / f"{root}_inc.fits")) as before, \
            datamodels.open(str(work / "products" / f"{root}_column_clean.fits")) as after:
        expected = before.data - row_offsets(before.data, bad_pixels(before), 3.0, 4)
        np.testing.assert_array_equal(after.data, expected)
    # an exposure-scope step cannot go into the product stage, nor after it
    for spec, message in [("align=column_clean", "works on each exposure"),
                          ("wf_mosaic=column_clean", "works on each exposure"),
                          ("nosuch=column_clean", "cannot insert 'column_clean' after 'nosuch'"),
                          ("dbl", "use --insert-after <step or stage>=<class>"),
                          ("inc=wfsteps.SclStep", "already a step of WfImgStage")]:
        with pytest.raises(WorkflowError, match=message):
            generate_workflow([field["asn"]], tmp_path / "x", stages=STAGES,
                              overrides=overrides, insert_after=[spec])


# ---------------------------------------------------------------------- real pipelines
def test_until_detector1_or_jump_on_the_real_pipelines(sim, tmp_path):
    asn = str(sim.asn_image3)
    roots = sorted(p.name.replace("_uncal.fits", "") for p in sim.uncal_files)
    for until in ("detector1", "Detector1Pipeline", "calwebb_detector1"):
        work = tmp_path / until
        generate_workflow([asn], work, refs=str(sim.store_dir), until=until)
        assert planned_jobs(work) == dict.fromkeys(DET1, 2), until
        assert _targets(work) == [f"products/{r}_rate.fits" for r in roots]
        plan = json.loads((work / "plan.json").read_text())
        assert not any(s["stage"] != "Detector1Pipeline" for s in plan["steps"])
    work = tmp_path / "jump"
    generate_workflow([asn], work, refs=str(sim.store_dir), until="jump")
    assert planned_jobs(work) == dict.fromkeys(DET1[:DET1.index("jump") + 1], 2)
    assert _targets(work) == [f"products/{r}_jump.fits" for r in roots]
    # from the command line: an unknown name is one line, exit status 1, nothing written
    bad = _jwpipe("make-workflow", asn, "--refs", str(sim.store_dir), "--until", "jmp",
                  "-o", "bad", cwd=tmp_path)
    assert bad.returncode == 1
    assert "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines()[-1].startswith(
        "jwpipe make-workflow: error: --until 'jmp': no such stage or step (known: "
        "Detector1Pipeline, Image2Pipeline, Image3Pipeline, group_scale")
    assert not (tmp_path / "bad").exists()


CLEAN_RATE = """\
class: jwpipe.pipeline.Detector1Pipeline
steps:
- class: column_clean
  name: clean_rate
  insert_after: detector1
  parameters: {nsigma: 2.5}
- class: jwpipe.steps.JumpStep
  name: jump
  parameters: {rejection_threshold: 5.0}
"""


def test_user_steps_after_jump_and_between_stages(sim, tmp_path, user_site):
    """A cleaner after jump (--insert-after, an entry point) and one after the rate product
    (a parameter-file entry); their own rules, each reading the previous output and read by the
    next step; parameters resolved like any step's; a parameter change reruns it and what
    follows, nothing before."""
    (tmp_path / "pars.yaml").write_text(CLEAN_RATE)
    (tmp_path / "column_clean.yaml").write_text(
        "class: cleanpkg.clean.ColumnCleanStep\nparameters: {nsigma: 4.0, min_good: 2}\n")
    made = _jwpipe("make-workflow", str(sim.asn_image2[0]), "--refs", str(sim.store_dir),
                   "--insert-after", "jump=column_clean", "-p", "pars.yaml",
                   "-p", "column_clean.yaml", "--steps.column_clean.min_good=6", "-o", "wf",
                   "--no-pictures", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    work = tmp_path / "wf"
    chain = [*DET1[:8], "column_clean", *DET1[8:], "clean_rate", *IMAGE2]
    assert [s["name"] for s in json.loads((work / "plan.json").read_text())["steps"]] == chain
    assert planned_jobs(work) == dict.fromkeys(chain, 1)
    root = sim.uncal_files[0].name.replace("_uncal.fits", "")
    clean, rate = _unit(work, "column_clean", root), _unit(work, "clean_rate", root)
    assert clean["class"] == rate["class"] == "cleanpkg.clean.ColumnCleanStep"
    # spec default < step-level file < --steps; the entry's own parameters for clean_rate
    assert (clean["parameters"]["nsigma"], clean["parameters"]["min_good"]) == (4.0, 6)
    assert (rate["parameters"]["nsigma"], rate["parameters"]["min_good"]) == (2.5, 4)
    assert _unit(work, "jump", root)["parameters"]["rejection_threshold"] == 5.0
    p = f"products/{root}"
    assert [i["path"] for i in clean["inputs"]] == [f"{p}_jump.fits"]
    assert [i["path"] for i in _unit(work, "ramp_fit", root)["inputs"]] == \
        [f"{p}_column_clean.fits"]
    assert [i["path"] for i in rate["inputs"]] == [f"{p}_rate.fits", f"{p}_rateints.fits"]
    assert [o["path"] for o in rate["outputs"]] == [f"{p}_clean_rate.fits",
                                                    f"{p}_clean_rate_rateints.fits"]
    assert [i["path"] for i in _unit(work, "assign_wcs", root)["inputs"]] == \
        [f"{p}_clean_rate.fits"]
    snakemake(work)
    products = work / "products"
    for before, after, nsigma, min_good in [("jump", "column_clean", 4.0, 6),
                                            ("rate", "clean_rate", 2.5, 4)]:
        with datamodels.open(str(products / f"{root}_{before}.fits")) as a, \
                datamodels.open(str(products / f"{root}_{after}.fits")) as b:
            offsets = row_offsets(a.data, bad_pixels(a), nsigma, min_good)
            assert np.any(offsets != 0)
            np.testing.assert_array_equal(b.data, a.data - offsets)
            assert b.extra["jwpipe"]["run_step"]["step"] == after
    with datamodels.open(str(products / f"{root}_cal.fits")) as cal:
        assert cal.meta.cal_step.photom == "COMPLETE"
    state = json.loads((work / "state" / "assign_wcs" / f"{root}.json").read_text())
    assert state["inputs"][0]["path"] == f"{p}_clean_rate.fits"
    assert planned_jobs(work) == {}
    # a parameter of the inserted step changes: it reruns, and what follows it, nothing before
    again = _jwpipe("make-workflow", "--again", "wf", "--steps.column_clean.nsigma=3.5",
                    cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "1 written" in again.stdout
    after_clean = chain[chain.index("column_clean"):]
    assert planned_jobs(work) == dict.fromkeys(after_clean, 1)


def test_user_step_refusals_are_one_line(sim, tmp_path, user_site):
    asn = str(sim.asn_image2[0])
    env = job_env()
    cases = [
        ("jump=os.system", "--insert-after class 'os.system' is not a known jwpipe step"),
        # importable, but neither registered nor allowed: refused before it is imported
        ("jump=cleanpkg.clean.ColumnCleanStep_", "is not a known jwpipe step"),
        ("jump=Detector1Pipeline", "is a pipeline; only a step can be inserted"),
        ("jmp=column_clean", "cannot insert 'column_clean' after 'jmp': no such step or stage"),
    ]
    for spec, message in cases:
        proc = _jwpipe("make-workflow", asn, "--refs", str(sim.store_dir), "--insert-after", spec,
                       "-o", "x", cwd=tmp_path, env=env)
        assert proc.returncode == 1, (spec, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert message in proc.stderr, (spec, proc.stderr)
        assert not (tmp_path / "x").exists()
    # allowed by prefix, but not a Step
    allowed = dict(env, JWPIPE_ALLOW_IMPORT="wfsteps:cleanpkg")
    proc = _jwpipe("make-workflow", asn, "--refs", str(sim.store_dir), "--insert-after",
                   "jump=cleanpkg.clean.NotAStep", "-o", "x", cwd=tmp_path, env=allowed)
    assert proc.returncode == 1 and "is not a Step subclass" in proc.stderr, proc.stderr
    # the same class by dotted path is refused without the entry point
    no_ep = dict(env, PYTHONPATH=pythonpath().replace(str(user_site) + os.pathsep, ""))
    proc = _jwpipe("make-workflow", asn, "--refs", str(sim.store_dir), "--insert-after",
                   "jump=cleanpkg.clean.ColumnCleanStep", "-o", "x", cwd=tmp_path, env=no_ep)
    assert proc.returncode == 1 and "is not a known jwpipe step" in proc.stderr, proc.stderr


def test_catalog_config_inserts_and_stops_like_make_workflow(field, tmp_path, user_site):
    """config keys `insert_after` and `until` (here: until the inserted step) in workflow/."""
    overrides = {"inc": {"override_gain": str(field["gain"])}}
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump({
        "associations": [field["asn"]], "workdir": "catalog", "overrides": overrides,
        "stages": STAGE_NAMES, "insert_after": ["inc=column_clean"], "until": "column_clean"}))
    dry = _run(tmp_path, "-n", "--cores", "1")
    assert dry.returncode == 0, dry.stdout[-2000:] + dry.stderr[-2000:]
    generate_workflow([field["asn"]], tmp_path / "generated", stages=STAGES,
                      overrides=overrides, insert_after=["inc=column_clean"],
                      until="column_clean")
    assert planned_jobs(tmp_path / "catalog") == planned_jobs(tmp_path / "generated") == {
        "inc": 3, "column_clean": 3}
    assert _targets(tmp_path / "catalog") == [
        f"products/{r}_column_clean.fits" for r in field["roots"]]
