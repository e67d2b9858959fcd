"""The catalog's `.test/` configuration and the software of the rules (`conda:`, `--sdm conda`).

`.test/config/config.yaml` is used as the Snakemake workflow catalog's CI uses it
(`snakemake --directory .test` with `workflow/Snakefile`), on the small data its comment says to
simulate. Conda is not installed here (and creating environments needs the network), so the
conda side is checked as far as it goes without it: the environment file pins this jwpipe, and
Snakemake itself, parsing the generated Snakefile with conda deployment, gives every rule the
`jwpipe` of that environment.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from wfhelpers import job_env
from wfsteps import STAGES

import jwpipe
from jwpipe.workflow.generate import generate_workflow

REPO = Path(__file__).resolve().parents[2]
#: The set-up the comment of .test/config/config.yaml gives.
SIMULATE = ["simulate", ".test/data", "--exposures", "2", "--size", "48", "--ngroups", "4",
            "--seed", "7"]


def _snakemake(cwd, *args):
    return subprocess.run([sys.executable, "-m", "snakemake", "-s",
                           str(REPO / "workflow" / "Snakefile"), *args], cwd=cwd, env=job_env(),
                          capture_output=True, text=True, timeout=600)


def _job_stats(out: str) -> dict[str, int]:
    table = out.split("Job stats:", 1)[1].split("total", 1)[0]
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.MULTILINE)}


def test_dot_test_config_plans_the_whole_chain_with_directory(tmp_path):
    config = REPO / ".test" / "config" / "config.yaml"
    assert " ".join(SIMULATE) in config.read_text()  # the documented set-up is what runs here
    shutil.copytree(REPO / ".test" / "config", tmp_path / ".test" / "config")
    sim = subprocess.run([sys.executable, "-m", "jwpipe", *SIMULATE], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert sim.returncode == 0, sim.stderr
    dry = _snakemake(tmp_path, "--directory", ".test", "-n", "--cores", "2")
    assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-3000:]
    stats = _job_stats(dry.stdout)
    detector1 = ["group_scale", "dq_init", "saturation", "superbias", "refpix", "linearity",
                 "dark_current", "jump", "ramp_fit", "gain_scale"]
    image3 = ["tweakreg", "skymatch", "outlier_detection", "resample", "source_catalog"]
    assert {k: stats[k] for k in detector1} == dict.fromkeys(detector1, 2)
    assert {k: stats[k] for k in ["assign_wcs", "flat_field", "photom"]} == \
        dict.fromkeys(["assign_wcs", "flat_field", "photom"], 2)
    assert {k: stats[k] for k in image3} == dict.fromkeys(image3, 1)
    assert stats["products"] == 1  # the catalog's default target
    assert (tmp_path / ".test" / "plan.json").is_file()  # the work directory is .test itself
    lint = _snakemake(tmp_path, "--directory", ".test", "--lint")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    # another work directory cannot work with --directory: one clear message
    other = dict(yaml.safe_load(config.read_text()), workdir="results")
    (tmp_path / ".test" / "config" / "config.yaml").write_text(yaml.safe_dump(other))
    bad = _snakemake(tmp_path, "--directory", ".test", "-n")
    assert bad.returncode != 0
    assert "set 'workdir: .' in the config" in bad.stdout + bad.stderr


def _parse(workdir: Path, conda: bool, config: dict | None = None):
    """The generated Snakefile as Snakemake parses it, with or without conda deployment."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import (
        ConfigSettings,
        DeploymentSettings,
        OutputSettings,
        ResourceSettings,
    )
    from snakemake_interface_executor_plugins.settings import DeploymentMethod

    methods = {DeploymentMethod.CONDA} if conda else set()
    with SnakemakeApi(OutputSettings(quiet={})) as api:
        wf = api.workflow(resource_settings=ResourceSettings(cores=1),
                          config_settings=ConfigSettings(config=config or {}),
                          deployment_settings=DeploymentSettings(deployment_method=methods),
                          snakefile=workdir / "Snakefile", workdir=workdir)
        parsed = wf._workflow  # parses the Snakefile (Snakemake's own parser)
        return parsed.globals["JWPIPE"], {r.name: r.conda_env for r in parsed.rules}


def test_conda_env_pins_this_jwpipe_and_rules_call_its_jwpipe(field, tmp_path, monkeypatch):
    work = tmp_path / "wf"
    generate_workflow([field["asn"]], work, stages=STAGES,
                      overrides={"inc": {"override_gain": str(field["gain"])}})
    env = yaml.safe_load((work / "envs" / "jwpipe.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    if Path(jwpipe.__file__).resolve().is_relative_to(REPO / "src"):
        assert pip == [f"jwpipe @ {REPO.as_uri()}"]  # a source checkout: the checkout itself
    else:
        assert pip == [f"jwpipe=={jwpipe.__version__}"]
    assert "python>=3.11" in env["dependencies"]
    monkeypatch.chdir(work)
    plain, envs = _parse(work, conda=False)
    assert plain == f"{sys.executable} -m jwpipe"  # the jwpipe that generated the workflow
    assert set(envs) >= {"inc", "dbl", "scl", "align", "stack", "quicklook"}
    assert {name for name, e in envs.items() if e is None} == {"all"}
    assert all(str(e).endswith("envs/jwpipe.yaml") for e in envs.values() if e is not None)
    in_conda, _ = _parse(work, conda=True)
    assert in_conda == "jwpipe"  # the one on the job's PATH: the rule's conda environment
    assert _parse(work, conda=True, config={"jwpipe": "/opt/jw/bin/jwpipe"})[0] == \
        "/opt/jw/bin/jwpipe"
