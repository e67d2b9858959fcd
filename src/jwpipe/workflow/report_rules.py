"""The picture rules of a generated workflow, shown by ``snakemake --report report.html``.

Pictures are made by their own rules (``jwpipe figure ...``), never by run-step: a picture is
remade only when the product it shows changes, and a failed picture cannot fail calibration.
Each rule's output is wrapped in Snakemake's ``report()`` with a category, so the report groups
them as Exposures (quick-looks of ``_rate`` and ``_cal``), Mosaic (``_i2d`` with the
catalogue's sources marked), Alignment (tweakreg residuals), Timings and Status.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["PictureTargets", "picture_targets", "render_picture_rules", "report_caption"]

#: Per-exposure products drawn in the report (JWST product suffixes).
EXPOSURE_KINDS = ("rate", "cal")


@dataclass
class PictureTargets:
    """What the workflow makes that can be drawn, as the products' suffixes and names.

    Attributes
    ----------
    exposures : list of (str, str)
        (exposure, kind) of every per-exposure 2-D product to draw (kind ``rate`` or ``cal``).
    mosaics : list of str
        Level-3 product names that get an ``_i2d`` (and, if ``catalogs``, a ``_cat.ecsv``).
    catalogs : bool
        Whether the mosaics have catalogues to mark.
    aligned : bool
        Whether the products have a ``.tweakreg`` directory of aligned members.
    """

    exposures: list[tuple[str, str]] = field(default_factory=list)
    mosaics: list[str] = field(default_factory=list)
    catalogs: bool = False
    aligned: bool = False

    def files(self) -> list[str]:
        """Every picture the rules make (the report's targets)."""
        out = [f"pictures/{exp}_{kind}.png" for exp, kind in self.exposures]
        out += [f"pictures/{name}_i2d.png" for name in self.mosaics]
        if self.aligned:
            out += [f"pictures/{name}_tweakreg.png" for name in self.mosaics]
        return [*out, "pictures/timings.png", "pictures/status.html"]

    def inputs(self) -> set[str]:
        """Every product the picture rules read."""
        out = {f"products/{exp}_{kind}.fits" for exp, kind in self.exposures}
        out |= {f"products/{name}_i2d.fits" for name in self.mosaics}
        if self.catalogs:
            out |= {f"products/{name}_cat.ecsv" for name in self.mosaics}
        if self.aligned:
            out |= {f"products/{name}.tweakreg" for name in self.mosaics}
        return out


def picture_targets(exposures: list[str], products: list[str], outputs: set[str]
                    ) -> PictureTargets:
    """What can be drawn, from the plan's exposures, products and every unit output path."""
    shown = [(exp, kind) for exp in exposures for kind in EXPOSURE_KINDS
             if f"products/{exp}_{kind}.fits" in outputs]
    mosaics = [p for p in products if f"products/{p}_i2d.fits" in outputs]
    return PictureTargets(
        exposures=shown, mosaics=mosaics,
        catalogs=bool(mosaics) and all(f"products/{p}_cat.ecsv" in outputs for p in mosaics),
        aligned=bool(mosaics) and all(f"products/{p}.tweakreg" in outputs for p in mosaics))


def report_caption(n_exposures: int, products: list[str]) -> str:
    """The text on the report's front page (reStructuredText)."""
    names = ", ".join(f"``{p}``" for p in products) or "no level-3 product"
    return (
        f"jwpipe calibration of {n_exposures} exposure(s) into {names}.\n\n"
        "Results: quick-look pictures of every exposure's ``_rate`` and ``_cal`` (asinh "
        "stretch; flagged pixels in red), the mosaic with the catalogue's sources marked, "
        "the alignment residuals before and after tweakreg, the wall time and peak memory of "
        "every job, and the state of every unit (``jwpipe status``).\n"
    )


_EXPOSURE_RULE = '''

rule quicklook:
    input:
        "products/{{exp}}_{{kind}}.fits",
    output:
        report(
            "pictures/{{exp}}_{{kind}}.png",
            category="Exposures",
            subcategory="{{exp}}",
            labels={{"product": "{{kind}}"}},
        ),
    wildcard_constraints:
        kind="{kinds}",
    log:
        "logs/pictures/{{exp}}_{{kind}}.log",
    params:
        jwpipe=JWPIPE,
    conda:
        "envs/jwpipe.yaml"
    shell:
        "{{params.jwpipe}} figure image {{input:q}} {{output:q}} > {{log:q}} 2>&1"
'''

_MOSAIC_RULE = '''

rule quicklook_mosaic:
    input:
        image="products/{{product}}_i2d.fits",{catalog_input}
    output:
        report(
            "pictures/{{product}}_i2d.png",
            category="Mosaic",
            labels={{"product": "{{product}}"}},
        ),
    log:
        "logs/pictures/{{product}}_i2d.log",
    params:
        jwpipe=JWPIPE,
    conda:
        "envs/jwpipe.yaml"
    shell:
        "{{params.jwpipe}} figure image {{input.image:q}} {{output:q}}{catalog_arg} "
        "> {{log:q}} 2>&1"
'''

_ALIGNMENT_RULE = '''

rule alignment_residuals:
    input:
        "products/{product}.tweakreg",
    output:
        report(
            "pictures/{product}_tweakreg.png",
            category="Alignment",
            labels={"product": "{product}"},
        ),
    log:
        "logs/pictures/{product}_tweakreg.log",
    params:
        jwpipe=JWPIPE,
    conda:
        "envs/jwpipe.yaml"
    shell:
        "{params.jwpipe} figure alignment {output:q} {input:q} > {log:q} 2>&1"
'''

_SUMMARY_RULES = '''

localrules:
    timings,
    status_table,


rule timings:
    input:
        PLAN["targets"],
    output:
        report("pictures/timings.png", category="Timings", labels={"figure": "every job"}),
    log:
        "logs/pictures/timings.log",
    params:
        jwpipe=JWPIPE,
        order=",".join(step["name"] for step in PLAN["steps"]),
    conda:
        "envs/jwpipe.yaml"
    shell:
        "{params.jwpipe} figure benchmarks {output:q} benchmarks --order {params.order:q} "
        "> {log:q} 2>&1"


rule status_table:
    input:
        PLAN["targets"],
    output:
        report("pictures/status.html", category="Status", labels={"table": "units x steps"}),
    log:
        "logs/pictures/status.log",
    params:
        jwpipe=JWPIPE,
    conda:
        "envs/jwpipe.yaml"
    shell:
        "{params.jwpipe} figure status . {output:q} > {log:q} 2>&1"
'''


def render_picture_rules(targets: PictureTargets) -> str:
    """Snakefile text of the picture rules for ``targets`` (empty kinds give no rule)."""
    text = '\n\nreport: "report/workflow.rst"\n'
    kinds = sorted({kind for _, kind in targets.exposures})
    if kinds:
        text += _EXPOSURE_RULE.format(kinds="|".join(kinds))
    if targets.mosaics:
        text += _MOSAIC_RULE.format(
            catalog_input='\n        catalog="products/{product}_cat.ecsv",'
            if targets.catalogs else "",
            catalog_arg=" --catalog {input.catalog:q}" if targets.catalogs else "")
        if targets.aligned:
            text += _ALIGNMENT_RULE
    return text + _SUMMARY_RULES
