"""Planning a survey: exposures observed at different times resolve parameters once, and the
plan is the same as planning each exposure on its own."""

from __future__ import annotations

import json

from astropy.io import fits

from jwpipe.associations import asn_from_list, write_asn
from jwpipe.pipeline import Detector1Pipeline, Image2Pipeline
from jwpipe.simulate import simulate_field
from jwpipe.workflow.generate import plan_for_workflow


def _survey(tmp_path, times):
    sim = simulate_field(tmp_path / "sim", n_exposures=1, size=32, ngroups=3, seed=3)
    raw = sim.uncal_files[0].read_bytes()
    data = tmp_path / "data"
    data.mkdir()
    names = []
    for i, (date, time) in enumerate(times):
        root = f"jw02000001001_01101_{i + 1:05d}_nrca1"
        path = data / f"{root}_uncal.fits"
        path.write_bytes(raw)
        with fits.open(path, mode="update") as hdul:
            hdul[0].header["DATE-OBS"] = date
            hdul[0].header["TIME-OBS"] = time
        names.append(root)
    return sim, data, names


def _asn(data, names, label):
    path = data / f"{label}_asn.json"
    write_asn(asn_from_list([f"{n}_cal.fits" for n in names], asn_type="image2"), path)
    return str(path)


def test_parameters_resolved_once_per_parameter_references(tmp_path, monkeypatch):
    times = [("2023-06-01", "12:00:00.000"), ("2023-06-02", "01:10:00.000"),
             ("2024-01-05", "23:59:59.000")]
    sim, data, names = _survey(tmp_path, times)
    calls = []
    real = Detector1Pipeline.build_config.__func__

    def counting(cls, *args, **kwargs):
        calls.append(cls.__name__)
        return real(cls, *args, **kwargs)

    stages = [Detector1Pipeline, Image2Pipeline]
    together = plan_for_workflow([_asn(data, names, "all")], refs=str(sim.store_dir),
                                 stages=stages)
    monkeypatch.setattr(Detector1Pipeline, "build_config", classmethod(counting))
    plan_for_workflow([_asn(data, names, "again")], refs=str(sim.store_dir), stages=stages)
    # three exposures with their own DATE-OBS/TIME-OBS, one set of parameter references
    assert calls == ["Detector1Pipeline"]
    monkeypatch.undo()
    for name in names:  # each exposure planned alone gives the same units
        alone = plan_for_workflow([_asn(data, [name], name)], refs=str(sim.store_dir),
                                  stages=stages)
        mine = [u for u in together.units if u.key == name]
        assert [json.dumps(u.record(together.context), sort_keys=True) for u in mine] == \
            [json.dumps(u.record(alone.context), sort_keys=True) for u in alone.units]
