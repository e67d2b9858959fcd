"""Workflow generation and Snakemake dry-run cost for N exposures, next to plain Snakemake.

    python benchmarks/bench_workflow.py [--n 100 1000 2000 10000] [--granularity step ...]

For each N: N copies of a small simulated exposure, each observed at its own time (DATE-OBS and
TIME-OBS are reference-selection keywords, so every exposure is selected for, as in a survey),
and one image3 association of all of them. Then, each in a fresh process (time and peak RSS of
that process; also its CPU time, which a loaded machine does not inflate):

* ``jwpipe make-workflow`` (a new workflow directory), and again with nothing changed;
* ``snakemake -n`` on the result (jobs from its job table);
* ``snakemake -n`` on a *plain* Snakemake workflow of the same shape, written here: the same
  rules with the same job counts, chained the same way (exposure rules take the previous rule's
  output, product rules all exposures), each job with one per-job input file besides its data
  (jwpipe's unit file), the same number of outputs plus a record, a log and a benchmark file,
  and a trivial shell command. The ratio (generate + dry run) / plain dry run is jwpipe's cost
  over Snakemake's own.

``--granularity``: ``step`` (one job per step and exposure) is jwpipe's default. Other values
are passed to ``make-workflow --granularity`` when it has that option (the coarse "one job per
exposure and stage" granularity); otherwise they are reported as not available.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path


def _observed_at(raw: bytes, i: int) -> bytes:
    """A copy of the FITS file ``raw`` observed ``i`` x 400 s later: DATE-OBS and TIME-OBS are
    reference-selection keywords, so (as in a real survey) every exposure has its own."""
    from astropy.io.fits import Card

    start = datetime(2023, 6, 1, 12) + timedelta(seconds=400 * i)
    mjd = 60096.5 + 400 * i / 86400
    values = {"DATE-OBS": start.strftime("%Y-%m-%d"),
              "TIME-OBS": start.strftime("%H:%M:%S.%f")[:12],
              "DATE-BEG": start.strftime("%Y-%m-%dT%H:%M:%S.%f")[:23], "EXPSTART": mjd,
              "EXPMID": mjd + 0.0002, "EXPEND": mjd + 0.0004}
    out = bytearray(raw)
    end = raw.index(b"END" + b" " * 77)  # the primary header only
    for at in range(0, end, 80):
        key = raw[at:at + 8].decode("ascii").strip()
        if key in values:
            out[at:at + 80] = Card(key, values[key]).image.encode("ascii")
    return bytes(out)


def _field(base: Path, n: int) -> tuple[Path, Path]:
    from jwpipe.associations import asn_from_list, write_asn
    from jwpipe.simulate import simulate_field

    sim = simulate_field(base / f"sim{n}", n_exposures=1, size=32, ngroups=3, seed=3)
    data = base / f"data{n}"
    data.mkdir()
    raw = sim.uncal_files[0].read_bytes()
    names = []
    for i in range(n):
        name = f"jw02000{i // 1000 + 1:03d}001_01101_{i % 1000 + 1:05d}_nrca1"
        (data / f"{name}_uncal.fits").write_bytes(_observed_at(raw, i))
        names.append(f"{name}_cal.fits")
    asn = data / "bench_image3_asn.json"
    write_asn(asn_from_list(names, product_name="jw02000-o001_t001_nircam_clear-f200w"), asn)
    return asn, sim.store_dir


def _measured(cmd: list[str], cwd: Path | None = None) -> tuple[float, float, float, str]:
    """Run ``cmd``; its wall time (s), CPU time (user + sys, s: what a loaded machine does not
    inflate), peak RSS (MB) and stdout. CPU and RSS by /usr/bin/time (a child forked from
    this process would count this process's memory)."""
    with tempfile.NamedTemporaryFile("r") as usage:
        t0 = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", "-o", usage.name, *cmd],
                              cwd=cwd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
        user, system, peak = Path(usage.name).read_text().split()[-3:]
    return wall, float(user) + float(system), int(peak) / 1024, proc.stdout


def _job_table(stdout: str) -> dict[str, int]:
    """Snakemake's "Job stats" table: rule -> jobs (with ``total``)."""
    counts = {}
    for line in stdout.split("Job stats:", 1)[1].splitlines()[3:]:
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if m:
            counts[m.group(1)] = int(m.group(2))
            if m.group(1) == "total":
                break
    return counts


def _dry_run(work: Path) -> tuple[float, float, float, dict[str, int]]:
    wall, cpu, rss, out = _measured([sys.executable, "-m", "snakemake", "-n", "--quiet",
                                     "rules", "--cores", "2"], cwd=work)
    return wall, cpu, rss, _job_table(out)


_PLAIN_HEADER = '''\
import json

with open("names.json") as _fh:
    NAMES = json.load(_fh)


wildcard_constraints:
    exp="[A-Za-z0-9][A-Za-z0-9._-]*",
    product="[A-Za-z0-9][A-Za-z0-9._-]*",
    kind="{kinds}",


rule all:
    input:
{targets}
    default_target: True
'''

_PLAIN_RULE = '''

rule {name}:
    input:
        data={data},
        config="config/{name}/{{{wc}}}.txt",
    output:
{outputs}
        record="state/{name}/{{{wc}}}.json",
    log:
        "logs/{name}/{{{wc}}}.log",
    benchmark:
        "benchmarks/{name}/{{{wc}}}.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "touch {{output}} > {{log}} 2>&1"
'''


def write_plain_workflow(work: Path, exposures: list[str], products: list[str],
                         rules: list[tuple[str, int, int]]) -> None:
    """A plain Snakemake workflow: ``rules`` as (name, jobs, outputs per job), in order.

    A rule with a multiple of len(exposures) jobs runs per exposure (and per ``kind`` if more
    than one job per exposure); any other, per product. Exposure rules chain on the previous
    exposure rule; the first product rule takes every exposure's last output, the next ones
    the previous product rule's output.
    """
    n = len(exposures)
    kinds = max(jobs // n for _, jobs, _ in rules if jobs % n == 0)
    kind_names = [f"k{i}" for i in range(kinds)]
    text_rules, targets = "", []
    previous_exp, previous_product = None, None
    config_files = []
    for name, jobs, outputs in rules:
        per_exposure = jobs % n == 0 and jobs >= n
        wc = "exp" if per_exposure else "product"
        stem = "{exp}_{kind}" if per_exposure and jobs // n > 1 else "{" + wc + "}"
        if per_exposure:
            data = (f'"products/{{exp}}_{previous_exp}_0.txt"' if previous_exp
                    else '"data/{exp}.txt"')
            keys = exposures if jobs == n else [f"{e}_{k}" for e in exposures
                                                for k in kind_names[:jobs // n]]
        else:
            source = (f"products/{{product}}_{previous_product}_0.txt" if previous_product
                      else None)
            data = (f'"{source}"' if source else
                    f'expand("products/{{exp}}_{previous_exp}_0.txt", exp=NAMES["exposures"])')
            keys = products
        out_patterns = [f"products/{stem}_{name}_{j}.txt" for j in range(outputs)]
        lines = "\n".join(f'        "{p}",' for p in out_patterns)
        if "{kind}" in stem:  # one config and record per exposure and kind
            rule = _PLAIN_RULE.replace("{{{wc}}}", "{{exp}}_{{kind}}")
        else:
            rule = _PLAIN_RULE
        text_rules += rule.format(name=name, data=data, outputs=lines, wc=wc)
        config_files += [f"config/{name}/{k}.txt" for k in keys]
        if per_exposure and jobs == n:
            previous_exp = name
            # the last exposure rule's outputs are consumed by the product rules
        elif per_exposure:
            targets.append(f'expand("products/{{exp}}_{{kind}}_{name}_0.txt", '
                           f'exp=NAMES["exposures"], kind={kind_names[:jobs // n]!r}),')
        else:
            previous_product = name
            targets.append(f'expand("products/{{product}}_{name}_0.txt", '
                           f'product=NAMES["products"]),')
    targets.append(f'expand("products/{{exp}}_{previous_exp}_0.txt", exp=NAMES["exposures"]),')
    header = _PLAIN_HEADER.format(kinds="|".join(kind_names),
                                  targets="\n".join(f"        {t}" for t in targets))
    work.mkdir(parents=True)
    (work / "Snakefile").write_text(header + text_rules)
    (work / "names.json").write_text(json.dumps({"exposures": exposures,
                                                 "products": products}))
    (work / "data").mkdir()
    for e in exposures:
        (work / "data" / f"{e}.txt").write_text("")
    for path in config_files:
        p = work / path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("")


def _plain_rules(plan: dict, table: dict[str, int]) -> list[tuple[str, int, int]]:
    """(rule, jobs, outputs) of the jwpipe workflow: step (or stage) rules in plan order,
    others after. A stage rule declares the outputs that leave its stage (``chains`` in
    plan.json), and so does its plain counterpart."""
    outputs = {s["name"]: len(s["outputs"]) for s in plan["steps"]}
    n = len(plan["exposures"])
    rules = [(s["name"], table[s["name"]], outputs[s["name"]]) for s in plan["steps"]
             if s["name"] in table]
    for stage, jobs in (plan.get("chains") or {}).items():  # stage rules: outputs they declare
        if stage in table and jobs:
            outputs[stage] = max(len(job["outputs"]) for job in jobs.values())
            rules.append((stage, table[stage], outputs[stage]))
    others = [r for r in table if r not in outputs and r not in ("all", "total")]
    rules += [(r, table[r], 1) for r in others if table[r] % n == 0]
    rules += [(r, table[r], 1) for r in others if table[r] % n != 0]
    # exposure rules first (they chain), then product rules
    return ([r for r in rules if r[1] % n == 0 and r[1] >= n]
            + [r for r in rules if not (r[1] % n == 0 and r[1] >= n)])


def _has_granularity() -> bool:
    out = subprocess.run([sys.executable, "-m", "jwpipe", "make-workflow", "--help"],
                         capture_output=True, text=True).stdout
    return "--granularity" in out


def _bench(base: Path, n: int, granularities: list[str]) -> list[dict]:
    asn, refs = _field(base, n)
    rows = []
    for granularity in granularities:
        work = base / f"wf{n}_{granularity}"
        cmd = [sys.executable, "-m", "jwpipe", "make-workflow", str(asn), "-o", str(work),
               "--refs", str(refs)]
        if granularity != "step":
            cmd += ["--granularity", granularity]
        t_gen, c_gen, m_gen, _ = _measured(cmd)
        t_regen, c_regen, _, out = _measured(cmd)
        if "0 written" not in out:
            raise SystemExit(f"regeneration rewrote unit files: {out}")
        t_dry, c_dry, m_dry, table = _dry_run(work)
        plan = json.loads((work / "plan.json").read_text())
        plain = base / f"plain{n}_{granularity}"
        write_plain_workflow(plain, plan["exposures"], plan["products"],
                             _plain_rules(plan, table))
        t_plain, c_plain, m_plain, plain_table = _dry_run(plain)
        if plain_table["total"] != table["total"]:
            raise SystemExit(f"plain workflow has {plain_table['total']} jobs, jwpipe's "
                             f"{table['total']}")
        rows.append({"exposures": n, "granularity": granularity, "jobs": table["total"],
                     "generate_s": t_gen, "generate_cpu_s": c_gen, "generate_mb": m_gen,
                     "regenerate_s": t_regen, "regenerate_cpu_s": c_regen,
                     "dry_run_s": t_dry, "dry_run_cpu_s": c_dry, "dry_run_mb": m_dry,
                     "plain_dry_run_s": t_plain, "plain_dry_run_cpu_s": c_plain,
                     "plain_dry_run_mb": m_plain,
                     "ratio_wall": (t_gen + t_dry) / t_plain,
                     "ratio_cpu": (c_gen + c_dry) / c_plain,
                     "load": os.getloadavg()[0]})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def _slurm_probe_wait() -> float:
    """Seconds ``scontrol show config`` takes (0 without SLURM's commands or the plugin)."""
    import importlib.util
    import shutil

    if (shutil.which("scontrol") is None
            or importlib.util.find_spec("snakemake_executor_plugin_slurm") is None):
        return 0.0
    t0 = time.perf_counter()
    subprocess.run(["scontrol", "show", "config"], capture_output=True, timeout=60)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, nargs="+", default=[100, 1000, 2000, 10000])
    parser.add_argument("--granularity", nargs="+", default=["step"],
                        help="step (default), or values of make-workflow --granularity")
    parser.add_argument("--json", help="also write the rows to this file")
    ns = parser.parse_args()
    granularities = list(ns.granularity)
    if any(g != "step" for g in granularities) and not _has_granularity():
        print("make-workflow has no --granularity option here: measuring 'step' only",
              file=sys.stderr)
        granularities = ["step"]
    from bench_detector1 import compile_bytecode

    compile_bytecode()  # as installed: PYTHONDONTWRITEBYTECODE would compile jwpipe every time
    wait = _slurm_probe_wait()
    if wait > 1:
        print(f"note: SLURM's scontrol takes {wait:.0f} s to answer here, and "
              "snakemake-executor-plugin-slurm asks it whenever snakemake starts: wall times "
              "of dry runs include that wait (CPU times do not)", flush=True)
    print(f"load average at start: {os.getloadavg()}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        for n in ns.n:
            rows += _bench(Path(tmp), n, granularities)
    print(f"load average at end: {os.getloadavg()}")
    print("\nwall s / CPU s (user + sys) of each process; ratio = (generate + dry run) / plain "
          "dry run")
    print(f"{'exposures':>9} {'granul.':>7} {'jobs':>7} {'generate':>11} {'MB':>4} "
          f"{'regenerate':>11} {'snakemake -n':>13} {'MB':>4} {'plain -n':>11} {'MB':>4} "
          f"{'ratio wall/CPU':>14} {'load':>5}")
    for r in rows:
        print(f"{r['exposures']:>9} {r['granularity']:>7} {r['jobs']:>7} "
              f"{r['generate_s']:>5.1f}/{r['generate_cpu_s']:<5.1f} {r['generate_mb']:>4.0f} "
              f"{r['regenerate_s']:>5.1f}/{r['regenerate_cpu_s']:<5.1f} "
              f"{r['dry_run_s']:>6.1f}/{r['dry_run_cpu_s']:<6.1f} {r['dry_run_mb']:>4.0f} "
              f"{r['plain_dry_run_s']:>5.1f}/{r['plain_dry_run_cpu_s']:<5.1f} "
              f"{r['plain_dry_run_mb']:>4.0f} {r['ratio_wall']:>6.2f}/{r['ratio_cpu']:<7.2f} "
              f"{r['load']:>5.1f}")
    if ns.json:
        Path(ns.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
