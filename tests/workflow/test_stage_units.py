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
