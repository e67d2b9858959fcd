"""Pictures of a workflow's results for Snakemake's report: quick-looks, timings, alignment."""
