"""`xnaming demo`: runs the built stages in order and names those not built yet."""

from __future__ import annotations

from pathlib import Path

import pytest

from xnaming import demo
from xnaming.demo import Stage, run_demo


def _recording_stage(name: str, log: list[str]) -> Stage:
    def run(workdir: Path, serve: bool) -> str:
        log.append(name)
        (workdir / name).write_text("done")
        return f"{name}: wrote {workdir / name}"

    return Stage(name, f"the {name} stage", issue=1, run=run)


def test_runs_built_stages_until_the_first_unbuilt_one(tmp_path, monkeypatch, capsys):
    log: list[str] = []
    stages = (
        _recording_stage("one", log),
        _recording_stage("two", log),
        Stage("three", "not there yet", issue=9),
        _recording_stage("four", log),
    )
    monkeypatch.setattr(demo, "STAGES", stages)

    status = run_demo(tmp_path / "work", serve=False)

    captured = capsys.readouterr()
    assert status == 0
    assert log == ["one", "two"]
    assert (tmp_path / "work" / "two").read_text() == "done"
    assert "three" in captured.out
    assert "not built yet (issue 9)" in captured.out
    assert "waits for 'three'" in captured.out
    assert "1 of 4 stages are not built yet" in captured.err


def test_all_stages_built(tmp_path, monkeypatch, capsys):
    log: list[str] = []
    monkeypatch.setattr(demo, "STAGES", (_recording_stage("a", log), _recording_stage("b", log)))
    assert run_demo(tmp_path, serve=True) == 0
    assert log == ["a", "b"]
    assert "all stages done" in capsys.readouterr().out


def test_a_failing_stage_fails_the_demo(tmp_path, monkeypatch):
    def broken(workdir: Path, serve: bool) -> str:
        raise RuntimeError("stage broke")

    monkeypatch.setattr(demo, "STAGES", (Stage("bad", "breaks", issue=1, run=broken),))
    with pytest.raises(RuntimeError, match="stage broke"):
        run_demo(tmp_path, serve=False)


def test_real_stage_table_covers_the_pipeline():
    names = [stage.name for stage in demo.STAGES]
    assert names[0] == "data"
    assert names[-1] == "analyze"
    assert len(set(names)) == len(names)
