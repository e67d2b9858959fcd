# The plan is made once per run, by the controlling Snakemake process, from the validated
# config: the same generator as `jwpipe make-workflow` writes (only what changed in) the work
# directory. Jobs never plan: a cluster job re-parses this file (Snakemake's `--mode remote`),
# and then only loads the generated rules, which read plan.json and the unit files.
from jwpipe.workflow.catalog import check_directory, generated_rules, prepare

# `snakemake --directory D` (the catalog's CI runs `--directory .test`) makes Snakemake ignore
# `workdir:` below: the config's workdir must then be D itself (`workdir: .`).
check_directory(config, workflow.overwrite_workdir)

if workflow.is_main_process:
    JWPIPE_WORKDIR, JWPIPE_RULES = prepare(config)
else:
    JWPIPE_WORKDIR, JWPIPE_RULES = generated_rules(config)


workdir: JWPIPE_WORKDIR


include: JWPIPE_RULES
