"""Snakemake workflows from associations: plan, generate, run one step, inspect, resume."""
