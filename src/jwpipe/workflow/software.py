"""The software a workflow's jobs run: which ``jwpipe``, and the conda environment file.

By default every job runs the jwpipe that generated the workflow (``<python> -m jwpipe``, the
interpreter's absolute path), so a job never picks up another installation by accident. With
``snakemake --sdm conda`` each rule runs in the environment of ``envs/jwpipe.yaml`` and calls the
``jwpipe`` found there (on the job's ``PATH``). That file pins this jwpipe: ``jwpipe==<version>``
for an installed release; for a source checkout (an editable install, or ``PYTHONPATH``) the
checkout itself (``jwpipe @ file:///path/to/checkout``), since its version number does not say
which code it is. ``config["jwpipe"]`` (``--config jwpipe=...``) overrides both.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

__all__ = ["conda_env_text", "generating_command", "jwpipe_command", "source_checkout"]


def source_checkout() -> Path | None:
    """The source checkout this jwpipe is imported from, or None for an installed release."""
    import jwpipe

    root = Path(jwpipe.__file__).resolve().parents[2]
    project = root / "pyproject.toml"
    try:
        text = project.read_text()
    except OSError:
        return None
    return root if 'name = "jwpipe"' in text else None


def conda_env_text() -> str:
    """The text of ``envs/jwpipe.yaml``: Python and this jwpipe, pinned."""
    from jwpipe import __version__

    checkout = source_checkout()
    if checkout is None:
        origin = f"jwpipe {__version__} from PyPI"
        requirement = f"jwpipe=={__version__}"
    else:
        origin = f"jwpipe {__version__} from the source checkout it was generated with"
        requirement = f"jwpipe @ {checkout.as_uri()}"
    return f"""\
# The software of every rule, used with `snakemake --sdm conda`: jobs then run the `jwpipe` of
# this environment ({origin}). Without --sdm conda they run the jwpipe that generated the
# workflow. Written by `jwpipe make-workflow`.
channels:
  - conda-forge
dependencies:
  - python>=3.11
  - pip
  - pip:
      - "{requirement}"
"""


def generating_command() -> str:
    """``<this python> -m jwpipe``, quoted for the shell."""
    return f"{shlex.quote(sys.executable)} -m jwpipe"


def _uses_conda(workflow: Any) -> bool:
    settings = getattr(workflow, "deployment_settings", None)
    methods = getattr(settings, "deployment_method", None) or ()
    return any(getattr(m, "name", str(m)).upper() == "CONDA" for m in methods)


def jwpipe_command(workflow: Any, config: dict[str, Any], plan: dict[str, Any]) -> str:
    """The command a rule runs jwpipe with (called from the generated Snakefile).

    ``config["jwpipe"]`` if given; ``jwpipe`` (the one in the rule's conda environment) when
    Snakemake deploys software with conda; else the jwpipe that generated the workflow.
    """
    if config.get("jwpipe"):
        return str(config["jwpipe"])
    if _uses_conda(workflow):
        return "jwpipe"
    return str(plan["jwpipe"])
