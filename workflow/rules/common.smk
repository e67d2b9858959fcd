# Generate (or update) the work directory from the validated config, then load its rules.
from jwpipe.workflow.catalog import prepare

JWPIPE_WORKDIR, JWPIPE_RULES = prepare(config, workflow.basedir)


workdir: JWPIPE_WORKDIR


include: JWPIPE_RULES
