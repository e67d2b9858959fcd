"""A stage job's one unit input lists its steps' unit files with their digests."""

from __future__ import annotations

import pytest

from jwpipe.errors import WorkflowError
from jwpipe.workflow.chain import stage_units_text, unit_files_of


def test_stage_units_file_lists_the_steps_and_catches_a_changed_unit(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    paths = ["units/a/k.json", "units/b/k.json"]
    texts = ['{"step": "a"}\n', '{"step": "b"}\n']
    for path, text in zip(paths, texts, strict=True):
        (tmp_path / path).parent.mkdir(parents=True)
        (tmp_path / path).write_text(text)
    stage = tmp_path / "units" / "st" / "k.json"
    stage.parent.mkdir()
    stage.write_text(stage_units_text("st", "k", paths, texts))
    assert unit_files_of([str(stage)]) == paths
    assert unit_files_of(paths) == paths  # unit files given one by one: as they are
    assert unit_files_of([paths[0]]) == [paths[0]]
    (tmp_path / paths[1]).write_text('{"step": "b", "x": 1}\n')
    with pytest.raises(WorkflowError, match=r"units/b/k\.json changed after .*regenerate"):
        unit_files_of([str(stage)])
    (tmp_path / paths[1]).unlink()
    with pytest.raises(WorkflowError, match=r"cannot read units/b/k\.json"):
        unit_files_of([str(stage)])
    stage.write_text('{"format": "jwpipe-stage-units-1", "units": ["x"]}\n')
    with pytest.raises(WorkflowError, match="damaged stage units file"):
        unit_files_of([str(stage)])


def test_restore_times_dates_a_stage_units_file_as_its_newest_step(tmp_path):
    """After ``--trust-content`` the stage job's unit input is no newer than its steps' unit
    files (which restore_times dates just before their outputs)."""
    import json
    import os

    from jwpipe.workflow.integrity import restore_times

    units = ["units/a/k.json", "units/b/k.json"]
    (tmp_path / "plan.json").write_text(json.dumps({
        "units": {}, "chains": {"st": {"k": {"units": units, "outputs": []}}}}))
    for i, unit in enumerate(units):
        (tmp_path / unit).parent.mkdir(parents=True)
        (tmp_path / unit).write_text("{}")
        os.utime(tmp_path / unit, ns=(10**18 + i * 10**9, 10**18 + i * 10**9))
    stage = tmp_path / "units" / "st" / "k.json"
    stage.parent.mkdir()
    stage.write_text("{}")
    assert restore_times(tmp_path) == (0, [])
    assert stage.stat().st_mtime_ns == 10**18 + 10**9
