"""jwst's calwebb_coron3, calwebb_tso3 and calwebb_ami3 as workflow units, and their jobs.

These pipelines pass models between their steps in code (coron3: the stacked PSF references
to ``align_refs`` with each target, the aligned references to ``klip``; ami3: the i-th target
with the i-th reference star). :data:`jwpipe.engines.jwst_stages.LEVEL3_FLOW_STAGES` states
that data flow per step; :func:`plan_flow_stage` turns it into units (one per member of the
declared roles, or one per product, with the step's inputs named in the unit file), and
:func:`call_flow` is the job's side: it rebuilds each positional argument the unit declares
(a file, a ModelContainer, a ModelLibrary of integrations) and calls the jwst step through
stpipe's ``Step.call``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from jwpipe.errors import WorkflowError

__all__ = ["call_flow", "plan_flow_stage"]


#: What a step changes in place on a model it is given inside its pipeline, by the parameters
#: that decide the change (coron3's align_refs: its target's bad pixels, median-replaced).
_PREPARE_PARAMETERS = {"align_refs": ("median_box_length", "bad_bits")}


def _path(suffix: str, kind: str, name: str) -> str:
    return f"products/{name}_{suffix}{'.ecsv' if kind == 'table' else '.fits'}"


def plan_flow_stage(stage: type, resolver: Any, exposures: Mapping[str, Any],
                    products: Sequence[tuple[int, str, list[str]]], index: int,
                    streams: dict[str, list[str]], store: Any, units: list[Any],
                    targets: list[str], shape: Any) -> list[dict[str, Any]]:
    """Plan the products of a level-3 flow stage (the planner's product-stage hook)."""
    from jwpipe.workflow.plan import (
        Unit,
        _active_steps,
        _class_path,
        _memory,
        _order_key,
        _unit_parameters,
        entering_stream,
        file_spec,
    )

    info = stage.workflow_flow
    mine = [(name, roots) for top, name, roots in products if top == index]
    steps: dict[str, dict[str, Any]] = {}
    owner: dict[str, str] = {}
    for product, roots in mine:
        roles = getattr(roots, "roles", dict.fromkeys(roots, "science"))
        by_role = {role: [r for r in roots if roles[r] == role] for role in info["roles"]}
        for root in roots:
            if owner.setdefault(root, product) != product:
                raise WorkflowError(f"{info['alias']}: member {root} is in products "
                                    f"{owner[root]} and {product}; one workflow plans a "
                                    "member for one product")
        if not by_role["science"]:
            raise WorkflowError(f"{info['alias']}: product {product} has no science member")
        first = exposures[by_role["science"][0]]
        mode = _order_key(stage, first.params)
        allowed = info.get("exp_types")
        if allowed and str(first.params.get("EXP_TYPE", "")).upper() not in allowed:
            raise WorkflowError(
                f"{info['alias']}: product {product} is {first.params.get('EXP_TYPE')}; "
                f"workflows plan {info['alias']} for {', '.join(allowed)} only "
                f"(not planned yet: {', '.join(sorted(info['not_planned']))})")
        pars = resolver.resolve(first.params, first.start_file)
        chain, _, planned = shape.entries(index, stage, _active_steps(stage, pars, mode), mode)
        if any(entry.inserted is not None for entry in chain):
            raise WorkflowError(f"{info['alias']}: steps cannot be inserted into it (its "
                                "steps pass more than one input)")
        # a member's _calints: its start file, or what Image2 made of its _rateints
        entering = {r: entering_stream(streams[r], stage.workflow_input_suffix)[0]
                    if exposures[r].start_stage < index else exposures[r].start_file
                    for r in roots}
        current = dict(entering)
        made: dict[tuple[str, str], list[str]] = {}
        for entry in chain[:planned]:
            name, step_class = entry.name, entry.step_class
            flow = info["flow"][name]
            step_pars = {**pars["steps"][name], **info["sets"].get(name, {})}
            kinds = [kind for _, kind in flow["outputs"]]
            if flow["units"] == "product":
                keys, scope, wildcard = [product], "product", "product"
            else:
                keys = [r for role in flow["units"] for r in by_role.get(role, [])]
                scope, wildcard = "exposure", "exp"
            for key in keys:
                args, files = _arguments(flow["args"], key, product, by_role, current, made,
                                         entering)
                if args is None:
                    continue  # no partner member (ami_normalize past the shorter list)
                dataset = exposures[key].params if scope == "exposure" else first.params
                unit_pars, refs = _unit_parameters(step_class, step_pars, dataset, store,
                                                   f"{stage.__name__}.{name} for {key}")
                outputs = [_path(suffix, kind, key) for suffix, kind in flow["outputs"]]
                nbytes = (exposures[key].nbytes if scope == "exposure" else
                          sum(exposures[r].nbytes for r in roots))
                mem_mb, runtime = _memory(step_class, nbytes)
                for position, by in flow.get("prepare", {}).items():
                    args[position]["prepare"] = {
                        "step": by, **{k: v for k, v in pars["steps"][by].items()
                                       if k in _PREPARE_PARAMETERS.get(by, ())}}
                extra: dict[str, Any] = {"jwst": {"flow": {"args": args}}}
                if flow.get("association"):
                    extra["jwst"]["flow"]["association"] = dict(
                        getattr(roots, "association", {}))
                if flow.get("blend"):
                    blended = [entering[r] for r in by_role[flow["blend"]]]
                    extra["jwst"]["flow"]["blend"] = {
                        "files": list(range(len(files), len(files) + len(blended))),
                        "exptype": flow["blend"],
                        **getattr(roots, "association", {})}
                    files = [*files, *blended]
                units.append(Unit(name, key, _class_path(step_class), scope,
                                  [file_spec(p) for p in files],
                                  [file_spec(p, k) for p, k in zip(outputs, kinds, strict=True)],
                                  unit_pars, refs, mem_mb, runtime,
                                  members=list(roots) if scope == "product" else [],
                                  stage_product=True, extra=extra))
                made[(name, key)] = outputs
                if flow.get("advance") and scope == "exposure":
                    current[key] = outputs[0]
                targets += outputs
            steps.setdefault(name, {
                "name": name, "stage": stage.__name__, "group": stage.workflow_group_name(),
                "scope": scope, "wildcard": wildcard,
                "outputs": [_path(suffix, kind, "{" + wildcard + "}")
                            for suffix, kind in flow["outputs"]],
                "output_is_dir": False, "stage_product": True,
                "alias": step_class.class_alias or name, "inputs_from_others": True})
        for root in roots:
            streams[root] = [current[root]]
    return list(steps.values())


def _arguments(declared: Sequence[str], key: str, product: str,
               by_role: Mapping[str, list[str]], current: Mapping[str, str],
               made: Mapping[tuple[str, str], list[str]], start: Mapping[str, str]
               ) -> tuple[list[dict[str, Any]] | None, list[str]]:
    """A unit's positional arguments as indices into its input files (see
    :data:`~jwpipe.engines.jwst_stages.LEVEL3_FLOW_STAGES`); None when a pair is missing."""
    files: list[str] = []
    args: list[dict[str, Any]] = []

    def take(paths: list[str], how: str) -> None:
        args.append({"files": list(range(len(files), len(files) + len(paths))), "as": how})
        files.extend(paths)

    def output(step: str, of: str) -> str:
        if (step, of) not in made:  # skipped, or past --until
            raise WorkflowError(f"{of}: a step needs the output of {step!r}, which is not "
                                "planned (its skip is set?); it cannot be skipped here")
        return made[(step, of)][0]

    for arg in declared:
        kind, _, rest = arg.partition(":")
        if kind == "member":
            take([output(rest, key) if rest else current[key]], "file")
        elif kind == "product":
            take([output(rest, product)], "file")
        elif kind == "role":
            role, _, how = rest.partition(":")
            if not by_role[role]:
                raise WorkflowError(f"product {product} has no {role} member, which a step "
                                    "of its pipeline needs")
            take([current[r] for r in by_role[role]], how or "container")
            if how == "spectra":  # the members' names, as calwebb_tso3 reads them
                args[-1]["names"] = [os.path.basename(start[r]) for r in by_role[role]]
        elif kind == "pair":
            role, _, step = rest.partition(":")
            mine = next(r for r in by_role.values() if key in r)
            partners = by_role[role]
            if mine.index(key) >= len(partners):
                return None, []
            take([output(step, partners[mine.index(key)])], "file")
        else:
            raise WorkflowError(f"unknown flow argument {arg!r}")
    return args, files


# ------------------------------------------------------------------------------------ jobs
def _argument(spec: Mapping[str, Any], paths: Sequence[str]) -> Any:
    from jwst.datamodels import ModelContainer, ModelLibrary
    from stdatamodels.jwst import datamodels

    chosen = [paths[i] for i in spec["files"]]
    if spec["as"] == "file":  # opened, as the pipelines pass models (and jwst's
        model = datamodels.open(chosen[0])  # outlier_detection cannot name a file's asn_id)
        return _prepare(model, spec["prepare"]) if "prepare" in spec else model
    if spec["as"] == "container":
        return ModelContainer(chosen)
    if spec["as"] == "integrations":  # each integration its own image, as coron3 resamples
        from jwst.pipeline.calwebb_coron3 import to_container

        images = []
        for path in chosen:
            with datamodels.open(path) as cube:
                images += list(to_container(cube))
        return ModelLibrary(ModelContainer(images), on_disk=False)
    raise WorkflowError(f"unit argument kind {spec['as']!r} is not one jwpipe writes")


def _prepare(model: Any, how: Mapping[str, Any]) -> Any:
    """The model as the step ``how["step"]`` leaves it in place inside its pipeline."""
    if how["step"] != "align_refs":
        raise WorkflowError(f"unit argument prepared by {how['step']!r}: not one jwpipe writes")
    from astropy.nddata.bitmask import interpret_bit_flags
    from jwst.coron.median_replace_img import median_replace_img
    from stdatamodels.jwst.datamodels.dqflags import pixel

    bad = interpret_bit_flags(how["bad_bits"], flag_name_map=pixel) or 0
    return median_replace_img(model, how["median_box_length"], bad)


def call_flow(cls: type, unit: Mapping[str, Any], files: Sequence[str], pars_file: str,
              overrides: Mapping[str, str]) -> list[Any]:
    """Call the unit's jwst step on the arguments its unit file declares; the results in
    output order (``each``: one call per file, the tables stacked into one)."""
    declared = unit["jwst"]["flow"]["args"]
    if len(declared) == 1 and declared[0]["as"] == "spectra":
        return [_spectra(cls, unit, [files[i] for i in declared[0]["files"]],
                         declared[0]["names"], pars_file, overrides)]
    if len(declared) == 1 and declared[0]["as"] == "each":
        from astropy.table import vstack

        tables = [cls.call(_argument({"files": [i], "as": "file"}, files),
                           config_file=pars_file, **overrides) for i in declared[0]["files"]]
        if any(t is None for t in tables):
            raise WorkflowError(f"jwst's {unit['class']} returned no table")
        table = vstack(tables)
        table.meta["number_of_integrations"] = len(table)
        return [table]
    args = [_argument(spec, files) for spec in declared]
    result = cls.call(*args, config_file=pars_file, **overrides)
    flat = list(result) if isinstance(result, tuple) else [result]
    if any(r is None for r in flat):
        raise WorkflowError(f"jwst's {unit['class']} returned no product (see its log above)")
    for table in flat:  # calwebb_tso3 writes its one table so (white_light's curve)
        if isinstance(getattr(table, "meta", None), dict):
            table.meta["number_of_integrations"] = len(table)
    blend = unit["jwst"]["flow"].get("blend")
    if blend and flat[0].meta.cal_step.resample == "COMPLETE":
        from jwst.model_blender import ModelBlender
        from stdatamodels.jwst import datamodels

        blender = ModelBlender()
        for i in blend["files"]:  # each member as read from the association
            with datamodels.open(files[i]) as model:
                model.meta.asn.exptype = blend["exptype"]
                model.meta.asn.pool_name = blend.get("pool_name")
                model.meta.asn.table_name = blend.get("table_name")
                blender.accumulate(model)
        blender.finalize_model(flat[0])
        flat[0].meta.asn.pool_name = blend.get("pool_name")
        flat[0].meta.asn.table_name = blend.get("table_name")
    return flat


#: The steps calwebb_tso3 runs on each member before extracting it, whose statuses it
#: summarises in the ``_x1dints`` (a step not planned, skipped, counts as SKIPPED).
_BEFORE_EXTRACTION = ("adaptive_trace_model", "pixel_replace")


def _spectra(cls: type, unit: Mapping[str, Any], paths: Sequence[str], names: Sequence[str],
             pars_file: str, overrides: Mapping[str, str]) -> Any:
    """calwebb_tso3's ``_x1dints``: each member's cube extracted by the unit's step (jwst's
    extract_1d), in member order; the spectra in one TSOMultiSpecModel whose primary
    metadata is the first member's, whose INT_TIMES (and stripe times) rows are the members',
    whose metadata is the extractions' blended by jwst's ModelBlender, with the association's
    pool and file names, the members' step statuses summarised, and the footprint calwebb_tso3
    gives it."""
    import numpy as np
    from astropy.io.fits import FITS_rec
    from jwst.model_blender import ModelBlender
    from jwst.stpipe.utilities import summary_step_status
    from stdatamodels.jwst import datamodels

    cubes = [datamodels.open(p) for p in paths]
    first = cubes[0]
    product = datamodels.TSOMultiSpecModel()
    product.update(first, only="PRIMARY")
    nint = first.meta.exposure.nints
    product.int_times = FITS_rec.from_columns(first.int_times.columns, nrows=nint)
    stripes = getattr(first, "int_times_stripe", None)
    nstripe = int(np.max(stripes["stripe_number"])) if stripes is not None and len(stripes) \
        else 0
    if nstripe:
        product.int_times_stripe = FITS_rec.from_columns(stripes.columns, nrows=nint * nstripe)
    product.meta.target.source_type = None
    blender = ModelBlender()
    statuses: dict[str, list[str]] = {name: [] for name in _BEFORE_EXTRACTION}
    association = unit["jwst"]["flow"].get("association", {})
    for cube, name in zip(cubes, names, strict=True):
        # each member as calwebb_tso3 holds it: read from the association (its name, role,
        # pool and file), with the steps it skipped recorded as skipped
        cube.meta.filename, cube.meta.asn.exptype = name, "science"
        cube.meta.asn.pool_name = association.get("pool_name")
        cube.meta.asn.table_name = association.get("table_name")
        for step, values in statuses.items():
            status = getattr(cube.meta.cal_step, step, None) or "SKIPPED"
            setattr(cube.meta.cal_step, step, status)
            values.append(status)
        result = cls.call(cube, config_file=pars_file, **overrides)
        for row in cube.int_times:
            product.int_times[row[0] - 1] = row
        cube_stripes = getattr(cube, "int_times_stripe", None)
        if nstripe and cube_stripes is not None:
            for row in cube_stripes:
                product.int_times_stripe[(row[0] - 1) * nstripe + row[1] - 1] = row
        if result is None or result.meta.cal_step.extract_1d == "SKIPPED":
            continue
        product.spec.extend(result.spec)
        blender.accumulate(result)
    if not len(product.spec):
        raise WorkflowError(f"{unit['key']}: jwst's extract_1d extracted no spectrum from any "
                            "member, so calwebb_tso3 writes no _x1dints (see its log above)")
    blender.finalize_model(product)
    product.meta.asn.pool_name = association.get("pool_name")
    product.meta.asn.table_name = association.get("table_name")
    for step, values in statuses.items():
        setattr(product.meta.cal_step, step, summary_step_status(values))
    # the footprint: the first member's that has one (jwst 3.0's tso3 does not combine them;
    # importing jwst.pipeline for its method would cost the job 40 MB)
    regions = [c.meta.wcsinfo.s_region for c in cubes if c.meta.wcsinfo.hasattr("s_region")]
    if regions:
        product.spec[0].s_region = regions[0]
    for cube in cubes:
        cube.close()
    return product
